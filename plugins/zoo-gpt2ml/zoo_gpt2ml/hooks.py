"""zoo hook implementations of the GPT2_ML plugin (entry point ``gpt2ml``): registration only.

The commands live in cli.py; ``register_commands`` just attaches them.
Torch-free on purpose: ``zoo --help`` and ``zoo list`` import this module.
Heavy code is named by ``"module:Name"`` strings and imported when used.
"""

from __future__ import annotations

from zoo_core import ConverterSpec, ModelSpec, hookimpl

TINY_CONFIG = {
    "vocab_size": 8021,
    "max_position_embeddings": 64,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 256,
}


@hookimpl
def register_models(register):
    """The ``gpt2-ml`` architecture (GPT2_ML / Grover post-LN transformer)."""
    register(ModelSpec(
        name="gpt2-ml",
        target="zoo_gpt2ml.model:GPT2ML",
        task="text-generation",
        summary="GPT2_ML (imcaspar/gpt2-ml): Grover-style post-LN Chinese GPT-2, 1.37B parameters",
        tiny_config=dict(TINY_CONFIG),
    ))


@hookimpl
def register_converters(register):
    """The converter from the official TensorFlow checkpoints, and the download of the released ones."""
    register(ConverterSpec(
        name="gpt2-ml",
        target="zoo_gpt2ml.convert:convert",
        summary="official GPT2_ML TensorFlow checkpoint (model.ckpt-N) -> zoo model folder",
        fetch="zoo_gpt2ml.fetch:fetch",  # a plain `zoo pull gpt2-ml` downloads the release files first
    ))


@hookimpl
def register_commands(commands):
    """``zoo generate gpt2-ml`` and ``zoo convert gpt2-ml``."""
    from .cli import attach

    attach(commands)


@hookimpl
def register_demos(register):
    """The model's tab in ``zoo serve`` (zoo_gpt2ml/demo.py; imported only when serving)."""
    register("gpt2-ml", "zoo_gpt2ml.demo:build")
