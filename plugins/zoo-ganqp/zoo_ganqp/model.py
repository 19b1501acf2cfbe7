"""GAN-QP's generator G and critic D (Su 2018, arXiv 1811.07296), as in the original Keras scripts.

``bojone/gan-qp`` @ f81ec73, ``128/gan_qp_l2.py`` (and its 256 and 512 copies), at any power-of-two
size: the networks are zoo-images' :mod:`zoo_images.gan` (shared with O-GAN), with GAN-QP's choices:
5 x 5 kernels, no biases in D, a scalar score (Dense(1)), G's first batch norm per unit of the Dense
output, glorot-uniform initialisation (Keras's default)::

    D: Conv2D(5x5, s2, no bias) [BN] LeakyReLU(0.2) ... -> Flatten -> Dense(1, no bias)
    G: Dense(4*4*max) -> BN -> ReLU -> Reshape -> [Conv2DTranspose(5x5, s2) -> BN -> ReLU] ... -> tanh

So at 128 px D has 5 convolutions (64, 128, 256, 512, 1024) and G is Dense(4*4*1024), then 512, 256,
128, 64, then 3 channels; at 256 px D has 6 (64 -> 2048); at 512 px 7 (32 -> 2048). The 32 px MNIST
model (max channels 8*32 = 256) has D 64, 128, 256 and G Dense(4*4*256), then 128, 64, then 1.

Two choices are made when the model is built, so a baseline is born with the nets it needs:
``critic_norm`` replaces D's batch normalisation (``"layer"``: per-sample over C, H, W with a
per-channel scale and shift, WGAN-GP's own choice for DCGAN critics; ``"none"``), and
``channels_last`` keeps the weights of G and D in NHWC memory layout (the recipes' layout: the
same numbers, measured faster on CPU by ``benchmarks/bench_throughput.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from zoo_core import ZooError, ZooModel
from zoo_images.gan import (
    CRITIC_NORMS,
    Critic,
    Generator,
    LatentGenerator,
    dcgan_widths,
    default_max_channels,
    keras_init_,
)

KERNEL = 5


@dataclass
class GANQPConfig:
    img_size: int = 128  # a power of two >= 16
    channels: int = 3  # 1 (MNIST) or 3 (RGB)
    z_dim: int = 128
    max_channels: int | None = None  # None: default_max_channels(img_size)
    f_size: int = 4  # side of G's first feature map (and of D's last)
    critic_norm: str = "batch"  # "batch" (GAN-QP, SGAN), "layer" (WGAN-GP), "none"
    channels_last: bool = True  # NHWC weights (and the step feeds NHWC images); False: PyTorch's default


class GANQP(LatentGenerator, ZooModel):
    """G and D of GAN-QP. ``forward(z)`` is G(z); ``critic(x)`` is D(x); ``sample(n)`` draws G(z), z ~ N(0, I)."""

    config_class = GANQPConfig
    architecture = "ganqp"

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        d_widths, g_widths = self.check_config(c)
        self.num_layers = len(g_widths)  # log2(img_size) - 3 for f_size 4
        self.G = Generator(c.z_dim, c.channels, self.max_channels, g_widths, c.f_size, kernel=KERNEL,
                           project_norm="unit")
        self.D = Critic(c.channels, d_widths, c.f_size, c.critic_norm, kernel=KERNEL, bias=False)
        keras_init_(self)
        self._use_layout()

    def _use_layout(self) -> None:
        if self.config.channels_last:
            self.to(memory_format=torch.channels_last)

    def init_non_persistent_buffers(self) -> None:
        """After a load: the assigned tensors come in the file's (contiguous) layout; use the config's."""
        self._use_layout()

    @property
    def max_channels(self) -> int:
        return self.config.max_channels or default_max_channels(self.config.img_size)

    @staticmethod
    def check_config(c: GANQPConfig) -> tuple[list[int], list[int]]:
        """Refuse a config the scripts' layout cannot build; return (D's widths, G's widths)."""
        if c.channels not in (1, 3):
            raise ZooError(f"channels must be 1 or 3, got {c.channels!r}", where="ganqp config")
        if c.critic_norm not in CRITIC_NORMS:
            raise ZooError(f"unknown critic_norm {c.critic_norm!r}", where="ganqp config",
                           hint=f"use one of {', '.join(CRITIC_NORMS)}")
        return dcgan_widths(c.img_size, c.f_size, c.max_channels, where="ganqp config")

    @property
    def widths(self) -> dict[str, list[int]]:
        """Output channels of D's convolutions and of G's stages (the last one is ``channels``)."""
        d = [m.out_channels for m in self.D.features if isinstance(m, nn.Conv2d)]
        g = [m.out_channels for m in self.G.stages if isinstance(m, nn.ConvTranspose2d)]
        return {"D": d, "G": [self.G.project.out_features, *g]}

    def forward(self, z):  # z: (B, z_dim) -> (B, channels, S, S)
        return self.G(z)

    def critic(self, x):  # x: (B, channels, S, S) -> (B,)
        return self.D(x)

    def example_inputs(self, batch_size: int = 2):
        return (torch.randn(batch_size, self.config.z_dim),)
