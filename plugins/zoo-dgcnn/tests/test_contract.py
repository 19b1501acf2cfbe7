"""The kit's contracts: the plugin's (hooks, registry, tiny models, Hub round trip, demos) and the
dgcnn-cloze recipe's (resume bit-identical, torchrun 2 = 1, train -> load_model)."""

from zoo_core.testing import ContractTests, RecipeContract


class TestContract(ContractTests):
    plugin = "dgcnn"


class TestClozeRecipe(RecipeContract):
    recipe = "dgcnn-cloze"
    plugins = "dgcnn"
    # 128 questions in batches of 32: 4 steps an epoch, validated after each; the killed run stops in step 4
    # (the end of epoch 0) and resumes into epoch 1 (new passages, new crops). Characters only: the test home
    # has no installed word vectors (test_train.py covers them).
    tiny = {"max_steps": 6, "batch_size": 32, "limit_train": 128, "limit_eval": 40, "eval_batch_size": 64,
            "threads": 1, "min_count": 2, "ema_decay": 0.9, "word_vectors": ""}
    resume_at = 3
    model_set = {"dim": 32, "question_rates": [1, 2], "passage_rates": [1, 2, 4, 1]}  # conftest.TINY_MODEL
    # dropout masks are drawn per process: off, so that one and two processes take the same steps
    torchrun_model_set = {"dropout": 0.0}
    # each process normalises its loss by the global number of positions; sums in another order
    torchrun_rtol = 1e-4
