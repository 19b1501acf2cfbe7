"""Hostile Zhidao files (issue 23): deep nesting, huge records, blank-line bombs, damaged archives, other encodings.

Each case must end in one clear line naming the file (or a counted malformed
record), in bounded memory, never a traceback, a hang or silently wrong text.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tracemalloc
import zipfile

import pytest
from click.testing import CliRunner

from zoo_core import ZooError

from zoo_nce.zhidao import MAX_RECORD_BYTES, Malformed, iter_records

GOOD = {"url": "http://zhidao.baidu.com/question/1.html", "question": "电脑怎么开机", "tags": ["电脑"]}


def _peak(fn):
    tracemalloc.start()
    try:
        result = fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return result, peak


def _error(path) -> ZooError:
    with pytest.raises(ZooError) as info:
        list(iter_records(path))
    return info.value


def test_deep_nesting_is_refused_in_bounded_memory(tmp_path):
    """ijson's prefixes made memory grow with the square of the depth (23.7 GB for 200,000 levels)."""
    good = json.dumps(GOOD, ensure_ascii=False)
    for depth in (5_000, 200_000):
        path = tmp_path / f"deep{depth}.json"
        path.write_text(f"[{good}, " + "[" * depth + "]" * depth + f", {good}]", encoding="utf-8")
        err, peak = _peak(lambda p=path: _error(p))
        assert "nested more than 32 levels" in str(err) and str(path) in str(err), err
        assert "after record 0" in str(err)
        assert peak < 4 << 20, peak  # 5,000 levels took ~100 MB before


def test_ordinary_nesting_is_still_a_malformed_record(tmp_path):
    path = tmp_path / "nested.json"
    path.write_text(json.dumps([GOOD, [[["x"]]], {"url": "u", "question": "[{\"]", "tags": ["a\\\"["]}]),
                    encoding="utf-8")
    malformed = Malformed(str(path))
    records = list(iter_records(path, malformed))
    assert [r.url for r in records] == [GOOD["url"], "u"] and records[1].question == '[{"]'
    assert malformed.count == 1 and "record 1" in malformed.report()


def test_a_huge_json_lines_line_is_skipped_without_being_held(tmp_path):
    path = tmp_path / "huge.jsonl"
    good = json.dumps(GOOD, ensure_ascii=False)
    big = json.dumps({**GOOD, "question": "问" * (16 * MAX_RECORD_BYTES // 3)}, ensure_ascii=False)  # 16 MiB
    path.write_text("\n".join([good, big, good]) + "\n", encoding="utf-8")
    malformed = Malformed(str(path))
    records, peak = _peak(lambda: list(iter_records(path, malformed)))
    assert len(records) == 2 and malformed.count == 1
    assert "line 2: longer than 1 MiB" in malformed.report()
    assert peak < 6 << 20, peak  # the 16 MiB line was read whole before


def test_a_huge_record_in_a_json_list_is_an_error(tmp_path):
    path = tmp_path / "huge.json"
    path.write_text(json.dumps([GOOD, {**GOOD, "question": "x" * (16 * MAX_RECORD_BYTES)}]), encoding="utf-8")
    err, peak = _peak(lambda: _error(path))
    assert "longer than 1 MiB" in str(err) and str(path) in str(err)
    assert peak < 6 << 20, peak  # ijson held the whole 16 MiB string before


def test_a_blank_line_bomb_reads_in_bounded_work(tmp_path):
    """A 1 MB zip of 1 GiB of blank lines ran past 180 s (a Python loop per line); here 256 MiB, a CPU limit
    the old loop needs several times over (about 45 s), and the record after the blanks keeps its line number."""
    path = tmp_path / "bomb.jsonl.zip"
    blank = b"\n" * (1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("bomb.jsonl", "w") as f:
        for _ in range(256):
            f.write(blank)
        f.write(b"{not json\n")
    assert path.stat().st_size < 1 << 20
    script = (f"import resource; resource.setrlimit(resource.RLIMIT_CPU, (20, 20))\n"
              f"from zoo_nce.zhidao import iter_records, Malformed\n"
              f"m = Malformed('bomb'); print(len(list(iter_records({str(path)!r}, m))), m.report())")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("0 1 malformed") and f"line {256 * (1 << 20) + 1}: not JSON" in out.stdout


def _gz(path, data: bytes):
    path.write_bytes(gzip.compress(data, mtime=0))
    return path


def _lines_bytes(n=200):
    return "".join(json.dumps({**GOOD, "url": f"u{i}"}, ensure_ascii=False) + "\n" for i in range(n)).encode()


def test_a_truncated_gz_says_so_on_the_command_line(zoo, tmp_path):
    """EOFError from gzip was taken by click for Ctrl-D: the user saw only 'Aborted!'."""
    from zoo_core.cli import cli

    whole = _gz(tmp_path / "q.jsonl.gz", _lines_bytes(2000)).read_bytes()
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    r = CliRunner().invoke(cli, ["nce", "scan-zhidao", str(path)])
    assert r.exit_code != 0 and "Aborted" not in r.output, r.output
    assert "truncated" in r.output and str(path) in r.output and "Traceback" not in r.output, r.output


@pytest.mark.parametrize("case", ["bad-crc", "not-gzip", "zip-cut", "zip-crc"])
def test_damaged_archives_are_one_clear_error(tmp_path, case):
    data = _lines_bytes()
    if case == "bad-crc":
        raw = bytearray(gzip.compress(data, mtime=0))
        raw[-8] ^= 0xFF  # the CRC-32 in the trailer
        path = tmp_path / "q.jsonl.gz"
        path.write_bytes(bytes(raw))
    elif case == "not-gzip":
        path = tmp_path / "q.jsonl.gz"
        path.write_bytes(data)
    else:
        path = tmp_path / "q.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("q.jsonl", data)
        raw = bytearray(path.read_bytes())
        if case == "zip-cut":
            raw = raw[: len(raw) // 2]
        else:
            raw[60] ^= 0xFF  # inside the compressed member
        path.write_bytes(bytes(raw))
    err = _error(path)
    assert str(path) in str(err) and err.hint and "download it again" in err.hint, err


def test_gbk_json_lines_is_an_error_naming_the_encoding(tmp_path):
    path = tmp_path / "gbk.jsonl"
    path.write_bytes(_lines_bytes(3).decode().encode("gbk"))
    err = _error(path)
    assert str(path) in str(err) and "not UTF-8" in str(err) and "GBK" in str(err) and "line 1" in str(err)
    assert "iconv -f GBK" in err.hint


def test_gbk_json_list_is_an_error_naming_the_encoding(tmp_path):
    path = tmp_path / "gbk.json"
    path.write_bytes(json.dumps([GOOD], ensure_ascii=False).encode("gbk"))
    err = _error(path)
    assert str(path) in str(err) and "not UTF-8" in str(err)


def test_utf8_bom_and_windows_line_ends_are_read(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + _lines_bytes(3).replace(b"\n", b"\r\n"))
    assert [r.url for r in iter_records(path)] == ["u0", "u1", "u2"]


def test_export_to_stdout_writes_only_the_vectors_there(tmp_path):
    """`zoo export word2vec MODEL -`: the vectors on stdout, the "wrote ..." line on stderr, so a pipe gets a
    file gensim reads (the status line used to land inside the vectors)."""
    import subprocess
    import sys

    import torch

    from zoo_nce.model import Word2Vec

    model = Word2Vec.from_config({"words": ["甲", "乙", "丙"], "dim": 4})
    model.save_pretrained(tmp_path / "m")
    r = subprocess.run([sys.executable, "-m", "zoo_core.cli", "export", "word2vec", str(tmp_path / "m"), "-"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "3 4" and len(lines) == 4 and "wrote" not in r.stdout
    assert "wrote 3 vectors" in r.stderr
    assert torch.tensor([float(v) for v in lines[1].split()[1:]]).shape == (4,)
