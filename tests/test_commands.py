"""The shape of the command line (zoo_core/commands.py): shared verbs, plugin namespaces, one collision rule."""

import json
import os
import subprocess
import sys

from fake_dists import make_plugin_dist, run_zoo

PLUGIN = """
import sys
import click
from zoo_core import hookimpl

print("{name}: commands attached", file=sys.stderr)  # module import = command registration below

@click.command()
@click.argument("model")
@click.argument("word")
@click.option("-n", default=1)
def near(model, word, n):
    \"\"\"Neighbours by {name}.\"\"\"
    click.echo(f"{name} near {{model}} {{word}} {{n}}")

@click.command("sample-it")
def sample_it():
    \"\"\"Sample {name}'s model.\"\"\"
    click.echo("{name} SAMPLE")

@click.command("tool")
def tool():
    \"\"\"A tool of {name}.\"\"\"
    click.echo("{name} TOOL")

@hookimpl
def register_commands(commands):
    commands.add(sample_it, to="sample", name="{sample}")
    commands.add(near, to="similar", name="{name}")
    commands.describe("Tools of the {name} plugin.")
    commands.add(tool)
"""

HOOKS = """
from zoo_core import hookimpl

@hookimpl
def register_commands(commands):
    from {name}_cli import attach
    attach(commands)
"""


def plugin(site, name, sample=None):
    """A plugin ``name`` whose commands live in a module of their own (``NAME_cli``), as the real ones do."""
    make_plugin_dist(site, f"zoo-{name}", f"{name}_hooks", HOOKS.format(name=name), name)
    (site / f"{name}_cli.py").write_text(PLUGIN.format(name=name, sample=sample or f"{name}-sample")
                                         .replace("@hookimpl\ndef register_commands", "def attach")
                                         .replace("from zoo_core import hookimpl\n", ""))


def test_verbs_and_namespaces_from_one_plugin(tmp_path):
    site = tmp_path / "site"
    plugin(site, "alpha")
    env = {"ZOO_LOAD_PLUGINS": "alpha"}
    assert run_zoo(["sample", "alpha-sample"], site, env=env).stdout.strip() == "alpha SAMPLE"
    assert run_zoo(["alpha", "tool"], site, env=env).stdout.strip() == "alpha TOOL"
    # a verb whose first argument is the model runs its one command without naming it, options anywhere
    assert run_zoo(["similar", "m", "w", "-n", "3"], site, env=env).stdout.strip() == "alpha near m w 3"
    assert run_zoo(["similar", "-n", "2", "m", "w"], site, env=env).stdout.strip() == "alpha near m w 2"
    assert run_zoo(["similar", "alpha", "m", "w"], site, env=env).stdout.strip() == "alpha near m w 1"
    text = run_zoo(["--help"], site, env=env).stdout
    sections = text.split("\n\n")
    own = next(s for s in sections if s.startswith("Plugins' own commands:"))
    assert "alpha" in own and "Tools of the alpha plugin." in own
    verbs = next(s for s in sections if s.startswith("Using a model"))
    assert "sample" in verbs and "similar" in verbs
    assert "\n  generate " not in text and "\n  export " not in text  # verbs no installed plugin fills: not listed
    [row] = json.loads(run_zoo(["plugins", "--json"], site, env=env).stdout)
    assert row["commands"] == ["zoo alpha tool", "zoo sample alpha-sample", "zoo similar alpha"]
    r = run_zoo(["generate", "x"], site, env=env)
    assert r.returncode == 2 and "no installed plugin gives `zoo generate` commands" in r.stderr


def test_zoo_list_attaches_no_plugin_commands(tmp_path):
    site = tmp_path / "site"
    plugin(site, "alpha")
    env = {"ZOO_LOAD_PLUGINS": "alpha"}
    r = run_zoo(["list"], site, env=env)
    assert r.returncode == 0 and "commands attached" not in r.stderr, r.stderr
    assert "alpha: commands attached" in run_zoo(["--help"], site, env=env).stderr


def test_a_taken_command_is_refused_once_and_reported(tmp_path):
    site = tmp_path / "site"
    plugin(site, "alpha", sample="same")
    plugin(site, "beta", sample="same")
    env = {"ZOO_LOAD_PLUGINS": "alpha,beta"}
    rows = {row["name"]: row for row in json.loads(run_zoo(["plugins", "--json"], site, env=env).stdout)}
    [(loser, row)] = [(name, row) for name, row in rows.items() if row["status"] == "failed"]
    winner = ({"alpha", "beta"} - {loser}).pop()
    assert [e["error"] for e in row["errors"]] == [
        f"command `zoo sample same` belongs to {winner!r}; plugin {loser!r} tried to add it and was skipped"]
    assert run_zoo(["sample", "same"], site, env=env).stdout.strip() == f"{winner} SAMPLE"
    assert run_zoo([loser, "tool"], site, env=env).stdout.strip() == f"{loser} TOOL"  # the rest of it stays
    # two plugins give `zoo similar`: the bare form says which there are, the named form works
    r = run_zoo(["similar", "m", "w"], site, env=env)
    assert r.returncode == 2 and "several plugins give `zoo similar` (alpha, beta)" in r.stderr
    assert "zoo similar alpha m w" in r.stderr
    assert run_zoo(["similar", "beta", "m", "w"], site, env=env).stdout.strip() == "beta near m w 1"


def test_a_namespace_that_is_a_core_command_is_refused(tmp_path):
    site = tmp_path / "site"
    plugin(site, "pull")  # its namespace would be `zoo pull`
    env = {"ZOO_LOAD_PLUGINS": "pull"}
    r = run_zoo(["pull", "--help"], site, env=env)
    assert "Download a model at its pinned commit" in r.stdout, r.stdout
    rows = {row["name"]: row for row in json.loads(run_zoo(["plugins", "--json"], site, env=env).stdout)}
    assert [e["error"] for e in rows["pull"]["errors"]] == [
        "command `zoo pull` belongs to 'zoo-core'; plugin 'pull' tried to use it as its namespace and was skipped"]
    assert run_zoo(["sample", "pull-sample"], site, env=env).stdout.strip() == "pull SAMPLE"  # its verbs work


def test_an_unknown_verb_is_a_plugin_failure_with_a_suggestion(tmp_path):
    site = tmp_path / "site"
    make_plugin_dist(site, "zoo-typo", "zoo_typo_mod", """
        import click
        from zoo_core import hookimpl

        @hookimpl
        def register_commands(commands):
            commands.add(click.Command("x"), to="smaple")
    """, "typo")
    rows = {row["name"]: row for row in json.loads(run_zoo(["plugins", "--json"], site,
                                                           env={"ZOO_LOAD_PLUGINS": "typo"}).stdout)}
    [error] = rows["typo"]["errors"]
    assert error["stage"] == "register_commands" and "did you mean 'sample'" in error["error"]


def test_every_readme_spelling_of_the_real_plugins_resolves():
    """The spellings the READMEs and tests use, with every plugin installed: each reaches its command's help."""
    code = ("import sys\nfrom zoo_core.cli import cli\n"
            "for args in sys.argv[1:]:\n"
            "    try:\n        cli(args.split() + ['--help'], standalone_mode=False)\n"
            "    except SystemExit:\n        pass\n"
            "print('MODULES', sorted(m for m in sys.modules if m in ('torch', 'numpy')))\n")
    spellings = ["sample nice-mnist", "sample ganqp-mnist", "sample ogan-celebahq256-sm-ema", "generate gpt2-ml",
                 "convert gpt2-ml", "score sogou", "export word2vec", "similar", "answer", "images fid",
                 "ogan encode", "ogan reconstruct", "ogan interpolate", "nce synthetic-zhidao", "nce scan-zhidao"]
    r = subprocess.run([sys.executable, "-c", code, *spellings], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    usages = [line for line in r.stdout.splitlines() if line.startswith("Usage: ")]
    assert len(usages) == len(spellings), r.stdout
    for spelling, usage in zip(spellings, usages):
        assert f" {spelling} [OPTIONS]" in usage, usage
    assert "MODULES []" in r.stdout  # a command's --help imports neither torch nor numpy


def test_plugin_commands_follow_the_plugins_loaded_in_this_process(monkeypatch):
    """Tests reset the plugins between cases: the commands of the earlier set go, the new set's come."""
    from click.testing import CliRunner

    from zoo_core import plugins
    from zoo_core.cli import cli

    def sample_commands(names):
        monkeypatch.setenv("ZOO_LOAD_PLUGINS", names)
        plugins.reset()
        r = CliRunner().invoke(cli, ["sample", "--help"])
        assert r.exit_code == 0, r.output
        return {line.split()[0] for line in r.output.split("Commands:")[1].splitlines() if line.strip()}

    try:
        assert sample_commands("nice") == {"nice-mnist"}
        assert "ganqp-mnist" in sample_commands("ganqp,images") and "nice-mnist" not in sample_commands("ganqp")
        r = CliRunner().invoke(cli, ["sample", "nice-mnist", "--help"])
        assert r.exit_code == 2 and "No such command 'nice-mnist'" in r.output
    finally:
        plugins.reset()


def test_zoo_list_imports_no_plugin_command_module_of_the_real_plugins():
    code = ("import sys\nfrom zoo_core.cli import cli\n"
            "try:\n    cli(['list'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            "print('PLUGINS', sorted(m for m in sys.modules if m.startswith('zoo_') and m.endswith('.hooks')))\n"
            "print('CLI', sorted(m for m in sys.modules if m.endswith('.cli') and m.split('.')[0] in\n"
            "                    {p.split('.')[0] for p in sys.modules if p.endswith('.hooks')}))\n")
    env = {k: v for k, v in os.environ.items() if k != "ZOO_LOAD_PLUGINS"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "'zoo_nice.hooks'" in r.stdout and "CLI []" in r.stdout, r.stdout[-500:]
