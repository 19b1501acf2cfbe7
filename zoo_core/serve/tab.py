"""What a plugin's ``build(tab)`` gets: one model's tab, with lazy loading, endpoints and clear errors.

A plugin's demo lays out gradio components inside the tab and wires each action
with :meth:`Tab.on`. That makes the action an HTTP endpoint named
``<model>_<name>`` (``/gradio_api/call/nice_mnist_sample``), queues a model's
requests one at a time (several browser tabs wait their turn and see their
place in the queue), loads the model the first time it is needed, and shows a
ZooError, or any other failure, as a message in the page instead of a
traceback. The status line at the top of the tab says whether the model is
loaded, loading, or why it could not be.
"""

from __future__ import annotations

import inspect
import re
import sys
import threading
import time
import traceback
from dataclasses import dataclass

from ..errors import ZooError
from . import uploads
from .web import gr


@dataclass(frozen=True)
class Settings:
    """What the server was started with: where models run, and the limits on what users send."""

    device: str = "cpu"
    dtype: str | None = None
    max_bytes: int = uploads.MAX_BYTES
    max_pixels: int = uploads.MAX_PIXELS


def slug(name: str) -> str:
    """An endpoint-safe form of a model name: ``nice-mnist`` -> ``nice_mnist``."""
    return re.sub(r"\W+", "_", name).strip("_").lower() or "model"


def message(exc: BaseException) -> str:
    """One paragraph for the page: what went wrong, where, and what to do next."""
    if isinstance(exc, ZooError):
        text = exc.what
        if exc.where:
            text += f" ({exc.where})"
        if exc.hint:
            text += f". Next: {exc.hint}"
        return text
    return f"{type(exc).__name__}: {exc}"


def _as_list(components) -> list:
    if components is None:
        return []
    return list(components) if isinstance(components, (list, tuple)) else [components]


class Tab:
    """One served model: ``model()`` loads it once; ``on(...)`` wires an action; ``picture(...)`` checks an upload."""

    def __init__(self, served, settings: Settings | None = None):
        self.served = served
        self.id = served.name
        self.slug = slug(served.name)
        self.settings = settings or Settings()
        self.endpoints: list[tuple[str, object, list]] = []  # (api name, the demo's fn, inputs), for the kit's check
        self._on_open: list[tuple[object, list, list]] = []
        self._model = None
        self._error: str | None = None
        self._loaded_in = 0.0
        self._lock = threading.RLock()  # cached() makers may call folder() or model()
        self._extras: dict = {}
        self.status = gr.Markdown(self._status_text(), elem_classes=["zoo-status"])

    # -- the model ------------------------------------------------------------------------

    def model(self):
        """The model in eval mode, loaded on first call (one load even when requests race)."""
        with self._lock:
            if self._model is None:
                from ..loading import load_model

                start = time.perf_counter()
                try:
                    self._model = load_model(self.served.ref, device=self.settings.device, dtype=self.settings.dtype,
                                             architecture=self.served.architecture)
                except ZooError as exc:
                    self._error = message(exc)
                    raise
                self._error = None
                self._loaded_in = time.perf_counter() - start
            return self._model

    def folder(self):
        """The model's folder (for files beside the weights, such as a vocabulary)."""
        from ..resolve import resolve_folder

        return self.cached("folder", lambda: resolve_folder(self.served.ref))

    def cached(self, key: str, make):
        """``make()`` once per tab (a tokenizer, a lookup table), kept next to the model."""
        with self._lock:
            if key not in self._extras:
                self._extras[key] = make()
            return self._extras[key]

    def _status_text(self) -> str:
        name = f"**{self.id}**"
        if self._error:
            return f"Could not load {name}: {self._error}"
        if self._model is None:
            return f"{name}: not loaded yet; it loads the first time this tab is used."
        params = sum(p.numel() for p in self._model.parameters())
        return (f"Ready: {name} loaded in {self._loaded_in:.1f} s ({self.served.architecture}, "
                f"{params / 1e6:.2f} M parameters, on {self.settings.device}).")

    def _load_with_status(self):
        if self._model is not None:
            yield self._status_text()
            return
        yield f"Loading **{self.id}** ..."
        try:
            self.model()
        except ZooError:
            pass  # the status line says why
        except Exception as exc:  # noqa: BLE001 - whatever a plugin's model raises, the page says it, the server lives
            self._error = message(exc)
            traceback.print_exc(file=sys.stderr)
        yield self._status_text()

    def _mark_loading(self):
        return gr.skip() if self._model is not None else f"Loading **{self.id}** ..."

    # -- actions --------------------------------------------------------------------------

    def on(self, triggers, fn, inputs, outputs, *, name: str, uploads: bool = False, on_open: bool = False,
           trigger_mode: str | None = None, description: str | None = None):
        """Run ``fn(*inputs)`` when a trigger fires and show its result in ``outputs``; an endpoint ``<model>_<name>``.

        ``fn`` may be a generator (streamed output). It calls ``tab.model()`` for
        the model. ``uploads=True`` hands ``fn`` the raw values of its inputs
        (no gradio preprocessing), so uploaded files reach :meth:`picture`
        undecoded. ``on_open`` also runs it when the tab is opened.
        """
        inputs, outputs = _as_list(inputs), _as_list(outputs)
        run = self._guard(fn)
        api_name = f"{self.slug}_{name}"
        common = {"concurrency_limit": 1, "concurrency_id": self.slug}
        triggers = [t for t in (triggers or []) if t is not None]
        if not triggers:
            raise ValueError(f"{api_name}: give at least one trigger (a button's .click, a control's .change)")
        marked = gr.on(triggers, self._mark_loading, None, self.status, queue=False, api_visibility="private",
                       trigger_mode=trigger_mode)
        marked = marked.then(run, inputs, outputs, api_name=api_name, api_description=description,
                             preprocess=not uploads, **common)
        marked.then(self._status_text, None, self.status, api_visibility="private", queue=False)
        self.endpoints.append((api_name, fn, inputs))
        if on_open:
            self._on_open.append((run, inputs, outputs, not uploads))
        return run

    def wire_open(self, trigger) -> None:
        """Load the model with a visible status when the tab is opened (``trigger``), then run the open actions."""
        dep = trigger(self._load_with_status, None, self.status, api_visibility="private",
                      concurrency_limit=1, concurrency_id=self.slug)
        for run, inputs, outputs, preprocess in self._on_open:
            dep = dep.then(run, inputs, outputs, api_visibility="private", preprocess=preprocess,
                           concurrency_limit=1, concurrency_id=self.slug)

    def _guard(self, fn):
        """``fn`` with every failure turned into a message in the page (and a traceback only in the terminal)."""
        where = f"{self.id}: "

        def fail(exc):
            if isinstance(exc, gr.Error):
                return exc
            if not isinstance(exc, ZooError):
                print(f"zoo serve: {self.id}: unexpected error, the server keeps serving", file=sys.stderr)
                traceback.print_exc(file=sys.stderr)
            return gr.Error(where + message(exc), duration=None, print_exception=False)

        if inspect.isgeneratorfunction(fn):
            def run(*args):
                try:
                    yield from fn(*args)
                except Exception as exc:  # noqa: BLE001 - shown in the page; the server keeps serving
                    raise fail(exc) from None
        else:
            def run(*args):
                try:
                    return fn(*args)
                except Exception as exc:  # noqa: BLE001 - shown in the page; the server keeps serving
                    raise fail(exc) from None
        run.__name__ = getattr(fn, "__name__", "run")
        run.__doc__ = fn.__doc__
        return run

    # -- what users send ------------------------------------------------------------------

    def picture(self, value, *, what: str = "the picture", required: bool = True):
        """The uploaded picture (a raw gradio file value) as a PIL image, checked against the server's limits."""
        path = uploads.upload_path(value)
        if path is None:
            if required:
                raise ZooError(f"no picture was sent for {what}", hint="upload a picture (PNG, JPEG, ...)")
            return None
        return uploads.open_picture(path, max_bytes=self.settings.max_bytes, max_pixels=self.settings.max_pixels,
                                    what=what)

    def picture_file(self, value, *, what: str = "the picture"):
        """The uploaded file's path once :meth:`picture` has checked it, for readers that take a path."""
        self.picture(value, what=what).close()
        return uploads.upload_path(value)
