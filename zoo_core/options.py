"""KEY=VALUE options as the command line gives them (``--set``, ``--model-set``, ``--option``)."""

from __future__ import annotations

import json

from .errors import ZooError


def parse_key_values(pairs, option: str = "--set") -> dict:
    """``["k=v", ...]`` → ``{k: v}``: VALUE as JSON where it parses (``3``, ``0.5``, ``[1, 2]``,
    ``{"root": "x"}``), else the string itself. A pair without ``=`` or with an empty KEY, and JSON
    nested too deeply to read, are ZooErrors naming ``option``."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ZooError(f"option {option} {pair!r} is not KEY=VALUE", where=option,
                           hint=f"write {option} KEY=VALUE, e.g. {option} lr=0.001")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
        except RecursionError:
            raise ZooError(f"the value of {option} {key} is nested too deeply to read", where=f"{option} {key}",
                           hint="give a plain value or a shallow JSON list or object") from None
    return out
