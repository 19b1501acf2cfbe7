"""The contract kit passes a well-behaved plugin and catches broken ones."""

import os
import subprocess
import sys
from pathlib import Path

from fake_dists import make_plugin_dist

HERE = Path(__file__).parent

BAD = '''
from dataclasses import dataclass
import torch
from torch import nn
from zoo_core import hookimpl
from zoo_core.model import ZooModel
from zoo_core.specs import ModelSpec


@dataclass
class Cfg:
    dim: int = 4


class Leaky(ZooModel):
    """Keeps a tensor outside its state dict, so a reload cannot reproduce it, and returns NaN."""
    config_class = Cfg
    architecture = "leaky"

    def __init__(self, config):
        super().__init__(config)
        self.fc = nn.Linear(self.config.dim, 1)
        self.secret = torch.randn(1)

    def forward(self, x):
        return self.fc(x) * float("nan")

    def example_inputs(self, batch_size=2):
        return (torch.randn(batch_size, self.config.dim),)


@hookimpl
def register_models(register):
    register(ModelSpec(name="leaky", target="zoo_bad_mod:Leaky", task="regression", summary="broken on purpose"))
'''


def _run_kit(tmp_path, plugin):
    test = tmp_path / f"test_contract_{plugin}.py"
    test.write_text("from zoo_core.testing.contract import ContractTests\n\n\n"
                    f"class TestContract(ContractTests):\n    plugin = {plugin!r}\n")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path / 'site'}:{HERE}")
    env.pop("ZOO_LOAD_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_kit_passes_a_good_plugin_and_fails_a_bad_one(tmp_path):
    make_plugin_dist(tmp_path / "site", "zoo-toy", "toy_plugin", None, "toy")
    make_plugin_dist(tmp_path / "site", "zoo-bad", "zoo_bad_mod", BAD, "bad")
    good = _run_kit(tmp_path, "toy")
    assert good.returncode == 0, good.stdout[-3000:]
    assert "6 passed" in good.stdout
    bad = _run_kit(tmp_path, "bad")
    assert bad.returncode == 1
    assert "FAILED" in bad.stdout and "test_models_build_tiny_and_run_forward" in bad.stdout
    assert "leaky: non-finite output" in bad.stdout
    missing = _run_kit(tmp_path, "not-installed")
    assert "no plugin 'not-installed'" in missing.stdout
