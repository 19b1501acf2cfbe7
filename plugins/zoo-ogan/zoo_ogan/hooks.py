"""zoo-ogan's plugin hooks: registration only (the model, the recipes, two catalogue entries, the commands).

No torch import at module level: ``zoo --help`` and ``zoo list`` stay fast. The datasets are
zoo-images' (``mnist``, ``fashion-mnist``, ``image-folder``).
"""

from __future__ import annotations

from zoo_core import ModelSpec, RecipeSpec, hookimpl, trained_here

# Where O-GAN comes from, said once (the catalogue entries below; the licence of the scripts and of this port)
ABOUT = {"license": "Apache-2.0", "links": {"paper": "https://arxiv.org/abs/1903.01931",
                                            "blog": "https://kexue.fm/archives/6409",
                                            "source": "https://github.com/bojone/o-gan"}}

# o_gan_celeba.py: one RMSprop(1e-4, rho 0.99) step per batch of 64, z_dim 128, rho weight 0.5 (the
# step's settings, its loss weights and the metric's sample counts: train.OGANSettings' defaults).
COMMON = {
    "batch_size": 64,
    "lr": 1e-4,
    "epochs": 1,  # ignored: max_steps rules
    "eval_every": None,
    "eval_batch_size": 500,
    "checkpoint_every": 1000,
    "log_every": 100,
}

GREY_32 = {"layout": "image", "size": 32}  # 28 x 28 centred in 32 x 32, background -1

# The budgets of the measured runs (BENCHMARKS.md, 2026-12-07): MNIST 4,000 iterations (LeNet-FID 21.0,
# readable digits), Fashion-MNIST 2,000 (what one CPU session allowed).
MNIST_DEFAULTS = {**COMMON, "max_steps": 4000, "eval_every_steps": 1000,
                  "fid_dataset": "mnist", "fid_options": dict(GREY_32)}
FASHION_DEFAULTS = {**MNIST_DEFAULTS, "max_steps": 2000, "fid_dataset": "fashion-mnist"}

# The paper's CelebA-HQ 128 px setup on a user's folder of images (a GPU): 1000 epochs of 30,000
# images at batch 64 is about 470,000 steps. --set dataset_options='{"root": "/data/celebahq/train"}'.
CELEBAHQ_DEFAULTS = {**COMMON, "max_steps": 470_000, "eval_every_steps": 1000, "device": "auto",
                     "num_workers": 4, "fid_dataset": "image-folder", "feature_net": "inception"}
# o_gan_celeba_sm_4x4_ema_256.py: 256 px, self-modulated BN, 4 x 4 kernels, z_dim 256, batch 48,
# rho weight 1.0, two zero-debiased EMAs of the weights (0.999 is evaluated and saved; 0.9999 is checkpointed
# as ema-0.9999/, the script's `_ema4` weights).
CELEBAHQ256_DEFAULTS = {**CELEBAHQ_DEFAULTS, "batch_size": 48, "rho_weight": 1.0, "ema_decay": [0.999, 0.9999],
                        "max_steps": 625_000}

TINY_CONFIG = {"img_size": 16, "channels": 1, "z_dim": 8, "max_channels": 16}

STEP = "zoo_ogan.train:OGANStep"

# The catalogue entries `zoo train ID` fills: id -> (dataset, summary)
ENTRIES = {
    "ogan-mnist": ("MNIST", "O-GAN generator and encoder of MNIST digits (32 px), trained here"),
    "ogan-fashion": ("Fashion-MNIST", "O-GAN generator and encoder of Fashion-MNIST (32 px), trained here"),
}


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="ogan", target="zoo_ogan.model:OGAN", task="image-generation",
        summary="O-GAN (Su 2019): GAN-QP's G and an encoder E as discriminator; sample, encode, reconstruct",
        tiny_config=dict(TINY_CONFIG)))


@hookimpl
def register_recipes(register):
    # rho(z, E(G(z))) is capped near sqrt(k / z_dim), k the directions a 32 px digit really uses (~13):
    # a code of 16 fits MNIST and Fashion-MNIST; the 128 px recipes keep the release's 128
    grey = {"img_size": 32, "channels": 1, "z_dim": 16}
    register(RecipeSpec(
        name="ogan-mnist", model="ogan", dataset="mnist", step=STEP,
        summary="O-GAN on MNIST padded to 32 px; LeNet-FID, z_corr and reconstruction every 1000 steps, best kept",
        defaults=dict(MNIST_DEFAULTS), model_config=dict(grey), dataset_options=dict(GREY_32)))
    register(RecipeSpec(
        name="ogan-fashion", model="ogan", dataset="fashion-mnist", step=STEP,
        summary="O-GAN on Fashion-MNIST padded to 32 px; LeNet-FID, z_corr and reconstruction every 1000 steps",
        defaults=dict(FASHION_DEFAULTS), model_config=dict(grey), dataset_options=dict(GREY_32)))
    register(RecipeSpec(
        name="ogan-celebahq128", model="ogan", dataset="image-folder", step=STEP,
        summary="the paper's 128 px CelebA-HQ setup (o_gan_celeba.py) on a folder of images you supply (a GPU)",
        defaults=dict(CELEBAHQ_DEFAULTS), model_config={"img_size": 128, "channels": 3},
        dataset_options={"size": 128}))
    register(RecipeSpec(
        name="ogan-celebahq256-sm-ema", model="ogan", dataset="image-folder", step=STEP,
        summary="the sm_4x4_ema_256 script: 256 px, self-modulated BN, 4x4 kernels, EMA 0.999 (a GPU)",
        defaults=dict(CELEBAHQ256_DEFAULTS),
        model_config={"img_size": 256, "channels": 3, "z_dim": 256, "kernel": 4, "self_modulated": True},
        dataset_options={"size": 256}))


@hookimpl
def register_registry_entries(register):
    for entry_id, (dataset, summary) in ENTRIES.items():
        register(trained_here(
            entry_id, architecture="ogan", plugin="ogan", task="image-generation", summary=summary, about=ABOUT,
            instructions=f"Run `zoo train {entry_id}` ({dataset} ships offline with zoo-images); then "
                         f"`zoo sample {entry_id} -o grid.png` or "
                         f"`zoo ogan reconstruct --model {entry_id} --dataset {dataset.lower()}`."))


@hookimpl
def register_commands(commands):
    """``zoo sample ogan-*`` and ``zoo ogan encode|reconstruct|interpolate`` (zoo_ogan/cli.py)."""
    from .cli import attach

    attach(commands)


@hookimpl
def register_demos(register):
    """The model's tab in ``zoo serve`` (zoo_ogan/demo.py; imported only when serving)."""
    register("ogan", "zoo_ogan.demo:build")
