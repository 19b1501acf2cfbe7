"""A tiny in-repo plugin for the core's own tests: a linear regressor, its data and its recipe."""

from dataclasses import dataclass

import torch
from torch import nn

from zoo_core.data import ZooDataset
from zoo_core.hookspecs import hookimpl
from zoo_core.model import ZooModel
from zoo_core.specs import DatasetSpec, ModelSpec, TrainerSpec
from zoo_core.trainer import TrainStep


@dataclass
class ToyConfig:
    dim: int = 8
    hidden: int = 16


class ToyMLP(ZooModel):
    config_class = ToyConfig
    architecture = "toy-mlp"

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        self.fc1 = nn.Linear(c.dim, c.hidden)
        self.fc2 = nn.Linear(c.hidden, 1)

    def forward(self, x):  # x: (B, dim) -> (B,)
        return self.fc2(torch.tanh(self.fc1(x))).squeeze(-1)

    def example_inputs(self, batch_size=2):
        return (torch.randn(batch_size, self.config.dim),)


class ToyData(ZooDataset):
    name = "toy-regression"

    def split(self, name):
        self.check_split(name)
        n = {"train": 256, "validation": 64, "test": 64}[name]
        g = torch.Generator().manual_seed({"train": 1, "validation": 2, "test": 3}[name])
        x = torch.randn(n, 8, generator=g)
        y = torch.sin(x.sum(-1))
        return torch.utils.data.TensorDataset(x, y)


class ToyStep(TrainStep):
    monitor = "mse"

    def configure_optimizers(self):
        return {"sgd": torch.optim.SGD(self.model.parameters(), lr=self.config.lr, momentum=0.9)}

    def training_step(self, model, batch, optimizers):
        x, y = batch
        # a little noise from the global RNG, so resume has RNG state to restore
        noise = self.config.extra.get("noise", 0.01) * torch.randn_like(y)
        return {"loss": ((model(x) - y - noise) ** 2).mean()}

    @torch.no_grad()
    def evaluate(self, model, loader):
        total, n = 0.0, 0
        for x, y in loader:
            total += float(((model(x) - y) ** 2).sum())
            n += len(y)
        return {"mse": total / n}


@hookimpl
def register_models(register):
    register(ModelSpec(name="toy-mlp", target="toy_plugin:ToyMLP", task="regression",
                       summary="two-layer MLP for tests", tiny_config={"dim": 8, "hidden": 4}))


@hookimpl
def register_datasets(register):
    register(DatasetSpec(name="toy-regression", target="toy_plugin:ToyData"))


@hookimpl
def register_trainers(register):
    register(TrainerSpec(name="toy-fit", model="toy-mlp", dataset="toy-regression", step="toy_plugin:ToyStep",
                         defaults={"batch_size": 32, "lr": 0.05, "epochs": 2}))


def convert(source, out_dir, *, hidden=16, **_):
    """Toy converter: a folder holding ``weights.safetensors`` of a ToyMLP state dict -> a model folder."""
    from pathlib import Path

    from safetensors.torch import load_file

    from zoo_core.errors import ZooError

    weights = Path(source) / "weights.safetensors"
    if not weights.is_file():
        raise ZooError("no weights.safetensors in the source", where=str(source))
    model = ToyMLP.from_config({"hidden": hidden})
    model.load_state_dict(load_file(weights))
    return model.save_pretrained(out_dir)


@hookimpl
def register_converters(register):
    from zoo_core.specs import ConverterSpec

    register(ConverterSpec(name="toy-convert", target="toy_plugin:convert"))
