"""Regenerate tokenizer_golden.json: reference token ids from an independent BERT FullTokenizer.

The original GPT2_ML tokenizer is Google BERT's FullTokenizer with
do_lower_case=True. transformers' slow (pure-Python) ``BertTokenizer`` is an
independent implementation of the same algorithm; its ids for the texts below
are frozen into the JSON fixture so that the tests need no transformers.

    pip install -c constraints.txt transformers
    python plugins/zoo-gpt2ml/tests/golden/make_tokenizer_golden.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

TEXTS = [
    "今天天气不错，我们去公园散步吧。",
    "北京是中华人民共和国的首都，人口超过两千万。",
    "机器学习（Machine Learning）是人工智能的一个分支！",
    "GPT2_ML 是基于 Grover 的中文预训练模型，参数量约15亿。",
    "Hello, World! This is a test of WordPiece tokenization.",
    "The quick brown fox jumps over the lazy dog; 3.14159 is π.",
    "价格：¥1,299.00，折扣20%～30%，截止2020年12月31日。",
    "电话 010-12345678，邮箱 someone@example.com，网址 https://kexue.fm/archives/7292",
    "Ünïcödé àccents are strippéd: café naïve résumé Ångström",
    "《红楼梦》、「三国演义」和『西游记』都是名著……",
    "emoji 😀 and symbols ★☆♪ and tabs\tand\nnewlines",
    "全角ＡＢＣ１２３ and half-width abc123; mixed中English文",
    "supercalifragilisticexpialidocious"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx word",  # > 100 chars: [UNK]
    "繁體字測試：這個問題很難說，還沒有結論。",
    "日本語のテキスト：こんにちは、世界。한국어 텍스트",
    "   leading and trailing spaces   ",
    "",
    "COVID-19疫情期间，iPhone12的销量达到1.2亿部。",
]


def main() -> int:
    from transformers import BertTokenizer

    sys.path.insert(0, str(HERE.parents[1]))
    from zoo_gpt2ml.vocab import resolve_vocab

    golden: dict = {"generator": "transformers.BertTokenizer(do_lower_case=True, tokenize_chinese_chars=True)",
                    "vocabs": {}}
    for name in ("clue", "bert"):
        path = resolve_vocab(name)
        tok = BertTokenizer(str(path), do_lower_case=True, tokenize_chinese_chars=True, strip_accents=None)
        golden["vocabs"][name] = [{"text": t, "tokens": tok.tokenize(t),
                                   "ids": tok.convert_tokens_to_ids(tok.tokenize(t))} for t in TEXTS]
    out = HERE / "tokenizer_golden.json"
    out.write_text(json.dumps(golden, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
