import json

import pytest

from fake_dists import make_plugin_dist, run_zoo

GOOD = """
from zoo_core import hookimpl
from zoo_core.specs import ModelSpec

@hookimpl
def register_models(register):
    register(ModelSpec(name="{arch}", target="toy_plugin:ToyMLP", task="regression", summary="s"))
"""


def test_broken_import_is_reported_and_the_rest_keeps_working(tmp_path):
    site = tmp_path / "site"
    make_plugin_dist(site, "zoo-broken", "zoo_broken_mod", "raise RuntimeError('boom at import')", "broken")
    make_plugin_dist(site, "zoo-good", "zoo_good_mod", GOOD.format(arch="good-arch"), "good")
    r = run_zoo(["plugins", "--json"], site)
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["broken"]["status"] == "failed"
    assert "boom at import" in rows["broken"]["errors"][0]["error"]
    assert rows["good"]["status"] == "ok" and rows["good"]["models"] == ["good-arch"]
    r = run_zoo(["list"], site)
    assert r.returncode == 0
    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "broken" in warnings[0]


def test_raising_hook_is_isolated(tmp_path):
    site = tmp_path / "site"
    make_plugin_dist(site, "zoo-hookfail", "zoo_hookfail_mod", """
        from zoo_core import hookimpl

        @hookimpl
        def register_models(register):
            raise ValueError("hook exploded")
    """, "hookfail")
    r = run_zoo(["plugins", "--json"], site)
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["hookfail"]["status"] == "failed"
    assert rows["hookfail"]["errors"][0]["stage"] == "register_models"


def test_name_collision_is_a_hard_error_naming_both(tmp_path):
    site = tmp_path / "site"
    make_plugin_dist(site, "zoo-one", "zoo_one_mod", GOOD.format(arch="same"), "one")
    make_plugin_dist(site, "zoo-two", "zoo_two_mod", GOOD.format(arch="same"), "two")
    r = run_zoo(["plugins"], site, env={"ZOO_LOAD_PLUGINS": "one,two"})
    assert r.returncode == 1
    assert "'same'" in r.stderr and "'one'" in r.stderr and "'two'" in r.stderr
    assert "Traceback" not in r.stderr


def test_zoo_load_plugins_selects(tmp_path):
    site = tmp_path / "site"
    make_plugin_dist(site, "zoo-good", "zoo_good_mod", GOOD.format(arch="good-arch"), "good")
    names = lambda env: {row["name"] for row in json.loads(run_zoo(["plugins", "--json"], site, env=env).stdout)}
    assert "good" in names({})
    assert names({"ZOO_LOAD_PLUGINS": ""}) == set()
    assert names({"ZOO_LOAD_PLUGINS": "zoo-good"}) == {"good"}  # distribution names work too


def test_unknown_names_suggest(zoo_plugins):
    from zoo_core.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="did you mean 'toy-mlp'"):
        zoo_plugins.get_model_spec("toy-mpl")


def test_wrong_spec_type_is_a_clear_error(zoo_plugins):
    from zoo_core import hookimpl
    from zoo_core.errors import PluginError

    class Bad:
        @hookimpl
        def register_datasets(self, register):
            register({"name": "x"})

    zoo_plugins.pm.register(Bad(), name="bad")
    with pytest.raises(PluginError, match="expected DatasetSpec"):
        zoo_plugins.datasets()
