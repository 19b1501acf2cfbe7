"""Training through the core's Trainer on the cloze proxy: learning, the schedule, the data-sized model and its
word vectors, typed settings, install, and the commands (zoo answer, zoo eval). Resume, torchrun and
train -> load_model are the kit's recipe contract (test_contract.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from zoo_core import Trainer, evaluate, load_model, train


def _log(out):
    return [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]


def test_a_short_run_raises_the_validation_score(tiny_recipe, small_config, tmp_path):
    from zoo_core.checkpoint import seed_everything

    config = small_config(tmp_path / "run", limit_train=3000, max_steps=250, lr=3e-3, limit_eval=400,
                          ema_decay=None, threads=2)
    seed_everything(config.seed)
    trainer = Trainer(tiny_recipe, config)
    untrained = trainer.build_model()  # born with the training data's characters, as in fit()
    assert len(untrained.config.vocab) > 1000
    before = evaluate(tiny_recipe, untrained, split="validation", config=config)
    trainer.fit()
    after = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"][-1]
    # 10 s of training on 2 threads lift the score well clear of the untrained model's
    assert after["score"] > before["score"] + 0.1, (before, after)
    assert after["accuracy"] > before["accuracy"], (before, after)
    loaded = load_model(tmp_path / "run" / "model")
    assert len(loaded.config.vocab) > 1000  # the training data's characters, saved with the model
    again = evaluate(tiny_recipe, loaded, split="validation", config=config)
    assert again["score"] == pytest.approx(after["score"])


def test_the_learning_rate_drop_reloads_best_and_resets(tiny_recipe, small_config, tmp_path):
    out = tmp_path / "run"
    # one-batch epochs, validation after each. The release tests Keras's 0-based epoch: `epoch > 2` first
    # holds after 4 epochs (score < 0.5 certainly); at drop_epoch (6) epochs it reloads the best again.
    config = small_config(out, limit_train=32, max_steps=7, eval_every=1, drop_min_epoch=2, drop_epoch=6,
                          checkpoint_every=1, keep_checkpoints=3)  # step 5's is read below
    Trainer(tiny_recipe, config).fit()
    controls = [line for line in _log(out) if "control" in line]
    assert [c["step"] for c in controls] == [4, 6]
    for c in controls:
        assert set(c["control"]) == {"reload_best", "reset_optimizers", "set_lr 0.0001", "reset_ema"}
    state = load_file(out / "checkpoints" / "step-00000007" / "trainer_state.safetensors")
    assert int(state["optim.radam.0.step"]) == 1  # fresh RAdam state after the reload at step 6


def test_the_release_waits_for_17_epochs_before_the_drop(zoo):
    """`epoch > 15` on Keras's 0-based epoch: the first eligible validation is after 17 completed epochs."""
    from types import SimpleNamespace

    from zoo_dgcnn.train import DGCNNSettings, DGCNNStep

    class Control:
        def __init__(self, epoch):
            self.state, self.calls = SimpleNamespace(epoch=epoch), []

        def __getattr__(self, name):
            return lambda *args: self.calls.append(name)

    step = DGCNNStep.__new__(DGCNNStep)
    step.config = SimpleNamespace(ema_decay=0.9999)
    step.settings = DGCNNSettings()  # the release's numbers are the defaults
    assert (step.settings.drop_min_epoch, step.settings.drop_score, step.settings.patience, step.settings.drop_epoch,
            step.settings.low_lr) == (15, 0.5, 5, 30, 1e-4)
    step.dropped, step.stale, step.best, step.reloaded_last = False, 0, None, False
    for epoch in range(1, 17):
        control = Control(epoch)
        step.after_validation(control, {"score": 0.1})
        assert control.calls == [], epoch
    control = Control(17)
    step.after_validation(control, {"score": 0.1})
    assert control.calls == ["reload_best", "reset_optimizers", "set_lr", "reset_ema"]
    for epoch in range(18, 30):
        control = Control(epoch)
        step.after_validation(control, {"score": 0.1})
        assert control.calls == [], epoch
    control = Control(30)  # the release reloads the best weights at 30 even after the drop
    step.after_validation(control, {"score": 0.1})
    assert control.calls == ["reload_best", "reset_optimizers", "set_lr", "reset_ema"]
    control = Control(30)  # a second validation in the same epoch (a timed schedule) does not repeat it
    step.after_validation(control, {"score": 0.1})
    assert control.calls == []


def test_word_vectors_are_named_by_file_or_installed_model(tmp_path, zoo):
    from zoo_core import ZooError
    from zoo_dgcnn.vectors import word_vectors

    (tmp_path / "v.txt").write_text("2 3\n中国 1 0 0\n人民 0 1 0\n", encoding="utf-8")
    words, vectors = word_vectors(str(tmp_path / "v.txt"))
    assert words == ["中国", "人民"] and vectors.shape == (2, 3)
    with pytest.raises(ZooError, match="neither a word2vec file nor an installed") as exc:
        word_vectors("sgns-peoples-daily")  # not installed in this private home
    assert "zoo train sgns-peoples-daily" in exc.value.hint


def test_the_model_is_born_with_the_data_s_vocabularies_and_word_vectors(tiny_recipe, small_config, tmp_path):
    """--set word_vectors=FILE: the dataset sizes the model (words, word_dim) and fills its table on a fresh start."""
    from zoo_core import ZooError

    vectors = tmp_path / "v.txt"
    vectors.write_text("3 4\n中国 1 0 0 0\n美国 0 1 0 0\n人民 0 0 1 0.5\n", encoding="utf-8")
    config = small_config(tmp_path / "run", max_steps=1, word_vectors=str(vectors))
    trainer = Trainer(tiny_recipe, config)
    born = trainer.build_model()
    assert born.config.words == ["中国", "美国", "人民"] and born.config.word_dim == 4
    assert born.word_vectors.shape == (4, 4) and born.word_proj.in_features == 4
    trainer.fit()
    saved = load_model(tmp_path / "run" / "model")
    assert saved.word_vectors.tolist() == [[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0.5]]
    assert saved.config.vocab == born.config.vocab
    # the data decides the vocabulary: a --model-set that contradicts it is refused by name
    with pytest.raises(ZooError, match="contradicts the data") as exc:
        Trainer(tiny_recipe, small_config(tmp_path / "other"), model_set={"word_dim": 8}).fit()
    assert "word_dim" in exc.value.where


def test_a_run_folder_from_before_typed_settings_resumes(tiny_recipe, small_config, tmp_path, capfd):
    """Its checkpoint names the dataset as a setting (`data`, which the recipe now decides) and no dropped default."""
    out = tmp_path / "run"
    Trainer(tiny_recipe, small_config(out, max_steps=2, limit_train=128, checkpoint_every=1)).fit()
    state = next((out / "checkpoints").glob("step-*")) / "trainer_state.json"
    saved = json.loads(state.read_text())
    extra = saved["settings"]["extra"]
    for key in ("drop_min_epoch", "drop_score", "patience", "drop_epoch", "low_lr", "gold"):
        extra.pop(key)  # what the old recipes held instead: the release's values, and `data`
    extra.update(drop_min_epoch=15, drop_score=0.5, patience=5, drop_epoch=30, low_lr=1e-4, data="dgcnn-cloze")
    state.write_text(json.dumps(saved))
    capfd.readouterr()
    Trainer(tiny_recipe, small_config(out, max_steps=3, limit_train=128, checkpoint_every=1)).fit()
    assert "resuming from step 2" in capfd.readouterr().err
    # a setting that still exists and differs is still refused by name
    state = out / "checkpoints" / "step-00000003" / "trainer_state.json"
    saved = json.loads(state.read_text())
    saved["settings"]["extra"]["min_count"] = 3
    state.write_text(json.dumps(saved))
    from zoo_core import ZooError

    with pytest.raises(ZooError, match="min_count: 3 in the checkpoint, 2 now"):
        Trainer(tiny_recipe, small_config(out, max_steps=4, limit_train=128, checkpoint_every=1)).fit()


def _cli():
    from zoo_core.cli import cli  # the loaded plugins' commands attach when a command line needs them

    return cli


def test_train_installs_the_model_and_the_commands_use_it(tiny_recipe, small_config, tmp_path):
    folder = train(tiny_recipe, small_config(tmp_path / "run", max_steps=2))
    assert folder.name == "dgcnn-cloze"
    model = load_model("dgcnn-cloze")
    assert model.architecture == "dgcnn"
    cli, run = _cli(), CliRunner()
    passages = ["江泽民主席访问了美国。", "美国总统克林顿欢迎中国客人。"]
    r = run.invoke(cli, ["answer", "dgcnn-cloze", "谁访问了美国", "--passage", passages[0], "--passage", passages[1],
                         "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    details = model.answer("谁访问了美国", passages, details=True)
    assert out["answer"] == details["answer"] and out["score"] == pytest.approx(details["score"])
    file = tmp_path / "passages.txt"
    file.write_text("\n".join(passages) + "\n\n", encoding="utf-8")
    r2 = run.invoke(cli, ["answer", "dgcnn-cloze", "谁访问了美国", "--passages", str(file), "--json"])
    assert r2.exit_code == 0 and json.loads(r2.output)["answer"] == out["answer"]
    r = run.invoke(cli, ["answer", "dgcnn-cloze", "谁访问了美国"])
    assert r.exit_code == 1 and "no passages" in r.output
    # zoo eval reports the Sogou score of the installed model
    r = run.invoke(cli, ["eval", "dgcnn-cloze", "--json", "--limit-eval", "60"])
    assert r.exit_code == 0, r.output
    scores = json.loads(r.output)
    assert {"accuracy", "f1", "score"} <= set(scores)
    assert scores["score"] == pytest.approx((scores["accuracy"] + scores["f1"]) / 2)


def test_a_model_of_another_kind_is_refused(zoo, tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architecture": "not-dgcnn"}))
    r = CliRunner().invoke(_cli(), ["answer", "x", "q", "--passage", "p", "--model", str(folder)])
    assert r.exit_code == 1 and "not-dgcnn" in r.output


def test_recipes_follow_the_release(zoo):
    from zoo_core import TrainConfig
    from zoo_dgcnn.train import DGCNNStep

    sogou = zoo.get_recipe_spec("dgcnn-sogou")
    d = sogou.defaults
    assert (d["batch_size"], d["lr"], d["ema_decay"], d["epochs"]) == (128, 1e-3, 0.9999, 120)
    # the rest of the release's numbers are the step's settings' defaults, which the recipe leaves alone
    s = DGCNNStep(torch.nn.Linear(1, 1), TrainConfig.from_dict(d)).settings
    release = (16, 15, 0.5, 5, 30, 1e-4)
    assert (s.min_count, s.drop_min_epoch, s.drop_score, s.patience, s.drop_epoch, s.low_lr) == release
    assert sogou.dataset == "dgcnn-sogou" and zoo.get_recipe_spec("dgcnn-cloze").dataset == "dgcnn-cloze"


def test_settings_are_typed_and_checked(tiny_recipe, small_config, tmp_path):
    """A setting of the wrong type or out of range, or one nothing reads, is refused by name before the run."""
    from zoo_core import ZooError

    for bad, match in (({"min_count": "many"}, "--set min_count"), ({"min_count": 0}, "--set min_count"),
                       ({"low_lr": -1.0}, "--set low_lr"), ({"data": "dgcnn-sogou"}, "--set data")):
        with pytest.raises(ZooError) as exc:
            Trainer(tiny_recipe, small_config(tmp_path / "run", **bad)).fit()
        assert match in exc.value.where, (bad, exc.value.where)
    assert not (tmp_path / "run").exists()


def test_the_sogou_recipe_trains_on_a_folder_and_scores_with_the_gold_alternatives(zoo, small_config, tmp_path):
    """SogouQA (JSON lines, competition format) + WebQA v1.0 from a folder, the qid_answer_expand gold."""
    import dataclasses

    folder = tmp_path / "data"
    folder.mkdir()
    cities = ["北京", "上海", "广州", "深圳", "南京", "杭州", "成都", "武汉", "西安", "重庆"]
    with open(folder / "SogouQA.json", "w", encoding="utf-8") as f:
        for i in range(60):
            c = cities[i % 10]
            f.write(json.dumps({"query_id": f"s{i}", "query": f"第{i}个问题问的是哪座城市", "answer": c, "passages": [
                {"passage_id": 1, "passage_text": f"答案是{c}，这是第{i}段"},
                {"passage_id": 2, "passage_text": "这一段没有答案"}]}, ensure_ascii=False) + "\n")
    webqa = {f"W{i}": {"question": "哪座城市", "evidences": {f"W{i}#0": {"answer": [cities[i % 10]],
                                                                       "evidence": f"就是{cities[i % 10]}"}}}
             for i in range(8)}
    (folder / "WebQA.json").write_text(json.dumps(webqa, ensure_ascii=False), encoding="utf-8")
    # the gold file adds an alternative ("上海市") the data does not have
    (folder / "qid_answer_expand").write_text(
        "".join(f"s{i}\t{cities[i % 10]}\t{cities[i % 10]}|{cities[i % 10]}市\n" for i in range(60)), encoding="utf-8")
    recipe = dataclasses.replace(zoo.get_recipe_spec("dgcnn-sogou"), model_config={"dim": 16, "passage_rates": [1]})
    options = {"dataset_options": {"root": str(folder)}, "gold": str(folder / "qid_answer_expand")}
    config = small_config(tmp_path / "run", max_steps=2, limit_train=None, limit_eval=None, batch_size=16, **options)
    Trainer(recipe, config).fit()
    v = [line for line in _log(tmp_path / "run") if line.get("split") == "validation"][-1]
    from zoo_dgcnn.data import _fold

    assert v["questions"] == sum(_fold(f"s{i}", 3) == 0 for i in range(60))  # the dev fold only
    model = load_model(tmp_path / "run" / "model")
    assert "京" in model.config.vocab  # counted from the training folds (and WebQA)
    metrics = evaluate(recipe, model, split="validation", config=config)
    assert metrics["questions"] == v["questions"] and metrics["score"] == pytest.approx(v["score"])
    from zoo_dgcnn.sogou import score_one
    from zoo_dgcnn.train import DGCNNStep

    gold = DGCNNStep(model, config)._gold_of("s1", "上海")
    assert score_one("上海市", gold)["exact"] == 1  # scored against the file's alternatives
    assert score_one("上海市", DGCNNStep(model, small_config(tmp_path / "n"))._gold_of("s1", "上海"))["exact"] == 0
    # a gold file without the dev questions is a clear error
    (folder / "other").write_text("x\ty\ty\n", encoding="utf-8")
    from zoo_core import ZooError

    with pytest.raises(ZooError, match="not in the gold file"):
        other = small_config(tmp_path / "e", **{**options, "gold": str(folder / "other")})
        evaluate(recipe, model, split="validation", config=other)


def test_the_2018_variant_trains_through_the_recipe(tiny_recipe, small_config, tmp_path):
    """--model-set of the 2018 differences: positions, the 8 features (from jieba words), a window-1 block."""
    import dataclasses

    model_config = {"dim": 16, "question_rates": [1], "passage_rates": [1, 2, 4], "position_dim": 16,
                    "features": 8, "first_window": 1}
    recipe = dataclasses.replace(tiny_recipe, model_config=model_config)
    best = Trainer(recipe, small_config(tmp_path / "run", max_steps=2, limit_eval=40)).fit()
    model = load_model(best)
    assert model.config.features == 8 and model.p_first is not None
    assert isinstance(model.answer("谁访问了美国", ["江泽民主席访问了美国。"]), str)
