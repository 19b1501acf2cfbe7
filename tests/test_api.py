"""The public API: everything a plugin needs comes from `zoo_core` itself, lazily."""

import ast
import subprocess
import sys
from pathlib import Path
from string import Template

import zoo_core

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_resolves():
    for name in zoo_core.__all__:
        assert getattr(zoo_core, name) is not None, name


def test_importing_zoo_core_imports_no_torch():
    code = ("import sys, zoo_core; zoo_core.zoo_home; zoo_core.search; zoo_core.RecipeSpec;"
            " print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _core_imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("zoo_core."):
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("zoo_core."):
                    yield node.lineno, alias.name


def test_plugins_import_only_the_public_api():
    offenders = []
    for path in sorted(ROOT.glob("plugins/*/zoo_*/**/*.py")):
        for line, module in _core_imports(path):
            offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert offenders == []


def test_the_scaffold_writes_plugins_that_import_only_the_public_api():
    from zoo_core.scaffold import FILES

    for rel, text in FILES.items():
        if rel.startswith("zoo_") and rel.endswith(".py"):
            tree = ast.parse(Template(text).substitute(name="demo", pkg="demo", cls="Demo", title="Demo"))
            modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
            assert not [m for m in modules if m and m.startswith("zoo_core.")], rel


def test_one_did_you_mean():
    from zoo_core import UnknownNameError, did_you_mean

    err = did_you_mean("dataset", "mnsit", ["mnist", "fashion-mnist"], otherwise="see zoo plugins")
    assert isinstance(err, UnknownNameError) and "did you mean 'mnist'?" in err.render()
    assert "see zoo plugins" in did_you_mean("dataset", "zzz", ["mnist"], otherwise="see zoo plugins").render()


def test_one_dtype_table():
    import torch

    from zoo_core.dtypes import as_dtype, from_safetensors

    assert as_dtype("bf16") is torch.bfloat16 and as_dtype("torch.float16") is torch.float16
    assert from_safetensors("BF16") is torch.bfloat16
    import pytest

    with pytest.raises(zoo_core.ZooError, match="unknown dtype"):
        as_dtype("fp8")
