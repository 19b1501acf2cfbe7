"""Hostile and foreign inputs (issue 23): each gets one clear error naming the file, or is read correctly."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from zoo_core import ZooError
from zoo_dgcnn import data
from zoo_dgcnn.records import read_records
from zoo_dgcnn.sogou import read_gold, read_predictions

SOGOU_LINE = {"query_id": "1", "query": "中国的首都是哪里", "answer": "北京",
              "passages": [{"passage_id": 1, "passage_text": "北京是中国的首都"}]}
SCHEMA = [{"id": "1", "question": "中国的首都是哪里", "passages": [{"passage": "北京是中国的首都", "answer": "北京"}]}]


def _cli():
    from zoo_core.cli import cli  # the loaded plugins' commands attach when a command line needs them

    return cli


@pytest.mark.parametrize("fmt", ["array", "lines"])
def test_a_gbk_file_names_the_encoding_to_convert_from(tmp_path, fmt):
    path = tmp_path / "SogouQA.json"
    text = json.dumps(SCHEMA, ensure_ascii=False) if fmt == "array" else json.dumps(SOGOU_LINE, ensure_ascii=False)
    path.write_bytes(text.encode("gbk"))
    with pytest.raises(ZooError, match="GBK") as exc:
        list(read_records(path))
    assert exc.value.where == str(path) and "iconv -f GB18030 -t UTF-8" in exc.value.hint


@pytest.mark.parametrize("bad", ["5", "null", '"text"', "[1, 2]"])
def test_a_json_line_that_is_not_an_object_names_file_and_line(tmp_path, bad):
    path = tmp_path / "SogouQA.json"
    path.write_text(json.dumps(SOGOU_LINE, ensure_ascii=False) + "\n\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(ZooError, match="must be an object") as exc:
        list(read_records(path))
    assert exc.value.where == f"{path}:3"


@pytest.mark.parametrize("text", [
    "[" * 100_000 + "]" * 100_000,  # a JSON array nested 100,000 deep
    '{"query": "q", "passages": ' + "[" * 100_000 + "]" * 100_000 + "}\n",  # one JSON line
    '{"Q1": {"question": "q", "evidences": ' + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "}}",  # WebQA
])
def test_deep_nesting_is_a_clear_error_not_a_recursion_error(tmp_path, text):
    path = tmp_path / "deep.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ZooError, match="nested too deeply") as exc:
        list(read_records(path))
    assert exc.value.where == str(path)


@pytest.mark.parametrize("fmt", ["array", "lines"])
def test_a_utf8_byte_order_mark_is_accepted_in_data_files(tmp_path, fmt):
    path = tmp_path / "SogouQA.json"
    text = json.dumps(SCHEMA, ensure_ascii=False) if fmt == "array" else json.dumps(SOGOU_LINE, ensure_ascii=False)
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    records = list(read_records(path))
    summary = [(r["id"], r["question"], r["passages"][0]["answer"]) for r in records]
    assert summary == [("1", "中国的首都是哪里", "北京")]


def test_a_byte_order_mark_in_the_gold_and_prediction_files_is_accepted(zoo, tmp_path):
    gold, preds = tmp_path / "gold", tmp_path / "preds"
    gold.write_bytes(b"\xef\xbb\xbf1\t\xe5\x8c\x97\xe4\xba\xac\t\xe5\x8c\x97\xe4\xba\xac\n")  # 1 北京 北京
    preds.write_bytes(b"\xef\xbb\xbf1\t\xe5\x8c\x97\xe4\xba\xac\n")
    assert set(read_gold(gold)) == {"1"}
    assert read_predictions(preds, read_gold(gold)) == [("1", "北京")]
    r = CliRunner().invoke(_cli(), ["score", "sogou", str(preds), "--gold", str(gold), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["accuracy"] == 1.0


@pytest.mark.parametrize("text,message", [("", "is empty"), ("\n \n", "is empty"), ("\ufeff", "is empty"),
                                          ("[]", "holds no questions"), ("{}", "holds no questions")])
def test_an_empty_data_file_says_so(tmp_path, zoo_home, text, message):
    (tmp_path / "SogouQA.json").write_text(text, encoding="utf-8")
    with pytest.raises(ZooError, match=message) as exc:
        data.SogouQA(root=tmp_path).split("train")
    assert exc.value.where == str(tmp_path / "SogouQA.json")


def test_an_empty_data_file_says_so_through_zoo_train(zoo, tmp_path):
    (tmp_path / "SogouQA.json").write_text("", encoding="utf-8")
    r = CliRunner().invoke(_cli(), ["train", "dgcnn-sogou", "--root", str(tmp_path), "--out", str(tmp_path / "run"),
                                    "--set", "word_vectors=", "--device", "cpu"])
    assert r.exit_code == 1
    assert "empty" in r.output and "fewer than" not in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("option", ["--gold", "predictions"])
def test_dev_zero_is_read_with_a_limit(zoo, tmp_path, option):
    good = tmp_path / "gold"
    good.write_text("1\t北京\t北京\n", encoding="utf-8")
    args = (["/dev/zero", "--gold", str(good)] if option == "predictions" else [str(good), "--gold", "/dev/zero"])
    r = CliRunner().invoke(_cli(), ["score", "sogou", *args])
    assert r.exit_code == 1 and "/dev/zero:1" in r.output and "longer than" in r.output, r.output


def test_a_passages_file_from_dev_zero_is_refused_past_its_limit(zoo, tmp_path):
    r = CliRunner().invoke(_cli(), ["answer", "dgcnn-cloze", "谁", "--passages", "/dev/zero"])
    assert r.exit_code == 1 and "larger than" in r.output and "/dev/zero" in r.output, r.output


LONG_PASSAGE = textwrap.dedent("""
    import resource, sys
    import torch
    from zoo_dgcnn.model import DGCNN, DGCNNConfig
    torch.manual_seed(0)
    vocab = [chr(0x4E00 + i) for i in range(500)]
    model = DGCNN(DGCNNConfig(vocab=vocab, dim=32)).eval()
    with torch.no_grad():  # every position passes the 0.1 threshold: decoding has the most spans to score
        model.start.bias.fill_(5.0); model.end.bias.fill_(5.0); model.gate.bias.fill_(5.0)
    passage = "".join(vocab[(i * 7919) % 500] for i in range(36_000))
    vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), vm + (1 << 30)))  # 1 GiB more than now
    out = model.answer("谁访问了美国？", [passage, "江泽民访问了美国"], details=True)
    print(len(out["candidates"]) > 1000)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and RLIMIT_AS")
def test_a_36000_character_passage_is_answered_within_a_gigabyte(tmp_path):
    """Memory grows linearly with a passage (decoding once built a length x length table: 5 GB here)."""
    r = subprocess.run([sys.executable, "-c", LONG_PASSAGE], capture_output=True, text=True, timeout=300,
                       env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and r.stdout.strip() == "True", r.stderr[-2000:]


def test_a_passage_over_the_bound_is_refused_by_name():
    from zoo_dgcnn.answering import MAX_PASSAGE_CHARS
    from zoo_dgcnn.model import DGCNN, DGCNNConfig

    model = DGCNN(DGCNNConfig(vocab=list("中国"), dim=8, question_rates=[1], passage_rates=[1]))
    with pytest.raises(ZooError, match="passage 2 is") as exc:
        model.answer("问题", ["短", "长" * (MAX_PASSAGE_CHARS + 1)])
    assert "split it" in exc.value.hint


def test_long_passages_are_batched_within_the_position_budget():
    from zoo_dgcnn.answering import BATCH_POSITIONS, batches as make_batches

    questions = ["问" * 20]
    pairs = [(0, "x" * n) for n in (30, 5000, 40, 40, 900, 20000, 10, 600, 600, 600)] + [(0, "y" * 50)] * 200
    batches = list(make_batches(pairs, questions, 64))
    assert [p for b in batches for p in b] == pairs  # every pair once, in order
    for b in batches:
        width = max(max(len(t) for _, t in b), 20)
        assert len(b) <= 64 and (len(b) == 1 or len(b) * width <= BATCH_POSITIONS)


def test_user_facing_errors_are_zoo_errors():
    from zoo_dgcnn.model import DGCNN, DGCNNConfig

    with pytest.raises(ZooError, match="unknown DGCNN variant"):
        DGCNNConfig.variant("2017")
    model = DGCNN(DGCNNConfig(vocab=list("中国"), dim=8, question_rates=[1], passage_rates=[1]))
    with pytest.raises(ZooError, match="2 questions but 1 passage lists"):
        model.answer(["问", "问"], [["段"]])
