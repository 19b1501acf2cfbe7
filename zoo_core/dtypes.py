"""The one dtype table: user-facing names, torch dtypes and safetensors codes."""

from __future__ import annotations

import torch

from .errors import ZooError

# canonical name -> (torch dtype, safetensors header code)
DTYPES: dict[str, tuple[torch.dtype, str]] = {
    "float64": (torch.float64, "F64"), "float32": (torch.float32, "F32"), "float16": (torch.float16, "F16"),
    "bfloat16": (torch.bfloat16, "BF16"), "int64": (torch.int64, "I64"), "int32": (torch.int32, "I32"),
    "int16": (torch.int16, "I16"), "int8": (torch.int8, "I8"), "uint8": (torch.uint8, "U8"),
    "bool": (torch.bool, "BOOL"),
}
ALIASES = {"fp64": "float64", "double": "float64", "fp32": "float32", "float": "float32", "fp16": "float16",
           "half": "float16", "bf16": "bfloat16"}
_BY_CODE = {code: dtype for dtype, code in DTYPES.values()}


def as_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """``torch.bfloat16``, ``"bfloat16"`` or ``"bf16"`` -> ``torch.bfloat16``; None stays None."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    key = str(dtype).lower().removeprefix("torch.")
    key = ALIASES.get(key, key)
    if key not in DTYPES:
        raise ZooError(f"unknown dtype {dtype!r}", hint=f"use one of: {', '.join([*DTYPES, *ALIASES])}")
    return DTYPES[key][0]


def from_safetensors(code: str, *, where: str = "") -> torch.dtype:
    """The torch dtype of a safetensors header code such as ``"BF16"``."""
    try:
        return _BY_CODE[code]
    except KeyError:
        raise ZooError(f"unsupported safetensors dtype {code!r}", where=where or None,
                       hint=f"the zoo reads {', '.join(_BY_CODE)}") from None
