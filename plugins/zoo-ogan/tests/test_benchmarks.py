"""zoo-ogan's code and benchmarks import only zoo-core and the plugins it depends on, never another method's.

The benchmark's GAN-QP baseline comes through the core's registry (the recipe ``ganqp-mnist``), which the
``benchmarks`` extra installs; importing zoo_ganqp would tie the two plugins together."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).parents[1]


def _zoo_imports(path: Path) -> set[str]:
    """The zoo packages (``zoo_*``) a file imports, as distribution names (zoo_images -> zoo-images)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n.replace("_", "-") for n in names if n.startswith("zoo_")}


def test_code_and_benchmarks_import_only_declared_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {Requirement(r).name for r in project["dependencies"]} | {"zoo-ogan"}
    assert "zoo-ganqp" in {Requirement(r).name for r in project["optional-dependencies"]["benchmarks"]}
    for folder in ("zoo_ogan", "benchmarks"):
        files = sorted((ROOT / folder).rglob("*.py"))
        assert files, folder
        for path in files:
            undeclared = _zoo_imports(path) - declared
            assert not undeclared, f"{path.relative_to(ROOT)} imports {undeclared}: use the registry instead"
