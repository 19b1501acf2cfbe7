"""One `zoo serve` per test module: a real server process on a free loopback port, over tiny models.

The models are installed in a zoo home of the module's own (tiny_models.py); LeNet is the one zoo-images
ships, so its answers are a trained model's. Limits are set low (1 MiB, 1 megapixel) so that "too big"
is cheap to send. The page's screenshots go to $ZOO_SERVE_SCREENSHOTS when it is set (docs/serve is
what the README shows), else to the test's temporary folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from zoo_core.testing import free_port

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

pytest.importorskip("gradio", reason="zoo serve needs the [serve] extra: pip install -r requirements.txt")

MAX_UPLOAD_MB = 1
MAX_PIXELS = 1_000_000


class Server:
    """A running ``zoo serve``: its URL, its zoo home and what it printed so far."""

    def __init__(self, url: str, home: Path, log: Path, process: subprocess.Popen):
        self.url, self.home, self.log, self.process = url, home, log, process

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``zoo serve`` over every tiny model, on 127.0.0.1 and a free port; stopped after the module."""
    import httpx

    from tiny_models import install_tiny_models

    root = tmp_path_factory.mktemp("serve")
    home = root / "home"
    install_tiny_models(home)
    port = free_port()
    env = {**os.environ, "ZOO_HOME": str(home), "GRADIO_TEMP_DIR": str(root / "gradio"), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    env.pop("ZOO_LOAD_PLUGINS", None)
    log = root / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "zoo_core.cli", "serve", "--port", str(port), "--max-upload-mb", str(MAX_UPLOAD_MB),
             "--max-pixels", str(MAX_PIXELS)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    running = Server(url, home, log, process)
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            pytest.fail(f"zoo serve exited with {process.returncode}:\n{running.output()[-3000:]}")
        try:
            if httpx.get(url + "/gradio_api/info", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"zoo serve did not answer within 120 s:\n{running.output()[-3000:]}")
        time.sleep(0.5)
    yield running
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def client(server):
    """A gradio_client on the server, as the README shows it."""
    from gradio_client import Client

    return Client(server.url, verbose=False)


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    """Where the browser tests keep their screenshots."""
    folder = os.environ.get("ZOO_SERVE_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def picture(path: Path, size=(64, 64), *, digit: str | None = None) -> Path:
    """A PNG: a white ``digit``-ish stroke on black (or plain grey) of ``size`` pixels."""
    from PIL import Image, ImageDraw

    image = Image.new("L", size, 0 if digit else 128)
    if digit:
        draw = ImageDraw.Draw(image)
        w, h = size
        draw.line([(w // 2, h // 5), (w // 2, 4 * h // 5)], fill=255, width=max(2, w // 8))
    image.save(path)
    return path
