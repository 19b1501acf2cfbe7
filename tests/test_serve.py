"""`zoo serve` without a server: which models it shows, how it says to get the others, what it refuses.

The server itself, driven over HTTP and in a browser, is tested in tests/serve/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "serve"))

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, env_extra=None, timeout=120):
    env = {**os.environ, **(env_extra or {})}
    env.pop("ZOO_LOAD_PLUGINS", None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout)


def test_zoo_help_and_list_do_not_import_gradio():
    r = run_python("import sys\nfrom zoo_core.cli import cli\n"
                   "for args in (['--help'], ['serve', '--help'], ['list']):\n"
                   "    try:\n        cli(args, standalone_mode=False)\n    except SystemExit:\n        pass\n"
                   "print('GRADIO' if 'gradio' in sys.modules else 'LIGHT')")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("LIGHT") and "serve" in r.stdout


def test_zoo_serve_without_gradio_says_how_to_install_it():
    r = run_python("import sys\nsys.modules['gradio'] = None  # as if the [serve] extra were not installed\n"
                   "from zoo_core.cli import main\nsys.argv = ['zoo', 'serve']\nmain()")
    assert r.returncode == 1
    assert "zoo serve needs gradio, which is not installed" in r.stderr
    assert "pip install 'zoo-core[serve]'" in r.stderr and "Traceback" not in r.stderr


gradio = pytest.importorskip("gradio", reason="the rest needs the [serve] extra")


@pytest.fixture
def home(tmp_path, monkeypatch):
    from zoo_core import plugins

    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZOO_LOAD_PLUGINS", raising=False)
    plugins.reset()
    yield tmp_path / "home"
    plugins.reset()


def test_every_plugin_registers_its_demo(home):
    from zoo_core.serve.models import demos

    assert {a: d.plugin for a, d in demos().items()} == {
        "nice": "nice", "ganqp": "ganqp", "ogan": "ogan", "lenet": "images", "gpt2-ml": "gpt2ml", "dgcnn": "dgcnn",
        "word2vec": "nce", "zhidao-tags": "nce"}


def test_models_here_get_a_tab_and_the_others_the_hint_zoo_pull_gives(home):
    from tiny_models import install_tiny_models

    from zoo_core import ZooError
    from zoo_core.serve.models import served_models

    install_tiny_models(home, ids={"nice-mnist", "ganqp-mnist"})
    served = {s.name: s for s in served_models()}
    assert {n for n, s in served.items() if s.available} == {"nice-mnist", "ganqp-mnist", "lenet-mnist"}
    assert served["lenet-mnist"].ref == "lenet-mnist"  # its weights ship inside zoo-images
    assert "zoo train ogan-mnist" in served["ogan-mnist"].how
    for name in ("ogan-mnist", "dgcnn-sogou", "sgns-peoples-daily"):  # the same words as `zoo pull NAME`
        r = subprocess.run([sys.executable, "-m", "zoo_core.cli", "pull", name], capture_output=True, text=True,
                           env={**os.environ, "ZOO_HOME": str(home)}, timeout=120)
        assert r.returncode == 1 and served[name].how in r.stderr.replace("\n", " ").replace("  ", " ")
    assert "zoo pull gpt2-ml" in served["gpt2-ml"].how
    assert not (home / "downloads").exists()  # working out the hint downloads nothing
    with pytest.raises(ZooError, match="unknown"):
        served_models(["no-such-model"])


def test_a_model_folder_can_be_served_by_path(home, tmp_path):
    from tiny_models import install_tiny_models

    from zoo_core import ZooError
    from zoo_core.serve.models import served_models

    folder = install_tiny_models(tmp_path / "elsewhere", ids={"ogan-mnist"})["ogan-mnist"]
    (served,) = served_models([str(folder)])
    assert served.available and served.architecture == "ogan" and served.ref == str(folder)
    with pytest.raises(ZooError, match="not a zoo model folder"):
        served_models([str(tmp_path)])


def test_loopback_is_the_default_and_anything_else_is_said_loudly():
    from zoo_core.serve.app import is_loopback, loud_warning

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.3.2.1", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.10", "example.org"))
    text = loud_warning("0.0.0.0", 7860)
    assert "WARNING" in text and "0.0.0.0:7860" in text and "no password" in text


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_a_taken_port_is_a_clear_error_and_a_public_address_a_loud_warning(tmp_path, host):
    # The port is taken on loopback, so nothing ever listens on another address during this test.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "zoo_core.cli", "serve", "nice-mnist", "--host", host,
                            "--port", str(port)], capture_output=True, text=True, timeout=180,
                           env={**os.environ, "ZOO_HOME": str(tmp_path)})
    assert r.returncode == 1, r.stderr
    assert f"cannot listen on {host}:{port}" in r.stderr and "choose another --port" in r.stderr
    assert "Traceback" not in r.stderr
    assert ("WARNING: zoo serve listens on" in r.stderr) == (host == "0.0.0.0")


def test_pictures_are_checked_before_they_are_decoded(tmp_path):
    from PIL import Image

    from zoo_core import ZooError
    from zoo_core.serve.uploads import open_picture, upload_path

    good = tmp_path / "good.png"
    Image.new("RGB", (40, 30), "white").save(good)
    assert open_picture(good).size == (40, 30)
    assert upload_path({"path": str(good), "meta": {"_type": "gradio.FileData"}}) == good
    assert upload_path(None) is None and upload_path("") is None
    with pytest.raises(ZooError, match=r"is 0\.0 MiB, more than"):
        open_picture(good, max_bytes=10)
    with pytest.raises(ZooError, match=r"declares 40 x 30 pixels"):
        open_picture(good, max_pixels=1000)
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(bomb)  # 400 MP in a few hundred kilobytes
    with pytest.raises(ZooError, match="decompression bomb"):
        open_picture(bomb, max_pixels=10**12)  # past Pillow's own limit too
    text = tmp_path / "text.jpg"
    text.write_text("hello")
    with pytest.raises(ZooError, match="is not a picture"):
        open_picture(text)
    with pytest.raises(ZooError, match="did not arrive"):
        open_picture(tmp_path / "missing.png")


def test_the_tab_turns_failures_into_messages(home):
    from zoo_core import ZooError
    from zoo_core.serve.models import Served
    from zoo_core.serve.tab import Tab, message

    assert message(ZooError("bad", where="x", hint="do y")) == "bad (x). Next: do y"
    with gradio.Blocks():
        tab = Tab(Served("m", "nice", ref="m"))
        box = gradio.Textbox()
        tab.on([box.submit], lambda v: (_ for _ in ()).throw(ZooError("no good", hint="try again")), [box], box,
               name="zoo")
        tab.on([box.change], lambda v: 1 / 0, [box], box, name="oops")
    assert [e[0] for e in tab.endpoints] == ["m_zoo", "m_oops"]
    with pytest.raises(gradio.Error, match="m: no good. Next: try again"):
        tab._guard(tab.endpoints[0][1])("x")
    with pytest.raises(gradio.Error, match="ZeroDivisionError"):  # unexpected: still a message, never a crash
        tab._guard(tab.endpoints[1][1])("x")


def test_gpt2ml_top_k_keeps_the_k_likeliest():
    import torch
    from zoo_gpt2ml.generate import top_k_filter

    logits = torch.tensor([[1.0, 4.0, 3.0, 2.0]])
    assert torch.isinf(top_k_filter(logits, 2)).tolist() == [[True, False, False, True]]
    assert torch.equal(top_k_filter(logits, 0), logits)


def _broken_build(tab):
    """A tab whose action raises a TypeError on its default input (not a ZooError)."""
    box = gradio.Textbox("")
    tab.on([box.submit], lambda text: text + 1, [box], box, name="add")


def _good_build(tab):
    box = gradio.Textbox("")
    tab.on([box.submit], lambda text: text.upper(), [box], box, name="shout")


def test_the_kits_demo_check_passes_a_good_demo_and_names_a_broken_one(zoo_plugins, tmp_path, monkeypatch):
    import types

    from zoo_core import hookimpl
    from zoo_core.serve.check import check_demos

    module = types.ModuleType("zoo_demo_under_test")
    module.good, module.broken = _good_build, _broken_build
    monkeypatch.setitem(sys.modules, "zoo_demo_under_test", module)

    @hookimpl
    def register_demos(register):
        register("toy-mlp", "zoo_demo_under_test:good")
        register("toy-bag", "zoo_demo_under_test:broken")

    zoo_plugins.pm.register(types.SimpleNamespace(register_demos=register_demos), name="demos")
    with pytest.raises(AssertionError, match=r"_toy_bag_add \(zoo_demo_under_test:broken\) raised TypeError"):
        check_demos("demos", tmp_path)
    assert check_demos("toy", tmp_path) == []  # a plugin without demos passes


def test_the_status_line_says_loading_then_ready_or_why_not(home, tmp_path):
    from tiny_models import install_tiny_models

    from zoo_core.serve.models import Served, demos
    from zoo_core.serve.tab import Tab

    folder = install_tiny_models(tmp_path, ids={"nice-mnist"})["nice-mnist"]
    with gradio.Blocks():
        tab = Tab(Served("nice-mnist", "nice", demo=demos()["nice"], ref=str(folder)))
        broken = Tab(Served("ganqp-mnist", "ganqp", ref=str(tmp_path / "nowhere")))
    assert "not loaded yet" in tab.status.value
    steps = list(tab._load_with_status())
    assert steps[0] == "Loading **nice-mnist** ..." and steps[-1].startswith("Ready: **nice-mnist** loaded in")
    assert list(tab._load_with_status()) == [steps[-1]]  # loaded once
    assert tab.model() is tab.model()
    (first, last) = list(broken._load_with_status())
    assert first.startswith("Loading") and last.startswith("Could not load **ganqp-mnist**: no such model folder")
