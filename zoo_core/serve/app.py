"""The ``zoo serve`` page: a tab per available model, a line per missing one, served offline.

Offline means: no analytics (``GRADIO_ANALYTICS_ENABLED=False``, set before
gradio is imported, in web.py), no share link, no run history (whose page
offers a Hugging Face bucket), no server-side rendering (which would start
Node), and a theme of system fonts, so the browser fetches nothing but this
server's own files.
"""

from __future__ import annotations

import ipaddress
import sys

from ..errors import ZooError
from .tab import Settings, Tab, slug
from .web import gr

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
CSS = ".zoo-status { min-height: 1.5em; }"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (127.0.0.0/8, ::1, localhost)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def theme():
    """Gradio's default look with the system's fonts: nothing is fetched from a font service."""
    return gr.themes.Default(font=["system-ui", "-apple-system", "Segoe UI", "Noto Sans", "sans-serif"],
                             font_mono=["ui-monospace", "DejaVu Sans Mono", "monospace"])


def _missing_lines(missing) -> str:
    lines = ["### Not available here", ""]
    for s in missing:
        summary = f" ({s.summary})" if s.summary else ""
        lines.append(f"- **{s.name}**{summary}: {s.how}")
    return "\n".join(lines)


def build_app(served, settings: Settings | None = None) -> tuple[gr.Blocks, list[Tab]]:
    """The page for ``served`` (see :func:`zoo_core.serve.models.served_models`) and its tabs."""
    settings = settings or Settings()
    available = [s for s in served if s.available]
    missing = [s for s in served if not s.available]
    tabs: list[Tab] = []
    # Uploads and results are files in gradio's cache: an hour-old one is deleted, the rest when the server stops.
    with gr.Blocks(title="zoo serve", analytics_enabled=False, delete_cache=(600, 3600)) as app:
        gr.Markdown("## zoo: the models of kexue.fm\n"
                    f"{len(available)} model(s) available on this machine, each in its tab and each action an "
                    "HTTP endpoint (\"Use via API\" at the bottom of the page). A model loads the first time its tab "
                    "is used.")
        if available:
            with gr.Tabs():
                for s in available:
                    with gr.Tab(s.name, id=slug(s.name)) as item:
                        if s.summary:
                            gr.Markdown(s.summary)
                        tab = Tab(s, settings)
                        s.demo.load()(tab)
                    tab.wire_open(app.load if not tabs else item.select)
                    tabs.append(tab)
        else:
            gr.Markdown("No model is available on this machine yet: the list below says how to get each one.")
        if missing:
            gr.Markdown(_missing_lines(missing), elem_id="zoo-missing")
    return app, tabs


def loud_warning(host: str, port: int) -> str:
    """What ``zoo serve`` prints before listening on an address other machines can reach."""
    bar = "!" * 78
    return (f"{bar}\n"
            f"WARNING: zoo serve listens on {host}:{port}, which other machines can reach.\n"
            f"Anyone who can connect can run these models on this machine; there is no password.\n"
            f"Use the default (--host 127.0.0.1) unless you mean it.\n"
            f"{bar}")


def launch(app: gr.Blocks, *, host: str = "127.0.0.1", port: int = 7860, max_bytes: int | None = None,
           max_queue: int = 16, block: bool = True) -> None:
    """Serve ``app`` on ``host:port`` without share links, analytics or anything fetched from the internet."""
    if not is_loopback(host):
        print(loud_warning(host, port), file=sys.stderr, flush=True)
    app.queue(max_size=max_queue, default_concurrency_limit=1)
    try:
        _launch(app, host, port, max_bytes)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise ZooError(f"cannot listen on {host}:{port}: {exc}", where="--host/--port",
                       hint="choose another --port (or stop what listens there)") from None
    print(f"zoo serve: listening on {app.local_url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    if block:
        app.block_thread()


def _launch(app, host: str, port: int, max_bytes: int | None) -> None:
    app.launch(server_name=host, server_port=port, share=False, inbrowser=False, ssr_mode=False, pwa=False,
               mcp_server=False, show_error=True, max_file_size=max_bytes, theme=theme(), css=CSS,
               prevent_thread_lock=True, quiet=True, enable_monitoring=False,
               run_history=False,  # its page offers to save runs to a Hugging Face bucket: not offline
               footer_links=["api", "settings"])
