"""Tiny training runs for a plugin's tests: one place that layers a test's settings over a recipe's."""

from __future__ import annotations

import os


def run_config(defaults: dict, small_run: dict, out: str | os.PathLike, **overrides):
    """A ``TrainConfig`` in ``out``: the recipe's ``defaults``, then the test suite's ``small_run``
    settings (a few steps on a slice of the data), then this test's ``overrides``."""
    from zoo_core import TrainConfig

    return TrainConfig.from_dict({**defaults, **small_run, "out": str(out), **overrides})


def torchrun(script: str, nproc: int, *, cwd: str | os.PathLike, plugins: str | None = None,
             timeout: float = 600, args: list[str] | tuple[str, ...] = (), check: bool = True):
    """Run the Python source ``script`` (with ``args``) under ``torch.distributed.run --standalone`` with
    ``nproc`` processes (one torch thread each, ``ZOO_LOAD_PLUGINS=plugins`` when given) in ``cwd``, and
    return the finished process (output captured as text). With ``check``, fail the test with the
    processes' last output unless every process succeeds. What a "torchrun with 2 processes matches 1"
    test runs twice (:class:`~zoo_core.testing.RecipeContract` does it for a recipe)."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    path = Path(cwd) / f"torchrun-{nproc}-{abs(hash(script)) % 10**8}.py"
    path.write_text(textwrap.dedent(script))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if plugins is not None:
        env["ZOO_LOAD_PLUGINS"] = plugins
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                        str(path), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       check=False)
    if check:
        assert r.returncode == 0, f"torchrun --nproc-per-node={nproc} failed:\n{r.stderr[-3000:]}"
    return r
