"""``zoo new-plugin NAME``: write a plugin package that passes its own tests as generated."""

from __future__ import annotations

import keyword
import re
import shutil
import tempfile
from pathlib import Path
from string import Template

from .errors import ZooError

FILES = {
    "pyproject.toml": '''\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "zoo-$name"
version = "0.1.0"
description = "$title for the zoo"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["zoo-core"]

[project.optional-dependencies]
test = ["pytest"]

# This line is what makes the zoo find the plugin.
[project.entry-points.zoo]
$name = "zoo_$pkg.hooks"

[tool.setuptools.packages.find]
include = ["zoo_$pkg*"]
''',
    "zoo_$pkg/__init__.py": '''\
"""$title: a zoo plugin."""
''',
    "zoo_$pkg/hooks.py": '''\
"""What this plugin adds to the zoo. No torch import here: `zoo list` must stay fast."""

from zoo_core import hookimpl
from zoo_core.specs import ModelSpec


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="$name",
        target="zoo_$pkg.model:$cls",
        task="regression",
        summary="$title: a two-layer MLP to start from",
        tiny_config={"dim": 4, "hidden": 8},
    ))
''',
    "zoo_$pkg/model.py": '''\
"""$title. Replace this MLP with your model; keep the config a dataclass."""

from dataclasses import dataclass

import torch
from torch import nn

from zoo_core.model import ZooModel


@dataclass
class ${cls}Config:
    dim: int = 16
    hidden: int = 64


class $cls(ZooModel):
    config_class = ${cls}Config
    architecture = "$name"

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        self.fc1 = nn.Linear(c.dim, c.hidden)
        self.fc2 = nn.Linear(c.hidden, 1)

    def forward(self, x):  # x: (B, dim) -> (B,)
        return self.fc2(torch.relu(self.fc1(x))).squeeze(-1)

    def example_inputs(self, batch_size=2):
        return (torch.randn(batch_size, self.config.dim),)
''',
    "tests/test_contract.py": '''\
from zoo_core.testing.contract import ContractTests


class TestContract(ContractTests):
    plugin = "$name"
''',
    "tests/test_model.py": '''\
import torch

from zoo_$pkg.model import $cls


def test_forward_shape():
    model = $cls.from_config({"dim": 4, "hidden": 8})
    assert model(torch.randn(3, 4)).shape == (3,)


def test_config_round_trips(tmp_path):
    from zoo_core.model import load_folder

    model = $cls.from_config({"dim": 4, "hidden": 8})
    model.save_pretrained(tmp_path / "m")
    assert load_folder(tmp_path / "m").config == model.config
''',
    "README.md": '''\
# zoo-$name

$title, packaged for the zoo.

## Model card

- Task: regression (change me)
- Paper / source: (link)
- Licence: (licence of the code and of the weights)
- Metrics: (value, dataset, protocol, where it came from)

## Develop

```bash
pip install -e .[test]
pytest tests
```
''',
}


def create_plugin(name: str, directory: str | Path = ".") -> Path:
    """Write ``zoo-<name>/`` under ``directory`` and return its path (atomically; never overwrites)."""
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise ZooError(f"plugin name {name!r} is not valid",
                       hint="use lower-case letters, digits and '-', starting with a letter")
    pkg = name.replace("-", "_")
    if keyword.iskeyword(pkg):
        raise ZooError(f"plugin name {name!r} is a Python keyword", hint="choose another name")
    cls = "".join(part.capitalize() for part in name.split("-"))
    target = Path(directory) / f"zoo-{name}"
    if target.exists():
        raise ZooError("the folder already exists", where=str(target), hint="choose another name or --dir")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".zoo-{name}.", dir=target.parent))
    values = {"name": name, "pkg": pkg, "cls": cls, "title": cls}
    try:
        for rel, text in FILES.items():
            path = tmp / Template(rel).substitute(values)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Template(text).substitute(values))
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
