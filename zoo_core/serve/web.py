"""gradio, imported with its analytics off: every module of ``zoo serve`` gets ``gr`` from here."""

import os

# Read by gradio when it starts and when it launches: no usage reports or version checks leave the machine.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import gradio as gr  # after the environment above

__all__ = ["gr"]
