"""The CIPS-SOGOU factoid QA score, exactly as SogouQA's evaluation script (``evaluate_tool``) computes it.

``score = (accuracy + F1) / 2``, both averaged over the prediction lines, with::

    normalise(s) = strip(delete_blanks(punct_to_space(lower(full_to_half(s)))))

    full_to_half   U+3000 -> " ", U+FF01..U+FF5E -> minus 0xFEE0 (full-width ASCII to ASCII)
    lower          ASCII A-Z only
    punct_to_space each character of PUNCTUATION (SogouQA's list) -> " "
    delete_blanks  removes the ASCII blanks " \\t\\n\\r\\x0b\\x0c"
    strip          the same ASCII blanks at both ends

    empty(a)  = a stripped of ASCII blanks is "": exact 0, F1 0
    exact(a)  = normalise(a) in E, or tokens(a) == tokens(gold answer)
                E = every "|"-separated alternative of the third gold field, raw and normalised
                tokens(s) = {normalise(t) for t in punct_to_space(lower(s)).split(" ")}
    F1(a)     = max over e in E of the character-multiset F1 of normalise(a) and normalise(e)

The quirks kept (the original is Python 2 code on UTF-8 byte strings):

- lower-casing, blank removal and stripping act on bytes, so only ASCII changes: "Ä" and "Σ"
  keep their case (full-width "Ａ" does become "a", through the full-to-half step), and U+00A0,
  U+2002 and other non-ASCII spaces are not blanks (U+3000 becomes a space in full-to-half);
- the punctuation file's lines are stripped as bytes: the lines holding an ASCII space list
  nothing, U+3000 and DEL (0x7f) are listed;
- the gold answer itself (second field) is not among the exact-match and F1 alternatives unless
  the third field lists it; it is used only by the token-set rule;
- the token-set rule lower-cases and removes punctuation *before* full-to-half and splits on single
  ASCII spaces only (so "a  b" has an empty token, and a full-width letter or "＆" splits nothing);
- "empty" is tested on the raw answer: an answer of punctuation only (e.g. "。") is not empty,
  normalises to "" and can still match through the token-set rule or an alternative that is "";
- every prediction line counts, repeated qids included; the last of repeated gold qids wins;
- prediction lines split on "\\n" only: a "\\r" stays in the answer (and in the rows) but is stripped
  before scoring.

Deliberate differences: files must be UTF-8 (the original silently drops undecodable bytes; a
byte-order mark is skipped), reads are bounded (``MAX_LINE_BYTES`` a line, ``MAX_FILE_BYTES`` a file), and bad
lines (a prediction without exactly one tab, a gold line without three tab-separated fields) and
unknown qids are errors naming the file and line, where the original stops with a bare ValueError.
``--out`` rows are the original's: qid, answer, exact, F1, precision, recall, the alternative that
gave the best F1 (``None`` when no character matched); of equally good alternatives, the first in
sorted order.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from zoo_core import ZooError

# SogouQA's punctuation list (``evaluate_tool``), one character each, in the file's order.
PUNCTUATION = ("`^~<=>|_-,;:!?/.'\"()[]{}@$*\\&#%+\x7f…‰※•—‖‘’“”№←↑→↓∴∨∵∶∩∈∑√∞≯≡≮≤≥≈≌⊥⊙⌒□◆◇◎●★☆♀♂"
               "¨°·§¤±\u3000、。〃々〈〉《》「」『』【】〓〔〕〖〗÷×′▲″△∠≠■ˇˉ￣￥＿！＄（），．：；？～﹑￠")
_PUNCT_TABLE = {ord(c): " " for c in PUNCTUATION}
_ASCII_BLANKS = " \t\n\r\x0b\x0c"
_LOWER_TABLE = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_BLANK_TABLE = {ord(c): None for c in _ASCII_BLANKS}


def full_to_half(s: str) -> str:
    """U+3000 -> space, U+FF01..U+FF5E -> U+0021..U+007E."""
    return "".join(" " if c == "\u3000" else chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else c for c in s)


def lower_ascii(s: str) -> str:
    """Python 2's ``str.lower`` on UTF-8 bytes: A-Z only."""
    return s.translate(_LOWER_TABLE)


def remove_punctuation(s: str) -> str:
    """Each listed punctuation character becomes a space."""
    return s.translate(_PUNCT_TABLE)


def strip_ascii(s: str) -> str:
    """Python 2's ``str.strip()`` on bytes: ASCII blanks only."""
    return s.strip(_ASCII_BLANKS)


def normalize(s: str) -> str:
    """The scorer's ``format_string`` (see the module docstring)."""
    return strip_ascii(remove_punctuation(lower_ascii(full_to_half(s))).translate(_BLANK_TABLE))


def tokens(s: str) -> set[str]:
    """The token-set rule's tokens: punctuation to spaces, lower-case, split on " ", normalise each."""
    return {normalize(t) for t in lower_ascii(remove_punctuation(s)).split(" ")}


def char_f1(prediction: str, gold: str) -> tuple[float, float, float]:
    """(F1, precision, recall) of the two strings' character multisets."""
    common = sum((Counter(prediction) & Counter(gold)).values())
    if common == 0:
        return 0.0, 0.0, 0.0
    precision, recall = common / len(prediction), common / len(gold)
    return 2 * precision * recall / (precision + recall), precision, recall


@dataclass(frozen=True)
class Gold:
    """One ``qid_answer_expand`` line: the answer and the set E of acceptable answers (raw and normalised)."""

    answer: str
    expand: frozenset[str]

    @classmethod
    def of(cls, answer: str, alternatives: str) -> Gold:
        """From the second and third fields (alternatives separated by "|")."""
        raw = set(alternatives.split("|"))
        return cls(answer, frozenset(raw | {normalize(a) for a in raw}))


def score_one(prediction: str, gold: Gold) -> dict:
    """{"exact", "f1", "precision", "recall", "best"} of one answer."""
    row = {"exact": 0, "f1": 0.0, "precision": 0.0, "recall": 0.0, "best": None}
    answer = strip_ascii(prediction)
    if answer == "":
        return row
    norm = normalize(answer)
    row["exact"] = int(norm in gold.expand or tokens(answer) == tokens(gold.answer))
    for alt in sorted(gold.expand):
        f1, p, r = char_f1(norm, normalize(alt))
        if f1 > row["f1"]:
            row.update(f1=f1, precision=p, recall=r, best=alt)
    return row


def score(predictions: list[tuple[str, str]], gold: dict[str, Gold]) -> dict:
    """{"accuracy", "f1", "score", "questions", "rows"} of (qid, answer) pairs against gold."""
    rows = []
    for qid, answer in predictions:
        if qid not in gold:
            raise ZooError(f"prediction for unknown qid {qid!r}", hint="every predicted qid must be in the gold file")
        rows.append({"qid": qid, "prediction": answer, **score_one(answer, gold[qid])})
    n = len(rows)
    acc = sum(r["exact"] for r in rows) / n if n else 0.0
    f1 = sum(r["f1"] for r in rows) / n if n else 0.0
    return {"accuracy": acc, "f1": f1, "score": (acc + f1) / 2, "questions": n, "rows": rows}


def format_rows(rows: list[dict]) -> str:
    """The original's per-question output lines."""
    return "".join(f"{r['qid']}\t{r['prediction']}\t{r['exact']}\t{r['f1']:f}\t{r['precision']:f}\t"
                   f"{r['recall']:f}\t{r['best']}\n" for r in rows)


MAX_LINE_BYTES = 1 << 20  # a gold or prediction line is a qid and a few answers
MAX_FILE_BYTES = 1 << 30  # SogouQA's qid_answer_expand is 1 MB


def _lines(path: Path):
    """(line number, text without its "\\n") of a UTF-8 file, split on "\\n" only.

    A byte-order mark is skipped. Reads are bounded (a line over ``MAX_LINE_BYTES``, a file over
    ``MAX_FILE_BYTES`` is an error), so a device such as /dev/zero or an endless pipe cannot hang it.
    """
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise ZooError("file not found", where=str(path)) from None
    except OSError as exc:
        raise ZooError(f"cannot read the file: {exc.strerror}", where=str(path)) from None
    total = 0
    with f:
        number = 0
        while True:
            raw = f.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            total += len(raw)
            if len(raw) > MAX_LINE_BYTES:
                raise ZooError(f"line {number} is longer than {MAX_LINE_BYTES:,} bytes: not a scorer file",
                               where=f"{path}:{number}", hint="lines are qid<TAB>answer (and alternatives)")
            if total > MAX_FILE_BYTES:
                raise ZooError(f"the file is larger than {MAX_FILE_BYTES:,} bytes: not a scorer file",
                               where=f"{path}:{number}")
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield number, raw.decode("utf-8").replace("\n", "")
            except UnicodeDecodeError as exc:
                raise ZooError(f"not UTF-8 ({exc.reason} at byte {exc.start})", where=f"{path}:{number}",
                               hint="the scorer reads UTF-8 files (GBK: iconv -f GB18030 -t UTF-8)") from None


def read_gold(path: str | os.PathLike) -> dict[str, Gold]:
    """Read a ``qid_answer_expand`` file (qid<TAB>answer<TAB>alt1|alt2|...): qid -> Gold."""
    path = Path(path)
    out: dict[str, Gold] = {}
    for number, line in _lines(path):
        fields = strip_ascii(line).split("\t")
        if len(fields) != 3:
            raise ZooError(f"a gold line must be qid<TAB>answer<TAB>alt1|alt2|... (3 fields, got {len(fields)})",
                           where=f"{path}:{number}", hint=f"the line reads {line[:80]!r}")
        out[fields[0]] = Gold.of(fields[1], fields[2])
    return out


def read_predictions(path: str | os.PathLike, gold: dict[str, Gold] | None = None) -> list[tuple[str, str]]:
    """Read ``qid<TAB>answer`` lines as (qid, answer) pairs; qids missing from ``gold`` are errors."""
    path = Path(path)
    out = []
    for number, line in _lines(path):
        fields = line.split("\t")
        if len(fields) != 2:
            raise ZooError(f"a prediction line must be qid<TAB>answer (2 fields, got {len(fields)})",
                           where=f"{path}:{number}", hint=f"the line reads {line[:80]!r}")
        if gold is not None and fields[0] not in gold:
            raise ZooError(f"qid {fields[0]!r} is not in the gold file", where=f"{path}:{number}",
                           hint="score predictions against the qid_answer_expand file of the same questions")
        out.append((fields[0], fields[1]))
    return out
