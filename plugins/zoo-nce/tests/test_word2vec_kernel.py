"""The compiled SGNS loop (zoo_nce.kernel): gensim's per-pair update, determinism, threads, the fallback, settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from zoo_core import TrainConfig, Trainer, ZooError, load_model

from zoo_nce import kernel

numba_sgns = pytest.importorskip("zoo_nce._sgns_numba")


def _reference(u, v, ids, alpha, window=1, noise=None, noise_step=1.0):
    """gensim's fast_sentence_sg_neg, one pair after the other, in Python; ``noise``: the one noise word of
    every pair (None: no noise words), whose output vector moves ``noise_step`` times the step."""
    from zoo_nce._sgns_numba import MAX_EXP, SIGMOID, TABLE

    n = len(ids)
    for j in range(n):
        for i in range(max(0, j - window), min(n, j + window + 1)):
            if i == j:
                continue
            ctx, centre = ids[i], ids[j]
            e = np.zeros_like(u[ctx])
            for target, label, scale in [(centre, 1.0, 1.0)] + ([(noise, 0.0, noise_step)] if noise else []):
                f = np.float32(np.dot(u[ctx], v[target]))
                if f <= -MAX_EXP or f >= MAX_EXP:
                    continue
                sig = SIGMOID[int((f + MAX_EXP) * np.float32(TABLE / MAX_EXP / 2))]
                g = (np.float32(label) - sig) * np.float32(alpha)
                e += g * v[target]
                v[target] += np.float32(scale) * g * u[ctx]
            u[ctx] += e


def test_the_kernel_is_gensims_per_pair_update():
    rng = np.random.default_rng(0)
    u = rng.normal(0, 1, (6, 8)).astype(np.float32)
    v = rng.normal(0, 1, (6, 8)).astype(np.float32)
    ids = np.array([3, 1, 4, 1, 5, 0, 2, 2, 1], dtype=np.int64)
    uu, vv = u.copy(), v.copy()
    _reference(uu, vv, ids.tolist(), 0.05)
    ones = np.ones(6, np.float32)
    pairs, _ = numba_sgns.run(u, v, ids[None], np.zeros((1, ids.size), np.int64), ones, ones, np.arange(6),
                              1, 0, np.array([0.05]), 1.0, np.array([7], dtype=np.int64))
    assert pairs.tolist() == [2 * ids.size - 2]
    np.testing.assert_allclose(u, uu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v, vv, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("noise_step", [1.0, 1.25])
def test_noise_words_follow_gensims_update_scaled_by_noise_step(noise_step):
    """One noise word per pair, always word 1 (an alias table that only gives 1): v_1 moves noise_step × g u_i."""
    rng = np.random.default_rng(1)
    u = rng.normal(0, 0.5, (3, 8)).astype(np.float32)
    v = rng.normal(0, 0.5, (3, 8)).astype(np.float32)
    ids = np.array([0, 2, 2, 0, 2, 0, 0], dtype=np.int64)
    uu, vv = u.copy(), v.copy()
    _reference(uu, vv, ids.tolist(), 0.05, noise=1, noise_step=noise_step)
    prob, alias = np.array([0.0, 1.0, 0.0], np.float32), np.array([1, 1, 1])
    numba_sgns.run(u, v, ids[None], np.zeros((1, ids.size), np.int64), np.ones(3, np.float32), prob, alias,
                   1, 1, np.array([0.05]), noise_step, np.array([3], dtype=np.int64))
    np.testing.assert_allclose(u, uu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v, vv, rtol=1e-5, atol=1e-6)


def test_pairs_stay_in_their_sentence_and_window():
    """With window 3 the reduced window reaches 1-3 words; no pair crosses a sentence; pads are ignored."""
    ids = np.array([[0, 1, 2, 3, 4, 5, -1, -1]], dtype=np.int64)
    sent = np.array([[0, 0, 0, 1, 1, 1, -1, -1]], dtype=np.int64)
    ones = np.ones(6, np.float32)
    counts = []
    for seed in range(50):
        u = np.zeros((6, 4), np.float32)
        pairs, _ = numba_sgns.run(u, u.copy(), ids, sent, ones, ones, np.arange(6), 3, 0, np.array([0.0]), 1.0,
                                  np.array([seed], dtype=np.int64))
        counts.append(int(pairs[0]))
    # each sentence of 3: every centre pairs with its 2 neighbours unless its window is 1 (then the far one is lost)
    assert min(counts) >= 8 and max(counts) == 12 and len(set(counts)) > 1


def _config(out, corpus, **over):
    values = {"epochs": 3, "batch_size": 4, "lr": 0.025, "eval_every": None, "progress": False, "log_every": 5,
              "checkpoint_every": 1000, "device": "cpu", "threads": 1, "sample": 0,
              "dataset_options": {"corpus": str(corpus), "min_count": 5, "block_tokens": 64}}
    values.update(over, out=str(out))
    return TrainConfig.from_dict(values)


def _recipe(zoo, dim=16):
    import dataclasses

    return dataclasses.replace(zoo.get_recipe_spec("sgns-peoples-daily"), model_config={"dim": dim})


def _tables(best):
    m = load_model(best)
    return m.input.detach().clone(), m.output.detach().clone()


def test_one_thread_is_bit_identical_from_run_to_run(zoo, planted, tmp_path):
    a = _tables(Trainer(_recipe(zoo, 8), _config(tmp_path / "a", planted)).fit())
    b = _tables(Trainer(_recipe(zoo, 8), _config(tmp_path / "b", planted)).fit())
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = _tables(Trainer(_recipe(zoo, 8), _config(tmp_path / "c", planted, seed=1)).fit())
    assert not torch.equal(a[0], c[0])


def test_two_threads_learn_the_planted_pairs(zoo, planted, tmp_path):
    """Hogwild over 2 numba threads: not bit-identical run to run, but it learns what one thread learns."""
    model = load_model(Trainer(_recipe(zoo), _config(tmp_path / "run", planted, threads=2, epochs=5)).fit())
    for t in range(6):
        nearest = [w for w, _ in model.most_similar(f"p{t}_a", 3) if w.startswith("p")]
        assert nearest and nearest[0] == f"p{t}_b", model.most_similar(f"p{t}_a", 5)


FALLBACK = """
import sys, torch
sys.modules["numba"] = None  # as on a machine where numba does not install
from zoo_core import TrainConfig, Trainer, load_model, ZooError
from zoo_core.plugins import get_recipe_spec
import dataclasses
recipe = dataclasses.replace(get_recipe_spec("sgns-peoples-daily"), model_config={{"dim": 8}})
base = {{"epochs": 2, "batch_size": 4, "lr": 0.025, "eval_every": None, "progress": False, "device": "cpu",
        "threads": 1, "sample": 0, "dataset_options": {{"corpus": {corpus!r}, "min_count": 5, "block_tokens": 64}}}}
try:
    Trainer(recipe, TrainConfig.from_dict({{**base, "out": "forced", "kernel": "numba"}})).fit()
except ZooError as exc:
    print("REFUSED:", exc)
a = load_model(Trainer(recipe, TrainConfig.from_dict({{**base, "out": "auto"}})).fit())
b = load_model(Trainer(recipe, TrainConfig.from_dict({{**base, "out": "torch", "kernel": "torch"}})).fit())
print("SAME:", torch.equal(a.input, b.input) and torch.equal(a.output, b.output))
"""


def test_without_numba_the_torch_update_trains(zoo, planted, tmp_path):
    """numba missing: kernel=auto says so once and trains exactly as kernel=torch; kernel=numba is refused."""
    script = FALLBACK.format(corpus=str(planted))
    env = {**os.environ, "ZOO_LOAD_PLUGINS": "nce"}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "REFUSED: kernel=numba cannot run: numba is not usable here (ModuleNotFoundError" in out.stdout, out.stdout
    assert "SAME: True" in out.stdout, out.stdout
    assert out.stderr.count("word2vec uses the batched torch update: numba is not usable here") >= 1, out.stderr


def test_the_environment_variable_turns_the_kernel_off(monkeypatch):
    monkeypatch.setattr(kernel, "_kernel", None)
    monkeypatch.setattr(kernel, "_failed", None)
    monkeypatch.setenv("ZOO_NCE_KERNEL", "torch")
    assert kernel.load() is None and kernel.reason() == "ZOO_NCE_KERNEL=torch"


def test_similar_refuses_a_negative_count(zoo, planted, tmp_path):
    from zoo_core.cli import cli

    best = Trainer(_recipe(zoo, 8), _config(tmp_path / "run", planted, epochs=1)).fit()
    for n in ("-5", "0"):
        r = CliRunner().invoke(cli, ["similar", str(best), "p0_a", "-n", n])
        assert r.exit_code != 0 and "-n/--topn must be at least 1" in r.output and "Traceback" not in r.output, \
            r.output


KILLED_EXPORT = """
import sys, torch
from zoo_core.testing import only_plugins
from zoo_nce.model import Word2Vec, Word2VecConfig
import zoo_text
words = [f"w{{i}}" for i in range(200_000)]
vectors = torch.randn(len(words), 32)
print("writing", flush=True)
while True:  # until killed: each write leaves a .partial while it runs
    zoo_text.write_word2vec({out!r}, words, vectors)
"""


def test_a_killed_export_leaves_nothing_behind_after_the_next_one(zoo, planted, tmp_path):
    """kill -9 during `zoo export word2vec` leaves a hidden .partial; the next export of that file removes it."""
    from zoo_core.cli import cli

    out = tmp_path / "vectors.txt"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_EXPORT.format(out=str(out))], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        deadline = time.monotonic() + 120
        while not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")] and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".vectors.txt.") and p.name.endswith(".partial")]
    assert left, "the export was not caught mid-write"
    best = Trainer(_recipe(zoo, 8), _config(tmp_path / "run", planted, epochs=1)).fit()
    r = CliRunner().invoke(cli, ["export", "word2vec", str(best), str(out)])
    assert r.exit_code == 0, r.output
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    assert out.read_text(encoding="utf-8").splitlines()[0] == f"{len(load_model(best).config.words)} 8"


@pytest.mark.parametrize("setting, value, says", [("kernel", "gpu", "unknown kernel 'gpu'"),
                                                  ("noise_step", 0, "noise_step must be a positive number"),
                                                  ("window", 0, "window must be at least 1"),
                                                  ("window", 2.5, "setting window of SGNSStep must be")])
def test_a_bad_setting_is_refused_naming_the_option(zoo, planted, tmp_path, setting, value, says):
    with pytest.raises(ZooError) as err:
        Trainer(_recipe(zoo, 8), _config(tmp_path / "run", planted, **{setting: value})).fit()
    assert says in str(err.value) and f"--set {setting}=" in str(err.value), str(err.value)
