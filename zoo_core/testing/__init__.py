"""The plugin author kit: a loopback Hub server, fixtures and contract tests.

Opt-in: a plugin's ``tests/conftest.py`` takes the kit's fixtures (``local_hub``,
``hf_cache``, ``zoo_home``) and private caches with one line,
``from zoo_core.testing.pytest_plugin import *  # noqa: F403`` (see
:mod:`zoo_core.testing.pytest_plugin`); installing zoo-core registers no pytest plugin.
"""

from .fixtures_home import only_plugins
from .contract import ContractTests
from .ports import free_port
from .recipe_contract import RecipeContract
from .runs import run_config, torchrun

__all__ = ["ContractTests", "RecipeContract", "free_port", "only_plugins", "run_config", "torchrun"]
