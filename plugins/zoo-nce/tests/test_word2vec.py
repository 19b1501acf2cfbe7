"""word2vec SGNS: gensim's subsampling and reduced window, a planted corpus, one read of it, export and the commands."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from click.testing import CliRunner

from zoo_core import TrainConfig, Trainer, load_model

from zoo_nce.data import load_corpus
from zoo_nce.train import keep_probabilities, sgns_update, skipgram_pairs


def test_keep_probability_is_gensims_formula():
    counts = torch.tensor([10_000, 1000, 100, 1])
    t = 1e-3 * 11_101
    expected = [min(1.0, ((c / t) ** 0.5 + 1) * t / c) for c in counts.tolist()]
    torch.testing.assert_close(keep_probabilities(counts, 1e-3), torch.tensor(expected, dtype=torch.float32))
    assert keep_probabilities(counts, 0).tolist() == [1.0] * 4


def test_reduced_window_pair_counts():
    """Centre j pairs with each token of its sentence at distance ≤ window − b_j, b_j uniform in [0, window)."""
    ids = torch.arange(12)
    sentence = torch.tensor([0] * 8 + [1] * 4)
    gen = torch.Generator().manual_seed(0)
    context, centre = skipgram_pairs(ids, sentence, 3, gen)
    reach = 3 - torch.randint(0, 3, (12,), generator=torch.Generator().manual_seed(0))
    expected = Counter()
    for j in range(12):
        for i in range(12):
            if i != j and sentence[i] == sentence[j] and abs(i - j) <= reach[j]:
                expected[(i, j)] += 1
    assert Counter(zip(context.tolist(), centre.tolist())) == expected


def test_sgns_update_is_the_gradient_step_of_the_loss():
    """Without damping, the in-place update equals −alpha × autograd's gradient of the summed SGNS loss."""
    torch.manual_seed(0)
    u, v = torch.randn(7, 4, dtype=torch.float64), torch.randn(7, 4, dtype=torch.float64)
    context, centre, noise = torch.tensor([0, 1, 1, 3]), torch.tensor([2, 2, 4, 5]), torch.tensor([6, 2, 0])
    uu, vv = u.clone().requires_grad_(), v.clone().requires_grad_()
    f_pos = (uu[context] * vv[centre]).sum(1)
    f_neg = uu[context] @ vv[noise].T
    hits = noise[None] == centre[:, None]
    loss = -(torch.nn.functional.logsigmoid(f_pos)
             + (5 / 3) * torch.nn.functional.logsigmoid(-f_neg).masked_fill(hits, 0).sum(1)).sum()
    loss.backward()
    sgns_update(u, v, context, centre, noise, alpha=0.1, negative=5, damping=None)
    torch.testing.assert_close(u, uu.detach() - 0.1 * uu.grad)
    torch.testing.assert_close(v, vv.detach() - 0.1 * vv.grad)


def _config(out, corpus, **over):
    values = {"epochs": 5, "batch_size": 1, "lr": 0.025, "eval_every": None, "progress": False, "log_every": 5,
              "checkpoint_every": 1000, "device": "cpu", "threads": 1,
              "dataset_options": {"corpus": str(corpus), "min_count": 5, "block_tokens": 64},
              "shared_negatives": 16, "sample": 0}
    values.update(over, out=str(out))
    return TrainConfig.from_dict(values)


def _recipe(zoo, dim=16):
    import dataclasses

    return dataclasses.replace(zoo.get_recipe_spec("sgns-peoples-daily"), model_config={"dim": dim})


def test_planted_pairs_are_nearest_neighbours(zoo, planted, tmp_path):
    best = Trainer(_recipe(zoo), _config(tmp_path / "run", planted)).fit()
    model = load_model(best)
    assert model.config.words[0].startswith("f") or model.config.words[0].startswith("c")  # most frequent first
    topics = sorted(w[1:-2] for w in model.config.words if w.endswith("_a"))
    assert len(topics) == 6
    for t in topics:
        for a, b in ((f"p{t}_a", f"p{t}_b"), (f"p{t}_b", f"p{t}_a")):
            nearest = [w for w, _ in model.most_similar(a, 3) if w.startswith("p")]
            assert nearest and nearest[0] == b, (a, model.most_similar(a, 5))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r and "split" not in r]
    assert losses[-1] < losses[0]


def test_vocabulary_follows_min_count_and_frequency_order(planted):
    corpus = load_corpus(str(planted), 5, 256)
    counts = Counter(w for line in open(planted, encoding="utf-8") for w in line.split())
    assert corpus.words == [w for w, c in sorted(counts.items(), key=lambda kv: -kv[1]) if c >= 5]
    assert corpus.raw_words == sum(counts.values())
    assert corpus.ids.numel() == sum(c for c in counts.values() if c >= 5)


def test_a_run_reads_its_corpus_once_and_the_model_is_born_its_size(zoo, planted, tmp_path, monkeypatch):
    """Data first: the run's dataset reads the corpus once, and word2vec is built with its vocabulary."""
    from zoo_nce import data
    from zoo_nce.model import Word2Vec

    reads, built = [], []
    read, init = data.read_sentences, Word2Vec.__init__
    monkeypatch.setattr(data, "read_sentences", lambda corpus: reads.append(corpus) or read(corpus))

    def recording_init(self, config):
        init(self, config)
        built.append(tuple(self.input.shape))

    monkeypatch.setattr(Word2Vec, "__init__", recording_init)
    Trainer(_recipe(zoo, dim=8), _config(tmp_path / "run", planted, epochs=1)).fit()
    assert reads == [str(planted)]
    words = load_corpus(str(planted), 5, 64).words
    assert built[0] == (len(words), 8)


def test_export_round_trips_through_gensim_and_similar_prints(zoo, planted, tmp_path):
    pytest.importorskip("zoo_text")
    keyed = pytest.importorskip("gensim.models").KeyedVectors
    from zoo_core.cli import cli

    best = Trainer(_recipe(zoo, dim=8), _config(tmp_path / "run", planted, epochs=1)).fit()
    model = load_model(best)
    run = CliRunner()
    for binary in (False, True):
        out = tmp_path / f"vectors{'.bin' if binary else '.txt'}"
        r = run.invoke(cli, ["export", "word2vec", str(best), str(out)] + (["--binary"] if binary else []))
        assert r.exit_code == 0, r.output
        kv = keyed.load_word2vec_format(str(out), binary=binary)
        assert kv.index_to_key == model.config.words
        torch.testing.assert_close(torch.tensor(kv.vectors), model.input.detach())
    r = run.invoke(cli, ["similar", str(best), "p0_a", "-n", "3"])
    assert r.exit_code == 0 and len(r.output.strip().splitlines()) == 3, r.output
    r = run.invoke(cli, ["similar", str(best), "p0_x"])
    assert r.exit_code != 0 and "did you mean" in r.output
