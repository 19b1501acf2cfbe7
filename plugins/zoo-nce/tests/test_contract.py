"""The kit's contracts: the plugin's (hooks, registry, tiny models, Hub round trip, demos) and its two recipes'
(resume bit-identical, torchrun 2 = 1 or refused with the reason, train -> load_model)."""

import pytest

from zoo_core.testing import ContractTests, RecipeContract


class TestContract(ContractTests):
    plugin = "nce"


class TestSGNSRecipe(RecipeContract):
    recipe = "sgns-peoples-daily"
    plugins = "nce"
    # the planted corpus (conftest.py) in blocks of 64 words, 2 blocks a step, the compiled loop on one thread
    # (bit-identical run to run); the killed run stops in step 3 and resumes from step 2
    tiny = {"max_steps": 4, "batch_size": 2, "threads": 1, "sample": 0, "limit_eval": 4}
    model_set = {"dim": 8}
    # its updates are applied in place, pair by pair: there is no gradient for DDP to average
    torchrun_refusal = "sgns-peoples-daily runs in one process"

    @pytest.fixture
    def recipe_settings(self, planted):
        return {"dataset_options": {"corpus": str(planted), "block_tokens": 64}}


class TestSGNSTorchUpdateRecipe(TestSGNSRecipe):
    """The same contract for the batched torch update (where numba cannot run)."""

    tiny = {**TestSGNSRecipe.tiny, "kernel": "torch", "shared_negatives": 16}


class TestZhidaoRecipe(RecipeContract):
    recipe = "zhidao-tags"
    plugins = "nce"
    # 600 synthetic questions over 40 tags, batches of 32; validated once at the end on 64 questions
    tiny = {"max_steps": 4, "batch_size": 32, "threads": 1, "eval_every": None, "limit_eval": 64}
    model_set = {"dim": 16}
    # shared noise tags drawn alike in every process, loss per question: two processes take one's steps, to
    # float64 rounding (the sparse gradients are summed in another order)
    torchrun_setup = "import torch; torch.set_default_dtype(torch.float64)"
    torchrun_rtol, torchrun_atol = 1e-9, 1e-10

    @pytest.fixture
    def recipe_settings(self, tmp_path):
        from zoo_nce.zhidao import write_synthetic

        path = write_synthetic(tmp_path / "zhidao.jsonl", 600, 40, seed=0)
        return {"dataset_options": {"path": str(path), "validation": 0.1, "test": 0.1}}
