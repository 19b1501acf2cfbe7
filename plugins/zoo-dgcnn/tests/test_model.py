"""The network: shapes, masks (padding never changes a result), focal loss, decoding and voting."""

from __future__ import annotations

import pytest
import torch

from zoo_core import ZooError

from zoo_dgcnn.answering import passage_spans, vote
from zoo_dgcnn.model import DGCNN, AttentionPooling, DGCNNConfig, GatedConv1d, focal_loss
from zoo_dgcnn.text import tokenizer_of

VOCAB = list("的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要")
V = len(VOCAB) + 2


def _model(**kw):
    torch.manual_seed(0)
    return DGCNN(DGCNNConfig(vocab=VOCAB, **kw)).eval()


def test_shapes_and_parameter_count_of_the_release():
    model = _model()
    q, p = torch.randint(2, V, (3, 7)), torch.randint(2, V, (3, 25))
    ps, pe = model(q, p)
    assert ps.shape == pe.shape == (3, 25)
    assert ((ps > 0) & (ps < 1)).all() and ((pe > 0) & (pe < 1)).all()
    body = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("embedding"))
    # the release's count: its passage input Dense(128) has no bias (a bias would add 128: 1,003,011)
    assert body == 1_002_883
    assert model.p_in.bias is None
    assert [b.conv.dilation[0] for b in model.question] == [1, 2, 1]
    assert [b.conv.dilation[0] for b in model.passage] == [1, 2, 4, 8, 16, 1]
    assert model.embedding.num_embeddings == len(VOCAB) + 2


def test_the_2018_variant_adds_positions_features_and_a_window_one_block():
    config = DGCNNConfig.variant("2018", vocab=VOCAB)
    model = DGCNN(config).eval()
    assert config.position_dim == 128 and config.features == 8 and config.passage_rates == [1, 2, 4]
    assert model.p_first.conv.kernel_size == (1,) and model.p_in.in_features == 128 * 2 + 128 + 8
    ps, _ = model(*model.example_inputs(2))
    assert ps.shape == (2, 20)
    with pytest.raises(ZooError, match="variant"):
        DGCNNConfig.variant("2020")


def test_gated_block_and_pooling_ignore_padding():
    torch.manual_seed(0)
    block, pool = GatedConv1d(8, 8, 3, 2, dropout=0.0), AttentionPooling(8)
    x = torch.randn(1, 5, 8)
    mask = torch.ones(1, 5, 1)
    padded = torch.cat([x, torch.randn(1, 4, 8) * 100], 1)  # garbage where the mask is 0
    pmask = torch.cat([mask, torch.zeros(1, 4, 1)], 1)
    y, yp = block(x, mask), block(padded, pmask)
    torch.testing.assert_close(yp[:, :5], y)
    assert (yp[:, 5:] == 0).all()
    torch.testing.assert_close(pool(yp, pmask), pool(y, mask))


def test_gated_block_is_the_residual_gate_formula():
    torch.manual_seed(0)
    block = GatedConv1d(4, 4, 3, 1, dropout=0.0)
    x, mask = torch.randn(2, 6, 4), torch.ones(2, 6, 1)
    h, s = block.conv(x.transpose(1, 2)).transpose(1, 2).chunk(2, -1)
    sigma = torch.sigmoid(s)
    torch.testing.assert_close(block(x, mask), x * (1 - sigma) + h * sigma)
    assert GatedConv1d(4, 6).skip is not None and GatedConv1d(4, 4).skip is None  # 1x1 conv when widths differ


@pytest.mark.parametrize("variant", ["2019", "2018"])
def test_extra_padding_never_changes_the_probabilities(variant):
    torch.manual_seed(0)
    model = DGCNN(DGCNNConfig.variant(variant, vocab=VOCAB)).eval()
    q, p = torch.randint(2, V, (2, 6)), torch.randint(2, V, (2, 30))
    p[1, 20:] = 0  # the second passage is shorter
    feats = torch.rand(2, 30, 8) if variant == "2018" else None
    ps, pe = model(q, p, features=feats)
    q2 = torch.cat([q, torch.zeros(2, 5, dtype=torch.long)], 1)
    p2 = torch.cat([p, torch.zeros(2, 9, dtype=torch.long)], 1)
    f2 = torch.cat([feats, torch.rand(2, 9, 8)], 1) if feats is not None else None
    ps2, pe2 = model(q2, p2, features=f2)
    torch.testing.assert_close(ps2[:, :30], ps, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(pe2[:, :30], pe, atol=1e-6, rtol=1e-5)
    # the short passage alone, unpadded, gives its own probabilities too
    ps3, _ = model(q[1:], p[1:, :20], features=feats[1:, :20] if feats is not None else None)
    torch.testing.assert_close(ps3, ps[1:, :20], atol=1e-6, rtol=1e-5)


def test_answers_do_not_depend_on_batching():
    model = _model()
    passages = ["中国人说了", "我们在这个上来", "他是中国的", "子", "年着就那和要人在他有这个上们来到时大"]
    one = [model.answer("中国是", [p], details=True) for p in passages]
    batch = model.answer(["中国是"] * 5, [[p] for p in passages], details=True, batch_size=2)
    for a, b in zip(one, batch):
        assert a["answer"] == b["answer"] and a["score"] == pytest.approx(b["score"], rel=1e-5)


def test_focal_loss_against_a_direct_computation():
    p = torch.tensor([0.9, 0.1, 0.5, 1.0, 0.0])
    y = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0])
    expected = []
    for pi, yi in zip(p.tolist(), y.tolist()):
        pc = min(max(pi, 1e-8), 1 - 1e-8)
        import math

        expected.append(-0.25 * yi * (1 - pc) ** 2 * math.log(pc) - 0.75 * (1 - yi) * pc ** 2 * math.log(1 - pc))
    torch.testing.assert_close(focal_loss(p, y), torch.tensor(expected), rtol=1e-5, atol=1e-7)
    # the release's loss: (start + end) summed over unmasked positions / their number * 100
    ps, pe = torch.rand(2, 4), torch.rand(2, 4)
    ys, ye = torch.zeros(2, 4), torch.zeros(2, 4)
    ys[0, 1] = ye[0, 2] = 1
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    total = sum(float(focal_loss(ps[i, j], ys[i, j]) + focal_loss(pe[i, j], ye[i, j]))
                for i in range(2) for j in range(4) if mask[i, j])
    assert float(DGCNN.loss(ps, pe, ys, ye, mask)) == pytest.approx(total / 5 * 100, rel=1e-5)


def test_decoding_threshold_span_length_and_vote():
    text = "abcdefghijklmnopqrstuvwxyz"
    ps, pe = torch.zeros(26), torch.zeros(26)
    ps[0], pe[2] = 0.9, 0.8  # "abc": 0.72
    pe[14] = 0.9  # a..o is 15 characters: longer than 12, dropped
    ps[20], pe[21] = 0.5, 0.09  # under the threshold
    found = passage_spans(text, ps, pe)
    assert found == pytest.approx({"abc": 0.72})
    assert passage_spans(text, ps, pe, max_len=15) == pytest.approx({"abc": 0.72, "abcdefghijklmno": 0.81})
    # votes: s = sum(s^2) / (1 + sum(s)); two weak votes can beat one strong one
    out = vote([{"x": 0.9}, {"y": 0.6}, {"y": 0.6}])
    assert out["candidates"]["x"] == pytest.approx(0.81 / 1.9)
    assert out["candidates"]["y"] == pytest.approx(0.72 / 2.2)
    assert out["answer"] == "x"
    out = vote([{"x": 0.5}, {"y": 0.7}, {"y": 0.7}])
    assert out["answer"] == "y"
    assert vote([{}, {}]) == {"answer": "", "score": 0.0, "candidates": {}}


def test_word_vectors_enter_through_a_projection(tmp_path):
    from zoo_core.model import load_folder

    model = _model(words=["中国", "我们", "人"], word_dim=5)
    assert model.word_vectors.shape == (4, 5)
    with torch.no_grad():
        model.word_vectors[1:] = torch.randn(3, 5)
    assert (model.word_vectors[0] == 0).all()  # OOV row
    q, p, qw, pw, _ = tokenizer_of(model).batch(["中国人"], ["我们是中国人"])
    assert pw.tolist() == [[2, 2, 0, 1, 1, 3]]  # 我们 是(OOV) 中国 人
    model.eval()
    base = model(q, p, qw, pw)[0]
    assert not torch.allclose(base, model(q, p, torch.zeros_like(qw), torch.zeros_like(pw))[0])
    model.save_pretrained(tmp_path / "m")
    again = load_folder(tmp_path / "m")
    torch.testing.assert_close(again(q, p, qw, pw)[0], base)
    assert again.answer("中国人", ["我们是中国人"]) == model.answer("中国人", ["我们是中国人"])


def test_jieba_gets_only_the_word_vector_words_it_lacks():
    """As the release: re-adding a known word would change its frequency and jieba's total."""
    import jieba

    reference = jieba.Tokenizer()
    reference.check_initialized()
    model = _model(words=["中国", "我们", "蒲公英开放了"], word_dim=4)
    tok = tokenizer_of(model).jieba
    assert tok.total == reference.total + tok.FREQ["蒲公英开放了"]  # only the new word counted
    assert tok.FREQ["中国"] == reference.FREQ["中国"] and tok.FREQ["我们"] == reference.FREQ["我们"]
    assert tokenizer_of(model).cut("蒲公英开放了") == ["蒲公英开放了"]


def test_decoding_matches_the_release_loop_on_random_probabilities():
    """The linear-memory decoder gives the release's loop's spans and scores (orig. extract_answer)."""
    g = torch.Generator().manual_seed(3)
    for n in (1, 7, 40, 300):
        text = "".join("甲乙丙丁"[int(i)] for i in torch.randint(0, 4, (n,), generator=g))
        ps, pe = torch.rand(n, generator=g), torch.rand(n, generator=g)
        expected: dict[str, float] = {}
        for i in (ps > 0.1).nonzero().flatten().tolist():
            for j in (pe > 0.1).nonzero().flatten().tolist():
                if i <= j < i + 12:
                    expected[text[i:j + 1]] = max(expected.get(text[i:j + 1], 0.0), float(ps[i] * pe[j]))
        found = passage_spans(text, ps, pe)
        assert found.keys() == expected.keys()
        for k in found:
            assert found[k] == pytest.approx(expected[k])
