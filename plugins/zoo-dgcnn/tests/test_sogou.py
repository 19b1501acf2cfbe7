"""The Sogou scorer on hand-made cases, one rule (and one quirk of the Python 2 original) at a time."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from zoo_core import ZooError
from zoo_dgcnn.sogou import Gold, normalize, read_gold, read_predictions, score, score_one, tokens

GOLD = "\n".join([
    "q1\t北京\t北京|北京市",
    "q2\tApple Inc\tApple Inc.|苹果公司",
    "q3\t１９９８年\t１９９８年",
    "q4\t孙中山\t孙中山|孙文",
    "q5\tnew york city\tNew York City",
    "q7\tÄrger\tÄrger",
    "q8\t上海\t沪",
]) + "\n"


@pytest.fixture
def gold(tmp_path):
    path = tmp_path / "qid_answer_expand"
    path.write_text(GOLD, encoding="utf-8")
    return read_gold(path)


def one(gold, qid, answer):
    row = score_one(answer, gold[qid])
    return row["exact"], round(row["f1"], 4)


def test_normalisation_steps():
    assert normalize("ＡＢＣ　１２３") == "abc123"  # full-width to half-width, U+3000 to a space, then removed
    assert normalize(" 《北京》， ") == "北京"  # listed punctuation becomes a space, blanks go
    assert normalize("ÄRGER") == "Ärger"  # only ASCII letters are lower-cased
    assert normalize("北\u00a0京") == "北\u00a0京"  # a non-ASCII space is not a blank
    assert normalize("a\tb\nc\x0bd") == "abcd"
    assert normalize("〝x〞") == "〝x〞"  # not in the list


def test_full_width_and_case(gold):
    assert one(gold, "q3", "１９９８年") == (1, 1.0)
    assert one(gold, "q3", "1998年") == (1, 1.0)
    assert one(gold, "q2", "APPLE INC.") == (1, 1.0)
    assert one(gold, "q2", "ａｐｐｌｅ ｉｎｃ") == (1, 1.0)


def test_non_ascii_case_is_kept_as_python2_bytes_do(gold):
    # Python 3's str.lower() would make this an exact match; the original's byte-string lower() does not
    assert one(gold, "q7", "ärger") == (0, 0.8)


def test_punctuation_and_blanks(gold):
    assert one(gold, "q1", "《北京》") == (1, 1.0)
    assert one(gold, "q1", "北 京") == (1, 1.0)
    assert one(gold, "q1", "北\u3000京") == (1, 1.0)
    assert one(gold, "q1", "〝北京〞") == (0, 0.6667)  # unlisted brackets stay: F1 2/4 precision, full recall
    assert one(gold, "q1", "北\u00a0京") == (0, 0.8)


def test_alternatives_and_the_unlisted_main_answer(gold):
    assert one(gold, "q4", "孙文") == (1, 1.0)
    assert one(gold, "q1", "北京市") == (1, 1.0)
    # q8's answer 上海 is not among its alternatives (沪): exact through the token-set rule, F1 0
    assert one(gold, "q8", "上海") == (1, 0.0)


def test_token_set_rule(gold):
    assert one(gold, "q5", "York New City") == (1, 1.0)
    # ", " makes two spaces and so an empty token: not the same set (the original splits on " ")
    assert one(gold, "q5", "City, New York") == (0, 1.0)
    assert tokens("City, New York") == {"city", "", "new", "york"}


def test_f1_is_a_character_multiset_overlap_maximised_over_alternatives(gold):
    assert one(gold, "q1", "北京大学") == (0, round(2 * 0.5 * 1 / 1.5, 4))  # against 北京: p 2/4, r 2/2
    assert one(gold, "q1", "北京市区") == (0, round(2 * 0.75 * 1 / 1.75, 4))  # against 北京市: p 3/4, r 3/3
    assert one(gold, "q1", "京京") == (0, round(2 * 0.5 * 0.5, 4))  # a character counts as often as it occurs
    assert score_one("x", Gold.of("y", "y"))["best"] is None


def test_empty_answers(gold):
    assert one(gold, "q1", "") == (0, 0.0)
    assert one(gold, "q1", "  \t") == (0, 0.0)
    assert one(gold, "q1", "。") == (0, 0.0)  # not empty (raw), normalises to "" and matches nothing here
    assert score_one("。", Gold.of("，", "，"))["exact"] == 1  # ... but "" matches a punctuation-only answer


def test_score_is_the_mean_of_accuracy_and_f1_over_every_line(gold):
    preds = [("q1", "北京"), ("q7", "ärger"), ("q1", "北京大学"), ("q8", "")]
    out = score(preds, gold)
    assert out["questions"] == 4
    assert out["accuracy"] == pytest.approx(1 / 4)
    assert out["f1"] == pytest.approx((1 + 0.8 + 2 / 3 + 0) / 4)
    assert out["score"] == pytest.approx((out["accuracy"] + out["f1"]) / 2)


def test_bad_lines_and_unknown_qids_are_clear_errors(tmp_path, gold):
    bad = tmp_path / "pred.txt"
    bad.write_text("q1\t北京\nq2 Apple\n", encoding="utf-8")
    with pytest.raises(ZooError, match="2 fields") as exc:
        read_predictions(bad, gold)
    assert exc.value.where == f"{bad}:2"
    bad.write_text("q1\t北京\tx\n", encoding="utf-8")
    with pytest.raises(ZooError, match="2 fields, got 3"):
        read_predictions(bad, gold)
    bad.write_text("q1\t北京\n\n", encoding="utf-8")
    with pytest.raises(ZooError, match="got 1") as exc:
        read_predictions(bad, gold)  # the original counts a blank line and rejects it
    assert exc.value.where.endswith(":2")
    bad.write_text("q1\t北京\nq9\tx\n", encoding="utf-8")
    with pytest.raises(ZooError, match="q9") as exc:
        read_predictions(bad, gold)
    assert exc.value.where.endswith(":2")
    g = tmp_path / "gold"
    g.write_text("q1\t北京\t北京\nq2\tApple\n", encoding="utf-8")
    with pytest.raises(ZooError, match="3 fields") as exc:
        read_gold(g)
    assert exc.value.where == f"{g}:2"
    g.write_bytes(b"q1\t\xff\t\xff\n")
    with pytest.raises(ZooError, match="UTF-8"):
        read_gold(g)
    with pytest.raises(ZooError, match="not found"):
        read_gold(tmp_path / "missing")


def test_a_carriage_return_stays_in_the_row_but_is_stripped_for_scoring(tmp_path, gold):
    path = tmp_path / "pred.txt"
    path.write_bytes("q1\t北京\r\n".encode())
    preds = read_predictions(path, gold)
    assert preds == [("q1", "北京\r")]
    assert score(preds, gold)["accuracy"] == 1.0


def _cli():
    from zoo_core.cli import cli  # the loaded plugins' commands attach when a command line needs them

    return cli


def test_the_command(zoo, tmp_path):
    (tmp_path / "gold").write_text(GOLD, encoding="utf-8")
    (tmp_path / "pred").write_text("q1\t北京\nq7\tärger\nq5\tYork New City\nq8\t\n", encoding="utf-8")
    run = CliRunner()
    rows = tmp_path / "rows.tsv"
    r = run.invoke(_cli(), ["score", "sogou", str(tmp_path / "pred"), "--gold", str(tmp_path / "gold"),
                            "--out", str(rows), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["questions"] == 4 and out["accuracy"] == 0.5
    assert out["f1"] == pytest.approx((1 + 0.8 + 1 + 0) / 4)
    assert out["score"] == pytest.approx((0.5 + 0.7) / 2)
    lines = rows.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t")[:4] == ["q1", "北京", "1", "1.000000"]
    assert lines[1].split("\t") == ["q7", "ärger", "0", "0.800000", "0.800000", "0.800000", "Ärger"]
    assert lines[3].split("\t") == ["q8", "", "0", "0.000000", "0.000000", "0.000000", "None"]
    (tmp_path / "pred").write_text("q1\t北京\nqx\ty\n", encoding="utf-8")
    rows.unlink()
    r = run.invoke(_cli(), ["score", "sogou", str(tmp_path / "pred"), "--gold", str(tmp_path / "gold"),
                            "--out", str(rows)])
    assert r.exit_code == 1 and "qx" in r.output and ":2" in r.output and not rows.exists()
