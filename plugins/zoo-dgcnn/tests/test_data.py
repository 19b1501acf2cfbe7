"""Loaders on small synthetic files in each format, malformed records, labels, crops, the cloze proxy."""

from __future__ import annotations

import json
import random

import pytest

from zoo_core import ZooError
from zoo_dgcnn import data
from zoo_dgcnn.records import _Stream, read_records, source_records
from zoo_dgcnn.cloze import ask, block_questions, sentences
from zoo_dgcnn.text import answer_labels, build_vocab

SCHEMA = [
    {"id": "a1", "question": "中国的首都是哪里", "passages": [
        {"passage": "北京是中国的首都，北京有故宫", "answer": "北京"}, {"passage": "上海是大城市", "answer": ""}]},
    {"id": "a2", "question": "长江有多长", "passages": [{"passage": "长江全长6300公里", "answer": "6300公里"}]},
]
WEBQA = {
    "Q_TRN_1": {"question": "中国的首都是哪里", "evidences": {
        "Q_TRN_1#00": {"answer": ["北京"], "evidence": "北京是中国的首都，北京有故宫"},
        "Q_TRN_1#01": {"answer": ["no_answer"], "evidence": "上海是大城市"}}},
    "Q_TRN_2": {"question": "长江有多长", "evidences": {
        "Q_TRN_2#00": {"answer": ["6300公里"], "evidence": "长江全长6300公里"}}},
}
SOGOU = [
    {"query_id": "a1", "query": "中国的首都是哪里", "answer": "北京", "passages": [
        {"passage_id": 1, "passage_text": "北京是中国的首都，北京有故宫"},
        {"passage_id": 2, "passage_text": "上海是大城市"}]},
    {"query_id": "a2", "query": "长江有多长", "answer": "6300公里",
     "passages": [{"passage_id": 1, "passage_text": "长江全长6300公里"}]},
]
EXPECTED = [(r["question"], [(p["passage"], p["answer"]) for p in r["passages"]]) for r in SCHEMA]


def _summary(records):
    return [(r["question"], [(p["passage"], p["answer"]) for p in r["passages"]]) for r in records]


@pytest.mark.parametrize("fmt", ["schema", "schema-lines", "webqa", "sogou"])
def test_every_format_reads_into_the_schema(tmp_path, fmt):
    path = tmp_path / f"{fmt}.json"
    if fmt == "schema":
        path.write_text(json.dumps(SCHEMA, ensure_ascii=False, indent=1), encoding="utf-8")
    elif fmt == "schema-lines":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in SCHEMA), encoding="utf-8")
    elif fmt == "webqa":
        path.write_text(json.dumps(WEBQA, ensure_ascii=False), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n\n" for r in SOGOU), encoding="utf-8")
    records = list(read_records(path))
    assert _summary(records) == EXPECTED
    assert [r["id"] for r in records] == (["Q_TRN_1", "Q_TRN_2"] if fmt == "webqa" else ["a1", "a2"])


def test_the_reader_streams_in_small_chunks(tmp_path, monkeypatch):
    path = tmp_path / "webqa.json"
    path.write_text(json.dumps(WEBQA, ensure_ascii=False, indent=2), encoding="utf-8")
    monkeypatch.setattr(_Stream.__init__, "__defaults__", (7,))  # 7-character reads
    assert _summary(read_records(path)) == EXPECTED
    path.write_text(json.dumps(SCHEMA, ensure_ascii=False), encoding="utf-8")
    assert _summary(read_records(path)) == EXPECTED


@pytest.mark.parametrize("text,message,where", [
    ('[{"id": "a1", "question": "q", "passages": []}, {"id": "b2", "passages": []}]', "no 'question'",
     "record 1 (id 'b2')"),
    ('[{"id": "a1", "question": "q", "passages": [{"passage": 3, "answer": ""}]}]', "passage 0", "record 0"),
    ('[{"id": "a1", "question": "q", "passages": []} {"id": "b"}]', "expected", ""),
    ('[{"id": "a1", "question": "q", "passages": [', "malformed JSON", ""),
    ('{"Q1": {"question": "q", "evidences": {"e": {"answer": "x", "evidence": "t"}}}}', "evidence 'e'",
     "record 0 (id 'Q1')"),
    ('{"query_id": 1, "query": "q", "passages": [{"passage_id": 1, "passage_text": "t"}]}\n{"query_id": 2, "query": 5}',
     "SogouQA record", "record 1 (query_id 2)"),
    ('{"query_id": 1, "query": "q", "passages": []}\n{"query_id": 2, ', "malformed JSON line", "record 1"),
    ("hello", "not a QA data file", ""),
])
def test_malformed_records_name_the_file_and_the_record(tmp_path, text, message, where):
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ZooError, match=message) as exc:
        list(read_records(path))
    assert str(path) in exc.value.where and where in exc.value.where


def test_the_record_cache_gives_random_access_and_is_written_once(tmp_path, zoo_home):
    path = tmp_path / "SogouQA.json"
    path.write_text(json.dumps(SCHEMA, ensure_ascii=False), encoding="utf-8")
    records = source_records(path)
    assert len(records) == 2 and records[1]["id"] == "a2" and records[0]["question"] == "中国的首都是哪里"
    mtime = records.path.stat().st_mtime_ns
    assert source_records(path).path.stat().st_mtime_ns == mtime  # cached
    with pytest.raises(ZooError, match="not found"):
        source_records(tmp_path / "missing.json")
    (tmp_path / "empty.json").write_text("[ ]", encoding="utf-8")
    with pytest.raises(ZooError, match="holds no questions"):
        source_records(tmp_path / "empty.json")


def test_every_occurrence_of_the_answer_is_labelled():
    start, end = answer_labels("北京是中国的首都，北京有故宫", "北京")
    assert [i for i, v in enumerate(start) if v] == [0, 9]
    assert [i for i, v in enumerate(end) if v] == [1, 10]
    start, end = answer_labels("aaa", "aa")  # overlapping occurrences too
    assert start == [1, 1, 0] and end == [0, 1, 1]
    assert answer_labels("abc", "") == ([0, 0, 0], [0, 0, 0])


def test_crop_follows_the_release():
    short = "x" * 100
    assert all(data.crop(short, random.Random(i)) == short for i in range(20))
    long = "".join(chr(0x4E00 + i) for i in range(600))
    crops = [data.crop(long, random.Random(i)) for i in range(400)]
    firsts = [c for c in crops if c == long[:256]]
    windows = [c for c in crops if c != long[:256]]
    assert 0.4 < len(firsts) / len(crops) < 0.6  # p 0.5
    assert all(128 <= len(c) <= 256 and c in long for c in windows)
    assert len({len(c) for c in windows}) > 20  # random lengths


def test_training_examples_depend_on_seed_epoch_and_index_only(tmp_path, zoo_home):
    path = tmp_path / "s.json"
    records = [{"id": str(i), "question": f"q{i}", "passages": [{"passage": f"p{i}-{j}" * 40, "answer": ""}
                                                              for j in range(4)]} for i in range(10)]
    path.write_text(json.dumps(records), encoding="utf-8")
    recs = source_records(path)
    a, b = data.TrainExamples([(recs, 2)], seed=1), data.TrainExamples([(recs, 2)], seed=1)
    assert len(a) == 20
    assert [a[i] for i in range(20)] == [b[i] for i in reversed(range(20))][::-1]
    first = [a[i] for i in range(20)]
    a.set_epoch(1)
    assert [a[i] for i in range(20)] != first
    assert a[3][0] == "q3" and a[13][0] == "q3"  # doubled: index 10 + 3 is record 3 again
    ev = data.EvalExamples(recs)
    assert len(ev) == 40 and ev[5] == (1, "1", "q1", "p1-1" * 40, "")


def test_sogou_dataset_folds_and_mix(tmp_path, zoo_home):
    records = [{"id": f"s{i}", "question": f"问题{i}",
                "passages": [{"passage": f"答案{i}在这里", "answer": f"答案{i}"}]} for i in range(30)]
    (tmp_path / "SogouQA.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "WebQA.json").write_text(json.dumps(SCHEMA, ensure_ascii=False), encoding="utf-8")
    ds = data.SogouQA(root=tmp_path)
    train, dev = ds.split("train"), ds.split("validation")
    dev_ids = {dev.records[i]["id"] for i in range(len(dev.records))}
    train_ids = {r["id"] for r in train.parts[0][0]}
    assert dev_ids and train_ids and not dev_ids & train_ids and len(dev_ids | train_ids) == 30
    assert len(train) == 2 * len(train_ids) + 2  # SogouQA doubled, WebQA once
    with pytest.raises(ZooError, match="root"):
        data.SogouQA()
    chars = build_vocab(ds.training_texts(), 2)
    assert "答" in chars and "案" in chars


def test_cloze_sentences_merge_names_and_make_questions():
    tokens = [("江", "nr"), ("泽民", "nr"), ("访问", "v"), ("美国", "ns"), ("。", "w"),
              ("美国", "ns"), ("总统", "n"), ("克林顿", "nr"), ("欢迎", "v"), ("江", "nr"), ("泽民", "nr"), ("。", "w")]
    sents = sentences(tokens)
    assert sents == [("江泽民访问美国。", [("江泽民", "nr"), ("美国", "ns")]),
                     ("美国总统克林顿欢迎江泽民。", [("美国", "ns"), ("克林顿", "nr"), ("江泽民", "nr")])]
    other = [(2, "日本首相桥本龙太郎访问俄罗斯。", [("日本", "ns"), ("桥本龙太郎", "nr"), ("俄罗斯", "ns")]),
             (3, "日本经济增长放缓。", [("日本", "ns")]), (4, "今天天气很好，大家都很高兴。", [])]
    block = [(0, *sents[0]), (0, *sents[1])] + other
    qs = {q["id"]: q for q in block_questions(7, block)}
    assert set(qs) == {"pd-7-0", "pd-7-1", "pd-7-2", "pd-7-3"}  # the last sentence has no entity
    for q in qs.values():
        answer = next(p["answer"] for p in q["passages"] if p["answer"])
        assert answer not in q["question"] and q["question"].endswith("？")
        assert all((p["answer"] == answer) == (answer in p["passage"]) for p in q["passages"])
        assert any(not p["answer"] for p in q["passages"])  # a distractor
    q = qs["pd-7-0"]  # 江泽民访问美国。: the question word of the answer's type stands in the gap
    answer = next(p["answer"] for p in q["passages"] if p["answer"])
    assert q["question"] == {"江泽民": "谁访问美国？", "美国": "江泽民访问哪里？"}[answer]
    # the source passage: the sentence with the next one of its line (line 0), holding the answer in context
    passages = [p["passage"] for p in q["passages"]]
    assert "江泽民访问美国。美国总统克林顿欢迎江泽民。" in passages
    # the distractors hold the confounder, an entity of the answer's type absent from the question
    distractors = [p["passage"] for p in q["passages"] if not p["answer"]]
    if answer == "美国":
        assert distractors and all("日本" in d for d in distractors)


def test_the_question_word_names_the_entity_type():
    assert ask("江泽民访问美国。", "美国", "ns") == "江泽民访问哪里？"
    assert ask("江泽民访问美国。", "江泽民", "nr") == "谁访问美国？"
    assert ask("新华社发表评论；", "新华社", "nt") == "哪个单位发表评论？"
    assert ask("他读了《人民日报》", "人民日报", "nz") == "他读了《什么》？"
