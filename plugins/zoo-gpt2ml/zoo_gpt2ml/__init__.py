"""GPT2_ML (imcaspar/gpt2-ml) for the zoo: model, tokenizer, vocabularies, generation, TF converter.

Importing the package is cheap: torch loads only when the model classes are used.
"""

__version__ = "0.1.0"
__all__ = ["GPT2ML", "GPT2MLConfig", "GPT2MLTokenizer", "resolve_vocab"]

_LAZY = {"GPT2ML": "model", "GPT2MLConfig": "model", "GPT2MLTokenizer": "tokenizer", "resolve_vocab": "vocab"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
