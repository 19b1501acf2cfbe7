"""JSON-like values checked against a dataclass's annotations.

One checker for every typed mapping the core builds from files and options: a
model's config (``zoo_core.model.make_config``), a training step's settings
(``TrainStep.Settings``) and the core's own ``TrainConfig``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing


def short(value, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def type_ok(value, tp) -> bool | None:
    """Whether ``value`` (as read from JSON) fits the annotation ``tp``; None for annotations not checked."""
    origin = typing.get_origin(tp)
    if tp is typing.Any:
        return True
    if tp is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        results = [type_ok(value, arg) for arg in typing.get_args(tp)]
        return True if any(r is not False for r in results) else False
    if origin is typing.Literal:
        return value in typing.get_args(tp)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if tp is str:
        return isinstance(value, str)
    if tp in (list, tuple) or origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if len(args) == 1:
            return all(type_ok(v, args[0]) is not False for v in value)
        return True
    if tp is dict or origin is dict:
        return isinstance(value, dict)
    return None


def type_name(tp) -> str:
    """An annotation in words, for an error message (``int | None`` -> "an integer or null")."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if len(args) == 1:
            return f"a list ({type_name(args[0])} each)"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list",
             tuple: "a list", dict: "a mapping"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def as_annotated(value, tp):
    """``value`` (already checked by :func:`type_ok`) in the annotation's own type where JSON blurs it:
    an integer given for a ``float`` field becomes a float (``--set lr_decay=1`` reads as ``1``)."""
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    if float in args and int not in args and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def json_value(value):
    """A value as JSON would give it back (tuples as lists), to compare values across a save."""
    return json.loads(json.dumps(value, default=str))


def field_defaults(cls) -> dict:
    """A dataclass's field defaults as JSON values; fields without a default are left out."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = json_value(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = json_value(f.default_factory())
    return out


def field_types(cls) -> dict:
    """The resolved annotations of a dataclass's fields; {} when one does not resolve (then nothing is checked)."""
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: check nothing rather than fail
        return {}
