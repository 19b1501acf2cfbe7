"""pytest plugin registered through the ``pytest11`` entry point: exposes the kit's fixtures."""

try:  # the fixtures module is optional while the kit is being assembled
    from .fixtures_hub import *  # noqa: F401,F403
except ImportError:  # pragma: no cover
    pass
