"""word2vec files: round trips in both formats, gensim's reader and writer, and damaged files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo_core import ZooError
from zoo_text import read_word2vec, write_word2vec

WORDS = ["中国", "人民", "the", "１９９８年", "ｘ"]


@pytest.fixture
def vectors():
    return torch.randn(len(WORDS), 7, generator=torch.Generator().manual_seed(0)) * 10


@pytest.mark.parametrize("binary", [False, True])
def test_round_trip_is_exact_and_the_format_is_detected(tmp_path, vectors, binary):
    path = write_word2vec(tmp_path / "v.w2v", WORDS, vectors, binary=binary)
    words, back = read_word2vec(path)
    assert words == WORDS and back.dtype == torch.float32
    assert torch.equal(back, vectors)
    assert read_word2vec(path, binary=binary)[0] == WORDS


@pytest.mark.parametrize("binary", [False, True])
def test_vocab_keeps_only_the_words_asked_for_in_file_order(tmp_path, vectors, binary):
    path = write_word2vec(tmp_path / "v", WORDS, vectors, binary=binary)
    words, back = read_word2vec(path, vocab={"the", "中国", "absent"})
    assert words == ["中国", "the"]
    assert torch.equal(back, vectors[[0, 2]])


@pytest.mark.parametrize("binary", [False, True])
def test_files_agree_with_gensim_both_ways(tmp_path, vectors, binary):
    gensim_models = pytest.importorskip("gensim.models")
    ours = write_word2vec(tmp_path / "ours", WORDS, vectors, binary=binary)
    kv = gensim_models.KeyedVectors.load_word2vec_format(str(ours), binary=binary)
    assert list(kv.index_to_key) == WORDS
    np.testing.assert_array_equal(kv.vectors, vectors.numpy())
    theirs = tmp_path / "theirs"
    kv.save_word2vec_format(str(theirs), binary=binary)  # gensim's binary has no newline after each vector
    words, back = read_word2vec(theirs)
    assert words == WORDS
    assert torch.allclose(back, vectors, rtol=1e-6)


def test_duplicate_words_keep_their_first_vector(tmp_path):
    path = tmp_path / "dup.txt"
    path.write_text("3 2\na 1 2\nb 3 4\na 5 6\n", encoding="utf-8")
    words, back = read_word2vec(path)
    assert words == ["a", "b"] and back.tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize("text, where, what", [
    ("two 3\n", ":1", "header"),
    ("2 3\na 1 2 3\nb 1 2\n", ":3", "3 numbers"),
    ("2 3\na 1 2 3\nb 1 x 3\n", ":3", "3 numbers"),
    ("3 3\na 1 2 3\nb 1 2 3\n", ":4", "ends after 2 of the 3"),
])
def test_damaged_text_files_name_the_line(tmp_path, text, where, what):
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ZooError, match=what) as err:
        read_word2vec(path, binary=False)
    assert f"{path}{where}" in str(err.value)


def test_truncated_binary_file_names_the_record(tmp_path, vectors):
    path = write_word2vec(tmp_path / "v.bin", WORDS, vectors, binary=True)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ZooError, match="record 5 of the 5") as err:
        read_word2vec(path)
    assert "truncated" in str(err.value)


def test_missing_file_and_unwritable_words_are_clear_errors(tmp_path, vectors):
    with pytest.raises(ZooError, match="cannot read"):
        read_word2vec(tmp_path / "absent")
    target = tmp_path / "out.txt"
    with pytest.raises(ZooError, match="cannot be written"):
        write_word2vec(target, ["a b", *WORDS[1:]], vectors)
    with pytest.raises(ZooError, match="one row of vectors per word"):
        write_word2vec(target, WORDS[:2], vectors)
    assert not target.exists()
