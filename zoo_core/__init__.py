"""zoo: the models of kexue.fm in modern PyTorch.

Importing this package is cheap; torch is imported only when a model is
built or loaded (``load_model``, ``build_model``).
"""

__all__ = ["load_model", "build_model", "ZooError", "hookimpl"]
__version__ = "0.1.0"

from .errors import ZooError
from .hookspecs import hookimpl


def __getattr__(name):
    if name in ("load_model", "build_model"):
        from . import loading

        return getattr(loading, name)
    raise AttributeError(f"module 'zoo_core' has no attribute {name!r}")
