"""The kit's pytest plugin keeps every test session out of the user's caches."""

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


def test_a_test_session_never_writes_to_the_users_caches(tmp_path):
    home = tmp_path / "user"
    (tmp_path / "t").mkdir()
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
