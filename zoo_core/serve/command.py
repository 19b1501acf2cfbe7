"""The ``zoo serve`` command (click only: gradio is imported when the command runs, not when ``zoo`` starts)."""

from __future__ import annotations

import click

from ..errors import ZooError
from . import INSTALL_HINT, uploads


def import_gradio():
    """Import gradio (the ``serve`` extra), or a ZooError saying how to install it."""
    try:
        from .web import gr
    except ImportError as exc:
        raise ZooError(f"zoo serve needs gradio, which is not installed ({exc})", hint=INSTALL_HINT) from None
    return gr


@click.command("serve")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback lets other machines use the models.")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(0, 65535))
@click.option("--device", default="cpu", show_default=True, help="Where the models run: cpu, cuda, cuda:1.")
@click.option("--dtype", type=click.Choice(["fp32", "bf16", "fp16"]), default=None,
              help="Compute dtype (default: as stored; bf16 halves GPT2_ML's memory).")
@click.option("--max-upload-mb", default=uploads.MAX_BYTES / 2**20, show_default=True,
              type=click.FloatRange(0, None, min_open=True), help="Largest file a user may upload.")
@click.option("--max-pixels", default=uploads.MAX_PIXELS, show_default=True, type=click.IntRange(1, None),
              help="Largest picture (width x height) the server decodes.")
@click.option("--max-queue", default=16, show_default=True, type=click.IntRange(1, None),
              help="Requests waiting at once; more are told the server is busy.")
def serve_command(names, host, port, device, dtype, max_upload_mb, max_pixels, max_queue):
    """Try the zoo's models in a browser: a tab per model available here, each action an HTTP endpoint.

    NAME is a catalogue id or a model folder (default: every catalogue model
    with a demo). Models that are not on this machine get a line in the page
    saying how to get them. Listens on http://127.0.0.1:7860 by default.
    """
    import_gradio()
    from .app import build_app, launch
    from .models import served_models
    from .tab import Settings

    from ..model import check_device

    check_device(device)
    served = served_models(names)
    max_bytes = int(max_upload_mb * 2**20)
    app, tabs = build_app(served, Settings(device=device, dtype=dtype, max_bytes=max_bytes, max_pixels=max_pixels))
    shown = ", ".join(t.id for t in tabs) or "none (see the page for how to get them)"
    click.echo(f"zoo serve: {len(tabs)} model(s): {shown}", err=True)
    launch(app, host=host, port=port, max_bytes=max_bytes, max_queue=max_queue)
