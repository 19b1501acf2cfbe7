"""Write throwaway installed distributions (a module + dist-info with entry points) onto a folder."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def make_plugin_dist(site: Path, dist: str, module: str, code: str | None, ep_name: str | None = None) -> None:
    """Create ``module.py`` (unless ``code`` is None) and a dist-info declaring it in the ``zoo`` group."""
    site.mkdir(parents=True, exist_ok=True)
    if code is not None:
        (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[zoo]\n{ep_name or dist} = {module}\n")


def run_zoo(args, site: Path | None = None, env: dict | None = None, cwd=None):
    """Run the zoo CLI in a subprocess with ``site`` on the path."""
    full = dict(os.environ)
    full.pop("ZOO_LOAD_PLUGINS", None)
    if site is not None:
        full["PYTHONPATH"] = os.pathsep.join([str(site), full.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    full.update(env or {})
    return subprocess.run([sys.executable, "-c", "from zoo_core.cli import main; main()", *args],
                          env=full, capture_output=True, text=True, timeout=120, cwd=cwd)
