"""The kit's pytest plugin keeps the sessions that opt in out of the user's caches, and only those."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TEST = '''
import os
from pathlib import Path

def test_writes_everywhere_it_may():
    from zoo_core import zoo_home
    import huggingface_hub.constants as c
    for folder in (zoo_home(), Path(c.HF_HUB_CACHE), Path(os.environ["XDG_CACHE_HOME"])):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "written-by-a-test").write_text("x")
    print("HOMES", zoo_home(), c.HF_HUB_CACHE, os.environ["XDG_CACHE_HOME"])
'''


OPT_IN = "from zoo_core.testing.pytest_plugin import *  # noqa: F403\n"


def test_a_test_session_that_opts_in_never_writes_to_the_users_caches(tmp_path):
    home = tmp_path / "user"
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "conftest.py").write_text(OPT_IN)  # the one line `zoo new-plugin` writes
    (tmp_path / "t" / "test_w.py").write_text(TEST)
    env = {k: v for k, v in os.environ.items() if k not in ("ZOO_HOME", "HF_HOME", "XDG_CACHE_HOME")}
    env.update(HOME=str(home), HF_HUB_CACHE=str(home / "hf-hub-cache"), PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(tmp_path / "t")],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    homes = next(line for line in r.stdout.splitlines() if line.startswith("HOMES")).split()[1:]
    assert all(not Path(h).is_relative_to(home) for h in homes), homes
    assert not home.exists() or not any(home.rglob("written-by-a-test"))
    assert all(not Path(h).exists() for h in homes)  # the session's folder is gone afterwards


def test_this_session_is_isolated_too():
    from zoo_core import zoo_home

    real = Path.home() / ".cache"
    for name in ("ZOO_HOME", "HF_HOME", "XDG_CACHE_HOME"):
        assert not Path(os.environ[name]).is_relative_to(real), name
    assert not zoo_home().is_relative_to(real)


UNRELATED = '''
import os


def test_my_hf_home_is_mine():
    import huggingface_hub.constants as c

    print("SEEN", os.environ.get("HF_HOME"), c.HF_HOME, os.environ.get("XDG_CACHE_HOME"), os.environ.get("ZOO_HOME"))
    assert os.environ["HF_HOME"] == os.environ["EXPECTED_HF_HOME"]
    assert c.HF_HOME == os.environ["EXPECTED_HF_HOME"]
'''


def test_an_unrelated_projects_session_keeps_its_hf_home(tmp_path):
    """Installing zoo-core registers no pytest plugin: a project that never asked for the kit is left alone."""
    project = tmp_path / "other-project"
    project.mkdir()
    (project / "test_mine.py").write_text(UNRELATED)  # no conftest, no ini file: a plain pytest session
    mine = tmp_path / "my-hf-home"
    env = {k: v for k, v in os.environ.items() if k not in ("ZOO_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")}
    env.update(HF_HOME=str(mine), EXPECTED_HF_HOME=str(mine), XDG_CACHE_HOME=str(tmp_path / "my-xdg"),
               PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(project)],
                       capture_output=True, text=True, env=env, cwd=project, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    seen = next(line for line in r.stdout.splitlines() if line.startswith("SEEN")).split()[1:]
    assert seen == [str(mine), str(mine), str(tmp_path / "my-xdg"), "None"]


def test_zoo_core_registers_no_pytest_plugin():
    from importlib.metadata import distribution

    assert not [e for e in distribution("zoo-core").entry_points if e.group == "pytest11"]


def test_every_plugins_tests_opt_in():
    """Each plugin's tests/conftest.py carries the kit's line, so its tests run in private caches alone too."""
    import ast

    root = Path(__file__).parents[1]
    conftests = sorted(root.glob("plugins/*/tests/conftest.py"))
    assert len(conftests) >= 6
    for path in conftests:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        star = [n for n in tree.body if isinstance(n, ast.ImportFrom)
                and n.module == "zoo_core.testing.pytest_plugin" and [a.name for a in n.names] == ["*"]]
        assert star, f"{path} does not opt in to the kit"
