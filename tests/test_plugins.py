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


def test_name_collision_names_both_and_skips_only_the_second(tmp_path):
    site = tmp_path / "site"
    make_plugin_dist(site, "zoo-one", "zoo_one_mod", GOOD.format(arch="same"), "one")
    make_plugin_dist(site, "zoo-two", "zoo_two_mod", GOOD.format(arch="same"), "two")
    r = run_zoo(["plugins", "--json"], site, env={"ZOO_LOAD_PLUGINS": "one,two"})
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    failed = [name for name, row in rows.items() if row["status"] == "failed"]
    assert len(failed) == 1
    kept = ({"one", "two"} - set(failed)).pop()
    error = rows[failed[0]]["errors"][0]["error"]
    assert "'same'" in error and "'one'" in error and "'two'" in error
    assert rows[kept]["models"] == ["same"]
    for command in (["list"], ["info", "same"], ["plugins"]):
        r = run_zoo(command, site, env={"ZOO_LOAD_PLUGINS": "one,two"})
        assert "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("where", ["import", "hook"])
def test_sys_exit_in_a_plugin_is_isolated_and_reported(tmp_path, where):
    site = tmp_path / "site"
    code = "import sys\nsys.exit(3)\n" if where == "import" else """
        import sys
        from zoo_core import hookimpl

        @hookimpl
        def register_models(register):
            sys.exit(4)
    """
    make_plugin_dist(site, "zoo-quitter", "zoo_quitter_mod", code, "quitter")
    make_plugin_dist(site, "zoo-good", "zoo_good_mod", GOOD.format(arch="good-arch"), "good")
    r = run_zoo(["--help"], site)
    assert r.returncode == 0 and "Usage" in r.stdout, r.stderr
    for command in (["list"], ["info", "good-arch"], ["plugins"]):
        r = run_zoo(command, site)
        assert r.returncode in (0, 1) and (r.stdout or r.stderr), command
        assert "Traceback" not in r.stderr
    rows = {row["name"]: row for row in json.loads(run_zoo(["plugins", "--json"], site).stdout)}
    assert rows["quitter"]["status"] == "failed" and "sys.exit" in rows["quitter"]["errors"][0]["error"]
    assert rows["good"]["status"] == "ok"


def test_ctrl_c_while_a_plugin_imports_stops_cleanly(tmp_path):
    site = tmp_path / "site"
    make_plugin_dist(site, "zoo-slow", "zoo_slow_mod", "raise KeyboardInterrupt\n", "slow")
    r = run_zoo(["list"], site)
    assert r.returncode == 130
    assert "interrupted" in r.stderr and "Traceback" not in r.stderr


COMMANDS = """
import click
from zoo_core import hookimpl

@hookimpl
def register_commands(cli):
    @cli.command("pull")
    def pull():
        click.echo("HIJACKED")

    @cli.commands["sample"].command("toy-sample")
    def toy_sample():
        click.echo("{label}")

    @cli.command("{own}")
    def own():
        click.echo("OWN")
"""


def test_a_plugin_cannot_replace_a_core_or_another_plugins_command(tmp_path):
    site = tmp_path / "site"
    make_plugin_dist(site, "zoo-first", "zoo_first_mod",
                     COMMANDS.replace('@cli.command("pull")', '@cli.command("first-pull")')
                     .format(label="FIRST", own="first-own"), "first")
    make_plugin_dist(site, "zoo-second", "zoo_second_mod", COMMANDS.format(label="SECOND", own="second-own"), "second")
    env = {"ZOO_LOAD_PLUGINS": "first,second"}
    r = run_zoo(["pull", "--help"], site, env=env)
    assert "HIJACKED" not in r.stdout and "Usage:" in r.stdout and "pull [OPTIONS]" in r.stdout, r.stdout
    r = run_zoo(["sample", "toy-sample"], site, env=env)
    assert r.stdout.strip() == "FIRST", r.stdout + r.stderr
    assert run_zoo(["second-own"], site, env=env).stdout.strip() == "OWN"  # its other commands stay
    rows = {row["name"]: row for row in json.loads(run_zoo(["plugins", "--json"], site, env=env).stdout)}
    errors = " ".join(e["error"] for e in rows["second"]["errors"])
    assert "`zoo pull` belongs to 'zoo-core'" in errors
    assert "`zoo sample toy-sample` belongs to 'first'" in errors
    assert rows["first"]["status"] == "ok"


def test_zoo_load_plugins_naming_an_absent_plugin_warns(tmp_path):
    r = run_zoo(["plugins"], tmp_path, env={"ZOO_LOAD_PLUGINS": "no-such-plugin"})
    assert r.returncode == 0
    assert "'no-such-plugin', which is not installed" in r.stderr


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


def test_wrong_spec_type_is_reported_and_the_plugin_skipped(zoo_plugins):
    from zoo_core import hookimpl
    from zoo_core.specs import DatasetSpec

    class Bad:
        @hookimpl
        def register_datasets(self, register):
            register(DatasetSpec(name="bad-good-part", target="toy_plugin:ToyData"))
            register({"name": "x"})

    zoo_plugins.pm.register(Bad(), name="bad")
    table = zoo_plugins.datasets()
    assert "bad-good-part" not in table and "x" not in table  # nothing of the failed call is kept
    assert table  # the toy plugin's datasets are still there
    [failure] = [f for f in zoo_plugins.failures if f.plugin == "bad"]
    assert "expected DatasetSpec" in failure.error


ENTRY = """
from zoo_core import hookimpl

@hookimpl
def register_registry_entries(register):
    register({{"id": "{id}", "architecture": "nice", "plugin": "nice", "task": "density-estimation",
              "summary": "s", "license": "MIT", "links": {{"source": "https://example.org"}}, "metrics": [],
              "hub": None, "weights": {{"status": "not-published", "how": "convert", "instructions": "x"}}}})
"""


def test_a_plugin_entry_with_a_taken_catalogue_id_is_skipped_and_reported(tmp_path):
    site = tmp_path / "site"
    make_plugin_dist(site, "zoo-squatter", "zoo_squatter_mod", ENTRY.format(id="nice-mnist"), "squatter")
    env = {"ZOO_LOAD_PLUGINS": "squatter,nice,images"}
    for command in (["list"], ["info", "nice-mnist"], ["plugins"]):
        r = run_zoo(command, site, env=env)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (command, r.stderr)
    info = json.loads(run_zoo(["info", "nice-mnist", "--json"], site, env=env).stdout)
    assert info["plugin"] == "nice" and "registry.yaml" in info["source"]  # the registry's entry, not the squatter's
    rows = {row["name"]: row for row in json.loads(run_zoo(["plugins", "--json"], site, env=env).stdout)}
    assert rows["squatter"]["status"] == "failed"
    assert "'nice-mnist' is taken" in rows["squatter"]["errors"][0]["error"]


def test_entry_points_are_found_as_importlib_metadata_finds_them(tmp_path, monkeypatch):
    """zoo_core reads entry_points.txt itself (importing importlib.metadata cost a third of `zoo list`)."""
    import sys
    from importlib import metadata

    from zoo_core.plugins import entry_points

    first, second = tmp_path / "first", tmp_path / "second"
    make_plugin_dist(first, "zoo-dup", "dup_one", None, "dup-one")
    make_plugin_dist(second, "zoo_dup", "dup_two", None, "dup-two")  # the same distribution, later on the path
    make_plugin_dist(second, "zoo-other", "other_mod", None, "other")
    (second / "zoo_other-0.1.dist-info" / "entry_points.txt").write_text(
        "# a comment\n[console_scripts]\nx = y:z\n\n[zoo]\nother = other_mod:hooks.inner\n")
    monkeypatch.setattr(sys, "path", [str(first), str(second), *sys.path])
    for group in ("zoo", "console_scripts", "pytest11"):
        ours = sorted((ep.name, ep.value) for ep in entry_points(group))
        assert ours == sorted((ep.name, ep.value) for ep in metadata.entry_points(group=group)), group
    zoo = {ep.name: ep for ep in entry_points("zoo")}
    assert "dup-two" not in zoo and zoo["dup-one"].dist == "zoo-dup"
    assert zoo["other"].value == "other_mod:hooks.inner" and zoo["other"].dist == "zoo-other"


def test_trained_here_builds_a_valid_not_published_entry():
    from zoo_core import trained_here
    from zoo_core.registry import parse_registry

    about = {"license": "MIT", "links": {"paper": "https://example.org/p"}}
    entry = trained_here("toy-trained", architecture="toy-mlp", plugin="toy", task="regression", summary="s",
                         about=about, instructions="Run `zoo train toy-trained`.", no_redistribution="data terms")
    about["links"]["paper"] = "https://example.org/changed"  # the entry holds its own copy
    [parsed] = parse_registry(json.dumps({"version": 1, "models": [entry]}), "test")
    assert (parsed.id, parsed.recipe, parsed.hub, parsed.license) == ("toy-trained", "toy-trained", None, "MIT")
    assert parsed.links == {"paper": "https://example.org/p"}
    assert parsed.weights == {"status": "not-published", "how": "train", "instructions": "Run `zoo train toy-trained`.",
                              "no_redistribution": "data terms"}
    other = trained_here("toy-b", architecture="toy-mlp", plugin="toy", task="regression", summary="s", about=about,
                         instructions="x", recipe="toy-recipe")
    assert other["recipe"] == "toy-recipe" and "no_redistribution" not in other["weights"]
