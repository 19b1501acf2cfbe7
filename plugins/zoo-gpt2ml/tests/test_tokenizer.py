"""Tokenizer and vocabularies: golden ids from an independent BERT FullTokenizer, pinned files, decode modes."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from zoo_core import IntegrityError, ZooError
from zoo_gpt2ml import vocab as vocab_mod
from zoo_gpt2ml.tokenizer import GPT2MLTokenizer
from zoo_gpt2ml.vocab import VOCABS, read_vocab, resolve_vocab

GOLDEN = json.loads((Path(__file__).parent / "golden" / "tokenizer_golden.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def clue():
    return GPT2MLTokenizer.from_vocab("clue")


@pytest.mark.parametrize("name", ["clue", "bert"])
def test_ids_match_bert_full_tokenizer(name):
    tok = GPT2MLTokenizer.from_vocab(name)
    cases = GOLDEN["vocabs"][name]
    assert len(cases) >= 15
    for case in cases:
        assert tok.tokenize(case["text"]) == case["tokens"], case["text"]
        assert tok.encode(case["text"]) == case["ids"], case["text"]


@pytest.mark.parametrize("name", ["clue", "bert"])
def test_packaged_vocabs_are_the_official_files(name):
    pin = VOCABS[name]
    path = resolve_vocab(name)
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == pin.sha256
    assert len(data) == pin.size
    tokens = read_vocab(path)
    assert len(tokens) == pin.num_tokens
    assert tokens[0] == "[PAD]" and tokens[100] == "[UNK]" and tokens[102] == "[SEP]" and tokens[103] == "[MASK]"


def test_special_ids_of_the_clue_vocab(clue):
    assert clue.vocab["▁"] == 1 and clue.vocab["[CLS]"] == 101 and clue.vocab["<S>"] == 104
    assert clue.encode("。") == [545] and clue.encode("，") == [6294]
    assert sum(t.startswith("##") for t in clue.tokens) == 1682


def test_bert_vocab_keeps_its_line_separator_token():
    tokens = read_vocab(resolve_vocab("bert"))
    # str.splitlines() would split this token and shift every later id by one.
    assert tokens[343] == "\u2028" and tokens[511] == "。"


def test_decode_original_joins_without_spaces_and_drops_unk_and_hashes(clue):
    ids = clue.encode("机器学习（Machine Learning）😀是分支")
    assert clue.unk_token_id in ids
    assert clue.decode(ids) == "机器学习（machinelearning）是分支"


def test_decode_clean_spaces_words_but_not_cjk(clue):
    ids = clue.encode("机器学习 Machine Learning 是分支, ok 2020年")
    assert clue.decode(ids, mode="clean") == "机器学习machine learning是分支, ok 2020年"
    assert clue.decode(clue.encode("Hello, world (again)!"), mode="clean") == "hello, world (again)!"
    with pytest.raises(ZooError, match="decode mode"):
        clue.decode(ids, mode="fancy")


def test_decode_skips_special_tokens_and_rejects_bad_ids(clue):
    assert clue.decode([101, *clue.encode("你好"), 102, 0]) == "你好"
    with pytest.raises(ZooError, match="outside the vocabulary"):
        clue.decode([8021])


def test_synthetic_vocab_in_the_real_format(tmp_path):
    path = tmp_path / "vocab.txt"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "中", "文", ",", "!"]
    path.write_text("\n".join(tokens), encoding="utf-8")  # no trailing newline, like clue-vocab.txt
    tok = GPT2MLTokenizer(path)
    assert tok.tokenize("UNAFFABLE, 中文!") == ["un", "##aff", "##able", ",", "中", "文", "!"]
    assert tok.tokenize("unaffx") == ["[UNK]"]  # no piece matches the tail: the whole word is [UNK]
    assert tok.tokenize("un" * 51) == ["[UNK]"]  # longer than 100 characters


def test_vocab_without_unk_is_rejected(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\na\nb\n", encoding="utf-8")
    with pytest.raises(ZooError, match=r"no \[UNK\]"):
        GPT2MLTokenizer(path)


def test_from_folder_needs_vocab_txt(tmp_path):
    with pytest.raises(ZooError, match="vocab.txt"):
        GPT2MLTokenizer.from_folder(tmp_path)


def test_resolve_vocab_paths(tmp_path):
    path = tmp_path / "my-vocab.txt"
    path.write_text("[PAD]\n[UNK]\n", encoding="utf-8")
    assert resolve_vocab(str(path)) == path
    with pytest.raises(ZooError, match="neither an official vocabulary nor an existing file"):
        resolve_vocab(str(tmp_path / "missing.txt"))
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ZooError, match="empty"):
        resolve_vocab(str(tmp_path / "empty.txt"))


class _Response(io.BytesIO):
    pass


def test_download_verifies_sha256_then_caches(tmp_path, monkeypatch):
    real = resolve_vocab("clue").read_bytes()
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(vocab_mod, "packaged_path", lambda name: tmp_path / "not-packaged" / name)
    requested = []

    def fake_urlopen(url, timeout=None):
        requested.append(url)
        return _Response(real)

    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    path = resolve_vocab("clue")
    assert path == tmp_path / "home" / "vocab" / "clue-vocab.txt"
    assert path.read_bytes() == real
    assert requested == ["https://raw.githubusercontent.com/imcaspar/gpt2-ml/f6286b1/tokenization/clue-vocab.txt"]
    assert resolve_vocab("clue") == path and len(requested) == 1  # served from the cache afterwards


def test_download_with_wrong_hash_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(vocab_mod, "packaged_path", lambda name: tmp_path / "not-packaged" / name)
    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout=None: _Response(b"[PAD]\n[UNK]\n"))
    with pytest.raises(IntegrityError, match="sha256"):
        resolve_vocab("bert")
    assert list((tmp_path / "home" / "vocab").iterdir()) == []


def test_download_failure_says_what_to_do(tmp_path, monkeypatch):
    import urllib.error

    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(vocab_mod, "packaged_path", lambda name: tmp_path / "not-packaged" / name)

    def offline(url, timeout=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(ZooError, match="could not download") as info:
        resolve_vocab("clue")
    assert VOCABS["clue"].sha256 in str(info.value)
    assert list((tmp_path / "home" / "vocab").iterdir()) == []


def test_downloaded_vocab_follows_xdg_cache_home_without_zoo_home(tmp_path, monkeypatch):
    real = vocab_mod.packaged_path("clue").read_bytes()
    monkeypatch.delenv("ZOO_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(vocab_mod, "packaged_path", lambda name: tmp_path / "not-packaged" / name)
    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout=None: _Response(real))
    assert resolve_vocab("clue") == tmp_path / "xdg" / "zoo" / "vocab" / "clue-vocab.txt"


def test_downloaded_vocab_gets_the_umask_permissions(tmp_path, monkeypatch):
    import os

    real = vocab_mod.packaged_path("clue").read_bytes()
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(vocab_mod, "packaged_path", lambda name: tmp_path / "not-packaged" / name)
    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout=None: _Response(real))
    old = os.umask(0o022)
    try:
        path = resolve_vocab("clue")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # not the 0600 of a bare temporary file
