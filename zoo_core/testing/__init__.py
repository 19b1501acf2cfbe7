"""The plugin author kit: a loopback Hub server, fixtures and contract tests.

Installed as a pytest plugin (entry point ``pytest11``), so a plugin's tests
get the ``local_hub`` fixture without any conftest.
"""

from .fixtures_home import only_plugins
from .ports import free_port
from .runs import run_config, torchrun

__all__ = ["free_port", "only_plugins", "run_config", "torchrun"]
