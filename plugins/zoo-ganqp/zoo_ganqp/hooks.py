"""zoo-ganqp's plugin hooks: registration only (the model, the recipes, two catalogue entries, the commands).

No torch import at module level: ``zoo --help`` and ``zoo list`` stay fast. The datasets are
zoo-images' (``mnist``, ``fashion-mnist``, ``image-folder``).
"""

from __future__ import annotations

from zoo_core import ModelSpec, RecipeSpec, hookimpl, trained_here

# Where GAN-QP comes from, said once (the catalogue entries below; the licence of the scripts and of this port)
ABOUT = {"license": "Apache-2.0", "links": {"paper": "https://arxiv.org/abs/1811.07296",
                                            "blog": "https://kexue.fm/archives/6163",
                                            "source": "https://github.com/bojone/gan-qp"}}

# What every recipe shares: the scripts' loop (2 critic updates per generator update, Adam 2e-4 / 0.5,
# z_dim 128, batch 64), iteration-based, the best model kept by the metric. ``lr: None`` lets each
# loss take its own paper's rate (train.LOSS_SETTINGS); ``--lr`` sets it for D and G alike. The step's
# other settings (10,000 samples per validation, KID over 10 subsets, no torch.compile, ...) are
# train.GANQPSettings' defaults.
COMMON = {
    "batch_size": 64,
    "lr": None,
    "loss": "qp-l2",
    "epochs": 1,  # ignored: max_steps rules
    "eval_every": None,
    "eval_batch_size": 500,
    "checkpoint_every": 1000,
    "log_every": 100,
}

GREY_32 = {"layout": "image", "size": 32}  # 28 x 28 centred in 32 x 32, background -1

# MNIST and Fashion-MNIST, 32 px: GAN-QP-L2, the 128 px script's loss (gan_qp_l2.py; L1 is the
# misnamed gan_gp_l1.py) and its best FID at 128 px (44.7 vs 45.0).
# Each budget is the one of its measured run (BENCHMARKS.md, 2026-12-07): ganqp-mnist 4,000 iterations
# (test LeNet-FID 18.8, readable digits); ganqp-fashion 2,000 (its best validation of a 3,000-iteration
# run: relative LeNet-FID 4.83 against 4.99 at 3,000, garments you can name).
MNIST_DEFAULTS = {**COMMON, "max_steps": 4000, "eval_every_steps": 1000,
                  "fid_dataset": "mnist", "fid_options": dict(GREY_32)}
FASHION_DEFAULTS = {**MNIST_DEFAULTS, "max_steps": 2000, "fid_dataset": "fashion-mnist"}

# CelebA-HQ at 128, 256 and 512 px as in the scripts: 1e6 iterations, FID every 1000. A user's folder
# of images: --set dataset_options='{"root": "/data/celebahq/train"}'. 256 and 512 px use GAN-QP-L1
# (256/gan_qp_l1.py, 512/gan_qp_l1.py); 512 px batch 32, max channels 4 * 512 = 2048.
CELEBAHQ_DEFAULTS = {**COMMON, "max_steps": 1_000_000, "eval_every_steps": 1000, "device": "auto",
                     "num_workers": 4, "fid_dataset": "image-folder", "feature_net": "inception"}
CELEBAHQ = {
    128: ({**CELEBAHQ_DEFAULTS, "loss": "qp-l2"}, {"img_size": 128, "channels": 3}),
    256: ({**CELEBAHQ_DEFAULTS, "loss": "qp-l1"}, {"img_size": 256, "channels": 3}),
    512: ({**CELEBAHQ_DEFAULTS, "loss": "qp-l1", "batch_size": 32},
          {"img_size": 512, "channels": 3, "max_channels": 2048}),
}

TINY_CONFIG = {"img_size": 16, "channels": 1, "z_dim": 8, "max_channels": 16}

STEP = "zoo_ganqp.train:GANQPStep"

# The catalogue entries `zoo train ID` fills: id -> (dataset, summary)
ENTRIES = {
    "ganqp-mnist": ("MNIST", "GAN-QP-L2 generator of MNIST digits (32 px), trained here"),
    "ganqp-fashion": ("Fashion-MNIST", "GAN-QP-L2 generator of Fashion-MNIST (32 px), trained here"),
}


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="ganqp", target="zoo_ganqp.model:GANQP", task="image-generation",
        summary="GAN-QP (Su 2018): DCGAN-style G and D of the original scripts, any power-of-two size",
        tiny_config=dict(TINY_CONFIG)))


@hookimpl
def register_recipes(register):
    grey = {"img_size": 32, "channels": 1}
    register(RecipeSpec(
        name="ganqp-mnist", model="ganqp", dataset="mnist", step=STEP,
        summary="GAN-QP-L2 on MNIST padded to 32 px; LeNet-FID every 1000 iterations, best kept",
        defaults=dict(MNIST_DEFAULTS), model_config=dict(grey), dataset_options=dict(GREY_32)))
    register(RecipeSpec(
        name="ganqp-fashion", model="ganqp", dataset="fashion-mnist", step=STEP,
        summary="GAN-QP-L2 on Fashion-MNIST padded to 32 px; LeNet-FID every 1000 iterations, best kept",
        defaults=dict(FASHION_DEFAULTS), model_config=dict(grey), dataset_options=dict(GREY_32)))
    for size, (defaults, model_config) in CELEBAHQ.items():
        register(RecipeSpec(
            name=f"ganqp-celebahq{size}", model="ganqp", dataset="image-folder", step=STEP,
            summary=f"the paper's {size} px CelebA-HQ setup ({defaults['loss']}, batch {defaults['batch_size']}) "
                    "on a folder of images you supply (a GPU)",
            defaults=dict(defaults), model_config=dict(model_config), dataset_options={"size": size}))


@hookimpl
def register_registry_entries(register):
    for entry_id, (dataset, summary) in ENTRIES.items():
        register(trained_here(
            entry_id, architecture="ganqp", plugin="ganqp", task="image-generation", summary=summary, about=ABOUT,
            instructions=f"Run `zoo train {entry_id}` ({dataset} ships offline with zoo-images); "
                         f"then `zoo sample {entry_id} -o grid.png`."))


@hookimpl
def register_commands(commands):
    """``zoo sample ganqp-*`` (zoo_ganqp/cli.py)."""
    from .cli import attach

    attach(commands)


@hookimpl
def register_demos(register):
    """The model's tab in ``zoo serve`` (zoo_ganqp/demo.py; imported only when serving)."""
    register("ganqp", "zoo_ganqp.demo:build")
