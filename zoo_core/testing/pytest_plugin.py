"""pytest plugin registered through the ``pytest11`` entry point: exposes the kit's fixtures to every test suite."""

from .fixtures_home import zoo_home  # noqa: F401
from .fixtures_hub import hf_cache, local_hub  # noqa: F401
