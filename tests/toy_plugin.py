"""A tiny in-repo plugin for the core's own tests.

Recipes: ``toy-fit`` (an MLP regressor), ``toy-gan`` (two optimizers, two critic updates per
generator update), ``toy-sparse`` (a sparse embedding under SparseAdam next to a dense Adam) and
``toy-control`` (``toy-fit`` whose ``after_validation`` reloads the best weights and drops the
learning rate).
"""

from dataclasses import dataclass, field

import torch
from torch import nn

from zoo_core import (
    ConverterSpec,
    DatasetSpec,
    ModelSpec,
    RecipeSpec,
    TrainStep,
    Update,
    ZooDataset,
    ZooError,
    ZooModel,
    hookimpl,
)


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


@dataclass
class ToySettings:
    noise: float = 0.01  # the scale of the noise added to the targets


class ToyStep(TrainStep):
    Settings = ToySettings
    monitor = "mse"

    def configure_optimizers(self):
        return {"sgd": torch.optim.SGD(self.model.parameters(), lr=self.config.lr, momentum=0.9)}

    def training_step(self, model, batch):
        x, y = batch
        # a little noise from the global RNG, so resume has RNG state to restore
        noise = self.settings.noise * torch.randn_like(y)
        return {"loss": ((model(x) - y - noise) ** 2).mean()}

    @torch.no_grad()
    def evaluate(self, model, loader):
        torch.rand(1)  # evaluation that draws on the global RNG must not shift the training stream
        total, n = 0.0, 0
        for x, y in loader:
            total += float(((model(x) - y) ** 2).sum())
            n += len(y)
        return {"mse": total / n}


@dataclass
class ControlSettings(ToySettings):
    trigger_at: list[int] = field(default_factory=list)
    stop_at: int | None = None


class ControlStep(ToyStep):
    """ToyStep that, at the validations numbered in ``trigger_at``, reloads the best weights,
    resets the optimizer, divides the learning rate by 10 and (with an EMA) restarts the EMA; it stops
    at validation ``stop_at``. It counts validations in ``state_dict`` so resume keeps count.

    ``monitor_mode = "max"`` on the falling mse keeps an early validation the best one, so the reload
    really goes back in time.
    """

    Settings = ControlSettings
    monitor_mode = "max"

    def __init__(self, model, config):
        super().__init__(model, config)
        self.validations = 0

    def after_validation(self, control, metrics):
        self.validations += 1
        if self.validations in self.settings.trigger_at:
            control.reload_best()
            control.reset_optimizers()
            control.set_lr(control.lr() / 10)
            if self.config.ema_decay is not None:
                control.reset_ema()
        if self.validations == self.settings.stop_at:
            control.stop()

    def state_dict(self):
        return {"validations": self.validations}

    def load_state_dict(self, state):
        self.validations = state["validations"]


# --- a GAN: generator and critic in one model, two optimizers ------------------------------------


@dataclass
class ToyGANConfig:
    dim: int = 8
    noise: int = 4
    hidden: int = 16


class ToyGAN(ZooModel):
    config_class = ToyGANConfig
    architecture = "toy-gan"

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        self.g = nn.Sequential(nn.Linear(c.noise, c.hidden), nn.Tanh(), nn.Linear(c.hidden, c.dim))
        self.d = nn.Sequential(nn.Linear(c.dim, c.hidden), nn.Tanh(), nn.Linear(c.hidden, 1))

    def noise(self, x):  # (B, dim) -> (B, noise): a fixed function of each example, so DDP matches one process
        return torch.sin(3.0 * x[:, : self.config.noise] + 1.0)

    def forward(self, z):  # z: (B, noise) -> critic scores of the fakes (B,)
        return self.d(self.g(z)).squeeze(-1)

    def example_inputs(self, batch_size=2):
        return (torch.randn(batch_size, self.config.noise),)


class GANStep(TrainStep):
    """Critic twice (each on its own batch), then the generator; ``trace`` records what each update saw."""

    updates = (Update("d_loss", ("d",)), Update("d_loss", ("d",)), Update("g_loss", ("g",)))
    monitor = "mean_gap"
    trace: list | None = None  # set to a list to record (loss name, first target of the batch)

    def configure_optimizers(self):
        m = self.model
        return {"d": torch.optim.Adam(m.d.parameters(), lr=self.config.lr, betas=(0.5, 0.9)),
                "g": torch.optim.Adam(m.g.parameters(), lr=self.config.lr, betas=(0.5, 0.9))}

    def _record(self, name, batch):
        if GANStep.trace is not None:
            GANStep.trace.append((name, float(batch[1][0])))

    def d_loss(self, model, batch):
        self._record("d_loss", batch)
        x, _ = batch
        with torch.no_grad():  # the critic's loss must not reach the generator
            fake = model.g(model.noise(x))
        real_score, fake_score = model.d(x).squeeze(-1), model.d(fake).squeeze(-1)
        loss = fake_score.mean() - real_score.mean() + 0.1 * (real_score ** 2).mean()
        return {"loss": loss, "d_real": real_score.mean()}

    def g_loss(self, model, batch):
        self._record("g_loss", batch)
        x, _ = batch
        return {"loss": -model(model.noise(x)).mean()}

    @torch.no_grad()
    def evaluate(self, model, loader):
        gap, n = 0.0, 0
        for x, _ in loader:
            fake = model.g(model.noise(x))
            gap += float((fake.mean(0) - x.mean(0)).abs().sum()) * len(x)
            n += len(x)
        return {"mean_gap": gap / n}


# --- sparse embedding gradients: SparseAdam next to a dense Adam -----------------------------------


@dataclass
class ToyBagConfig:
    vocab: int = 50
    dim: int = 8


class ToyBag(ZooModel):
    config_class = ToyBagConfig
    architecture = "toy-bag"

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        self.embed = nn.Embedding(c.vocab, c.dim, sparse=True)
        self.out = nn.Linear(c.dim, 1)

    def forward(self, tokens):  # tokens: (B, L) int64 -> (B,)
        return self.out(self.embed(tokens).mean(1)).squeeze(-1)

    def example_inputs(self, batch_size=2):
        return (torch.randint(0, self.config.vocab, (batch_size, 4)),)


class ToyTokens(ZooDataset):
    name = "toy-tokens"

    def split(self, name):
        self.check_split(name)
        n = {"train": 256, "validation": 64, "test": 64}[name]
        g = torch.Generator().manual_seed({"train": 4, "validation": 5, "test": 6}[name])
        tokens = torch.randint(0, 50, (n, 4), generator=g)
        y = torch.cos(tokens.float() / 7.0).mean(-1)
        return torch.utils.data.TensorDataset(tokens, y)


class SparseStep(TrainStep):
    monitor = "mse"

    def configure_optimizers(self):
        m = self.model
        return {"sparse": torch.optim.SparseAdam(list(m.embed.parameters()), lr=self.config.lr),
                "dense": torch.optim.Adam(m.out.parameters(), lr=self.config.lr)}

    def configure_schedulers(self, optimizers):
        return {"dense": torch.optim.lr_scheduler.StepLR(optimizers["dense"], step_size=5, gamma=0.5)}

    def training_step(self, model, batch):
        tokens, y = batch
        return {"loss": ((model(tokens) - y) ** 2).mean()}

    evaluate = ToyStep.evaluate


@hookimpl
def register_models(register):
    register(ModelSpec(name="toy-mlp", target="toy_plugin:ToyMLP", task="regression",
                       summary="two-layer MLP for tests", tiny_config={"dim": 8, "hidden": 4}))
    register(ModelSpec(name="toy-gan", target="toy_plugin:ToyGAN", task="generation",
                       summary="tiny generator and critic for tests", tiny_config={"hidden": 4}))
    register(ModelSpec(name="toy-bag", target="toy_plugin:ToyBag", task="regression",
                       summary="sparse bag of embeddings for tests", tiny_config={"vocab": 10, "dim": 4}))


@hookimpl
def register_datasets(register):
    register(DatasetSpec(name="toy-regression", target="toy_plugin:ToyData"))
    register(DatasetSpec(name="toy-tokens", target="toy_plugin:ToyTokens"))


@hookimpl
def register_recipes(register):
    defaults = {"batch_size": 32, "lr": 0.05, "epochs": 2}
    register(RecipeSpec(name="toy-fit", model="toy-mlp", dataset="toy-regression", step="toy_plugin:ToyStep",
                        defaults=dict(defaults)))
    register(RecipeSpec(name="toy-control", model="toy-mlp", dataset="toy-regression",
                        step="toy_plugin:ControlStep", defaults=dict(defaults)))
    register(RecipeSpec(name="toy-gan", model="toy-gan", dataset="toy-regression", step="toy_plugin:GANStep",
                        defaults={"batch_size": 32, "lr": 0.01, "epochs": 2}))
    register(RecipeSpec(name="toy-sparse", model="toy-bag", dataset="toy-tokens", step="toy_plugin:SparseStep",
                        defaults={"batch_size": 32, "lr": 0.05, "epochs": 2}))


def convert(source, out_dir, *, hidden=16, **_):
    """Toy converter: a folder holding ``weights.safetensors`` of a ToyMLP state dict -> a model folder."""
    from pathlib import Path

    from safetensors.torch import load_file

    weights = Path(source) / "weights.safetensors"
    if not weights.is_file():
        raise ZooError("no weights.safetensors in the source", where=str(source))
    model = ToyMLP.from_config({"hidden": hidden})
    model.load_state_dict(load_file(weights))
    return model.save_pretrained(out_dir)


@hookimpl
def register_converters(register):
    register(ConverterSpec(name="toy-convert", target="toy_plugin:convert"))
