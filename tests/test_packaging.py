"""Every distribution of the repository builds with `python -m build`, and its wheel holds what it needs."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = [ROOT, *sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml"))]


def _requirements_lines():
    return [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]


def test_requirements_list_every_distribution():
    listed = {line.removeprefix("-e ").split("[")[0].rstrip("/") for line in _requirements_lines()
              if line.startswith("-e ")}
    expected = {"." if d == ROOT else str(d.relative_to(ROOT)) for d in DISTRIBUTIONS}
    assert listed == expected


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=lambda p: p.name if p != ROOT else "zoo-core")
def test_wheel_builds_with_its_data(folder, tmp_path):
    # --no-isolation: the build backend (setuptools) is already installed and the index may be unreachable
    r = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path),
                        str(folder)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    if "entry-points" in (folder / "pyproject.toml").read_text():  # zoo-text is a library: no entry point
        assert any(n.endswith("entry_points.txt") for n in names)
    if folder == ROOT:
        assert {"zoo_core/registry.yaml", "zoo_core/registry_schema.json", "zoo_core/hub/__init__.py",
                "zoo_core/testing/local_hub/__init__.py"} <= names
    assert not [n for n in names if "/tests/" in n or n.startswith("tests/")]
