"""GPT2_ML's tokenizer: Google BERT's FullTokenizer (lower-case, one token per CJK character, WordPiece).

Built on the ``tokenizers`` library: BertNormalizer (clean control characters,
space out CJK characters, lower-case and strip accents as BERT's basic
tokenizer does with do_lower_case) + BertPreTokenizer (split on whitespace and
punctuation) + WordPiece (greedy longest match, ``##`` continuations, [UNK]
for a word with no match or longer than 100 characters). No [CLS]/[SEP] is
added: the original demo feeds the raw tokenised prompt.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from zoo_core import ZooError

from .vocab import read_vocab, resolve_vocab

_CJK = (r"\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002a6df\U0002a700-\U0002b73f\U0002b740-\U0002b81f"
        r"\U0002b820-\U0002ceaf\uf900-\ufaff\U0002f800-\U0002fa1f")
# In "clean" mode a space is dropped when either neighbour is a CJK character or CJK/full-width punctuation.
_NO_SPACE = re.compile(rf"(?<=[{_CJK}\u3000-\u303f\uff00-\uffef])\s+|\s+(?=[{_CJK}\u3000-\u303f\uff00-\uffef])")
# ... and none before closing or after opening ASCII punctuation.
_NO_SPACE_PUNCT = re.compile(r"\s+(?=[,.!?;:%)\]}])|(?<=[(\[{])\s+")


class GPT2MLTokenizer:
    """Encode text to ids and decode ids to text with a GPT2_ML vocabulary."""

    def __init__(self, vocab_file: str | os.PathLike, *, max_input_chars_per_word: int = 100):
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

        self.vocab_file = Path(vocab_file)
        self.tokens = read_vocab(self.vocab_file)
        # Later duplicates win, as in BERT's load_vocab (a dict filled in file order).
        self.vocab = {tok: i for i, tok in enumerate(self.tokens)}
        for special in ("[UNK]", "[PAD]"):
            if special not in self.vocab:
                raise ZooError(f"the vocab has no {special} token", where=str(self.vocab_file),
                               hint="GPT2_ML vocabularies are BERT-style: [PAD]=0, [UNK], [CLS], [SEP], [MASK]")
        tok = Tokenizer(models.WordPiece(vocab=self.vocab, unk_token="[UNK]",
                                         max_input_chars_per_word=max_input_chars_per_word))
        tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                    strip_accents=None, lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        self._tok = tok
        self.unk_token_id = self.vocab["[UNK]"]
        self.pad_token_id = self.vocab["[PAD]"]
        self.sep_token_id = self.vocab.get("[SEP]")

    @classmethod
    def from_vocab(cls, spec: str | os.PathLike = "clue") -> GPT2MLTokenizer:
        """Tokenizer for ``"clue"``, ``"bert"`` or a vocab file path (see :func:`resolve_vocab`)."""
        return cls(resolve_vocab(spec))

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> GPT2MLTokenizer:
        """Tokenizer from a model folder's ``vocab.txt``."""
        path = Path(folder) / "vocab.txt"
        if not path.is_file():
            raise ZooError("the model folder has no vocab.txt", where=str(folder),
                           hint="convert the checkpoint with `zoo convert gpt2-ml` (it writes vocab.txt), "
                                "or copy the vocab the model was trained with into the folder as vocab.txt")
        return cls(path)

    def __len__(self) -> int:
        return len(self.tokens)

    def tokenize(self, text: str) -> list[str]:
        """WordPiece tokens of ``text``."""
        return self._tok.encode(text, add_special_tokens=False).tokens

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no [CLS]/[SEP] added)."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def convert_ids_to_tokens(self, ids) -> list[str]:
        """Vocabulary entries of ``ids``; an id outside the vocabulary is an error."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.tokens):
                raise ZooError(f"token id {i} is outside the vocabulary of {len(self.tokens)} tokens",
                               where=str(self.vocab_file), hint="the model and vocab.txt do not belong together")
            out.append(self.tokens[i])
        return out

    def decode(self, ids, *, mode: str = "original", skip_special: bool = True) -> str:
        """Text of ``ids``.

        ``mode="original"`` reproduces the demo: tokens joined with no
        separator, then ``[UNK]`` and ``##`` removed (English words run
        together). ``mode="clean"`` joins word pieces, puts a space between
        non-CJK words and none next to CJK characters or CJK punctuation.
        ``skip_special`` drops [PAD], [CLS], [SEP] and [MASK].
        """
        tokens = self.convert_ids_to_tokens(ids)
        if skip_special:
            tokens = [t for t in tokens if t not in ("[PAD]", "[CLS]", "[SEP]", "[MASK]")]
        if mode == "original":
            return "".join(tokens).replace("[UNK]", "").replace("##", "")
        if mode != "clean":
            raise ZooError(f"unknown decode mode {mode!r}", hint='use "original" or "clean"')
        words: list[str] = []
        for t in tokens:
            if t == "[UNK]":
                continue
            if t.startswith("##") and words:
                words[-1] += t[2:]
            else:
                words.append(t)
        return _NO_SPACE_PUNCT.sub("", _NO_SPACE.sub("", " ".join(words)))

    def decode_token(self, token_id: int) -> str:
        """The text one generated token adds when streamed (``##`` stripped, [UNK] and specials empty)."""
        t = self.tokens[int(token_id)]
        if t in ("[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"):
            return ""
        return t[2:] if t.startswith("##") else t
