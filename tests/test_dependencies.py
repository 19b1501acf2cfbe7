"""Everything the core imports is declared in its pyproject.toml, so a fresh virtualenv has it.

Two checks, both cheap enough for every CI run: the core's own ``import`` lines
(static), and every installed module a small train / save / load / CLI run
actually loads (dynamic, which catches what a dependency imports without
declaring it: safetensors.torch and ``Tensor.numpy()`` need numpy, which
neither torch nor safetensors lists).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "zoo_core"


def _declared(extras: tuple[str, ...] = ()) -> set[str]:
    """The distributions the core's pyproject.toml names (plus those of ``extras``)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        names |= {canonicalize_name(Requirement(r).name) for r in optional.get(extra, [])}
    return names


def _closure(names: set[str]) -> set[str]:
    """``names`` and everything they require (without extras), as installed here."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def _distributions_of(module: str) -> set[str]:
    return {canonicalize_name(d) for d in metadata.packages_distributions().get(module.partition(".")[0], [])}


def _guarded(tree: ast.AST) -> set[int]:
    """Line numbers of imports inside ``try: ... except ImportError``: optional by design."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            caught = {getattr(h.type, "id", None) for h in node.handlers} | {
                getattr(e, "id", None) for h in node.handlers if isinstance(h.type, ast.Tuple) for e in h.type.elts}
            if caught & {"ImportError", "ModuleNotFoundError"}:
                lines |= {n.lineno for stmt in node.body for n in ast.walk(stmt) if isinstance(n, (ast.Import,
                                                                                                    ast.ImportFrom))}
    return lines


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    optional = _guarded(tree)
    found = set()
    for node in ast.walk(tree):
        if node.lineno in optional if hasattr(node, "lineno") else False:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.partition(".")[0])
    return found - set(sys.stdlib_module_names) - {"zoo_core", "__future__"}


def test_every_module_the_core_imports_is_declared():
    missing = {}
    for path in sorted(CORE.rglob("*.py")):
        # A subpackage may use the extra of its name (zoo_core/serve: [serve]); the kit (zoo_core/testing)
        # runs under pytest, the [test] extra.
        sub = path.relative_to(CORE).parts[0] if len(path.relative_to(CORE).parts) > 1 else None
        allowed = _declared(tuple(e for e in (sub, "test" if sub == "testing" else None) if e))
        for module in sorted(_imports(path)):
            dists = _distributions_of(module)
            if not dists:
                missing.setdefault(module, []).append(f"{path.relative_to(ROOT)} (not installed here)")
            elif not dists & allowed:
                missing.setdefault(module, []).append(str(path.relative_to(ROOT)))
    assert not missing, f"imported but not in pyproject.toml's dependencies: {missing}"


# Run with every installed distribution outside the allowed set hidden, as a fresh
# virtualenv would not have it: optional imports of our dependencies (brotli for httpx) fall back as
# they would there, and a missing requirement fails the way it failed for a newcomer.
WORKLOAD = r"""
import json, sys
from importlib import metadata

allowed = set(json.loads(sys.argv[2]))
for name, dists in metadata.packages_distributions().items():
    if not {d.lower().replace("_", "-") for d in dists} & allowed:
        sys.modules[name] = None  # import raises ModuleNotFoundError; importlib.util.find_spec says None
from zoo_core import load_model, train
from zoo_core.cli import cli

out = sys.argv[1]
train("toy-fit", out=out, max_steps=3, checkpoint_every=1, progress=False, install=False)
load_model(out + "/model")
cli(["list"], standalone_mode=False)
print("WORKLOAD DONE")
"""


def test_a_train_save_load_run_needs_only_declared_distributions(tmp_path, toy_env):
    allowed = sorted(_closure(_declared()) | {"zoo-core", "zoo-toy"})
    env = {**os.environ, **toy_env, "ZOO_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", WORKLOAD, str(tmp_path / "run"), json.dumps(allowed)],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 0 and "WORKLOAD DONE" in r.stdout, r.stderr[-3000:]


HIDDEN_NUMPY = """
import sys
sys.modules["numpy"] = None  # an environment without numpy
from zoo_core.cli import main
main()
"""


def test_a_missing_package_is_a_clear_error_not_a_traceback(tmp_path, toy_env):
    env = {**os.environ, **toy_env, "ZOO_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", HIDDEN_NUMPY, "train", "toy-fit", "--epochs", "1", "--no-progress",
                        "--out", str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1
    assert "the Python package 'numpy' is not installed" in r.stderr and "pip install numpy" in r.stderr
    assert "Traceback" not in r.stderr
