"""The plugin kit's check of a plugin's ``zoo serve`` demos (called by the contract tests).

Each demo the plugin registers is built on a tiny untrained model of its
architecture (the ModelSpec's ``tiny_config``), must wire at least one
endpoint, and every endpoint, run on its controls' default values, must return
or raise a ZooError (a clear message in the page), never anything else.
"""

from __future__ import annotations

import inspect
from pathlib import Path


def check_demos(plugin: str, tmp_path: str | Path) -> list[str]:
    """Check every demo ``plugin`` registers; return the endpoints run. AssertionError says what is wrong."""
    from .. import plugins
    from ..errors import ZooError
    from .app import build_app
    from .models import Served, demos

    mine = [d for d in demos().values() if d.plugin == plugin]
    failed = [f for f in plugins.failures if f.plugin == plugin and f.stage == "register_demos"]
    assert not failed, f"register_demos of {plugin} failed: {failed}"
    checked = []
    for demo in mine:
        spec = plugins.models().get(demo.architecture)
        assert spec is not None, f"{plugin} registers a demo for {demo.architecture!r}, which no plugin registers"
        model = spec.load().from_config(dict(spec.tiny_config)).eval()
        folder = model.save_pretrained(Path(tmp_path) / f"demo-{demo.architecture}")
        _, tabs = build_app([Served(str(folder), demo.architecture, demo=demo, ref=str(folder))])
        assert len(tabs) == 1 and tabs[0].endpoints, f"{demo.target} wires no endpoint (call tab.on(...))"
        for api_name, fn, inputs in tabs[0].endpoints:
            values = [c.value for c in inputs]
            try:
                result = fn(*values)
                if inspect.isgenerator(result):
                    for _ in result:
                        pass
            except ZooError:
                pass  # a clear message in the page, e.g. "the question is empty"
            except Exception as exc:  # the check reports whatever the demo raised
                raise AssertionError(f"{api_name} ({demo.target}) raised {type(exc).__name__}: {exc} on its "
                                     f"default inputs {values!r}; raise a ZooError that says what to do") from exc
            checked.append(api_name)
    return checked
