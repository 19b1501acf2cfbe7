"""O-GAN's encoder E and generator G (Su 2019, arXiv 1903.01931), as in the released Keras code.

``bojone/o-gan`` @ c7b3d08, ``o_gan_celeba.py``: the discriminator is an encoder E: x -> R^{z_dim}
whose average over the code is the critic's score, avg(E(x)); G is GAN-QP's generator. Both are
zoo-images' :mod:`zoo_images.gan` networks with O-GAN's choices::

    E: for i in 0..num_layers:  Conv2D(max // 2**(num_layers - i), k x k, s2, 'same', bias) [BN if i > 0]
                                -> LeakyReLU(0.2)
       Flatten -> Dense(z_dim, bias)                                      E(x): (B, z_dim)
    G: Dense(4*4*max) -> Reshape(4, 4, max) -> BN (per channel) -> ReLU
       for i in 0..num_layers-1: Conv2DTranspose(max // 2**(i + 1), k x k, s2) -> BN -> ReLU
       Conv2DTranspose(channels, k x k, s2) -> tanh                        G(z): (B, C, S, S)

All kernels N(0, 0.02), biases zero; BN momentum 0.01 (Keras 0.99), epsilon 1e-3. k = 5 (the
default script) or 4 with ``self_modulated`` (the ``sm_4x4`` script), whose G replaces every batch
norm by a self-modulated one: BN without centre and scale, then h (gamma(z) + 1) + beta(z).

Reconstruction (the script's ``sample_ae``): z = E(x), standardised per sample over its components
(population std), times 0.9, then G: x -> E -> N(.) * 0.9 -> G.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from zoo_core import ZooError, ZooModel
from zoo_images.gan import (
    Critic,
    Generator,
    LatentGenerator,
    check_kernel,
    dcgan_widths,
    default_max_channels,
    interpolation_latents,
    normal_init_,
)

RECONSTRUCTION_SCALE = 0.9  # the script's z_sample * 0.9


@dataclass
class OGANConfig:
    img_size: int = 128  # a power of two >= 16
    channels: int = 3  # 1 (MNIST) or 3 (RGB)
    z_dim: int = 128
    max_channels: int | None = None  # None: 8 * img_size, at most 2048 (the scripts' cap)
    f_size: int = 4  # side of G's first feature map (and of E's last)
    kernel: int = 5  # 5 (o_gan_celeba.py) or 4 (the sm_4x4 scripts)
    self_modulated: bool = False  # G's batch norms modulated by z (the sm_4x4 scripts)


def standardize(z: torch.Tensor, scale: float = RECONSTRUCTION_SCALE, eps: float = 1e-8) -> torch.Tensor:
    """Per sample over the code: (z - mean) / std * scale, the population std as numpy's; (B, z_dim)."""
    mean = z.mean(dim=1, keepdim=True)
    std = z.std(dim=1, keepdim=True, unbiased=False)
    return (z - mean) / (std + eps) * scale


class OGAN(LatentGenerator, ZooModel):
    """E and G of O-GAN. ``forward(z)`` is G(z); ``encode(x)`` is E(x); ``critic(x)`` is avg(E(x));
    ``noise(n)`` draws z ~ N(0, I) and ``sample(n)`` G(z).

    Call ``eval()`` before sampling, encoding or reconstructing (the batch norms' running statistics).
    """

    config_class = OGANConfig
    architecture = "ogan"

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        d_widths, g_widths = self.check_config(c)
        self.num_layers = len(g_widths)
        top = c.max_channels or default_max_channels(c.img_size)
        self.E = Critic(c.channels, d_widths, c.f_size, "batch", kernel=c.kernel, bias=True, out_features=c.z_dim)
        self.G = Generator(c.z_dim, c.channels, top, g_widths, c.f_size, kernel=c.kernel, project_norm="channel",
                           self_modulated=c.self_modulated)
        normal_init_(self, 0.02)

    @staticmethod
    def check_config(c: OGANConfig) -> tuple[list[int], list[int]]:
        """Refuse a config the scripts' layout cannot build; return (E's widths, G's widths)."""
        where = "ogan config"
        if c.channels not in (1, 3):
            raise ZooError(f"channels must be 1 or 3, got {c.channels!r}", where=where)
        if not isinstance(c.z_dim, int) or isinstance(c.z_dim, bool) or c.z_dim < 3:
            # avg, std and the standardised code are independent only from 3 components on (the paper)
            raise ZooError(f"z_dim must be an integer >= 3, got {c.z_dim!r}", where=where, hint="the scripts use 128")
        check_kernel(c.kernel, where)
        return dcgan_widths(c.img_size, c.f_size, c.max_channels, where=where)

    @property
    def widths(self) -> dict[str, list[int]]:
        """Output channels of E's convolutions and Dense, and of G's Dense and stages."""
        e = [m.out_channels for m in self.E.features if isinstance(m, nn.Conv2d)]
        g = [m.out_channels for m in self.G.stages if isinstance(m, nn.ConvTranspose2d)]
        return {"E": [*e, self.E.score.out_features], "G": [self.G.project.out_features, *g]}

    # -- the two networks ---------------------------------------------------------------------------

    def forward(self, z):  # z: (B, z_dim) -> (B, channels, S, S)
        return self.G(z)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """E(x): images (B, C, S, S) in [-1, 1] -> codes (B, z_dim), as E outputs them (not standardised)."""
        return self.E(x)

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """The critic's score avg(E(x)), (B,): low for real images (the loss's t1 pushes it down)."""
        return self.E(x).mean(dim=1)

    # -- what users do with it --------------------------------------------------------------------------

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, scale: float = RECONSTRUCTION_SCALE) -> torch.Tensor:
        """G(standardize(E(x)) * scale): images (B, C, S, S) -> their reconstructions, same shape."""
        return self.G(standardize(self.E(x), scale))

    @torch.no_grad()
    def interpolate(self, x0: torch.Tensor, x1: torch.Tensor, steps: int,
                    scale: float = RECONSTRUCTION_SCALE) -> torch.Tensor:
        """Images between x0 and x1 (each (B, C, S, S)) through their standardised codes.

        For each pair, z_t = N(E(x0)) + t (N(E(x1)) - N(E(x0))) at t = 0, 1/(steps - 1), ..., 1, then G:
        (B * steps, C, S, S), pair by pair (the first and last of each run are the reconstructions).
        """
        if steps < 2:
            raise ZooError(f"interpolation needs at least 2 steps, got {steps}")
        z0, z1 = standardize(self.E(x0), scale), standardize(self.E(x1), scale)  # (B, z_dim)
        return self.G(interpolation_latents(z0, z1, steps))  # (B * steps, C, S, S)

    def example_inputs(self, batch_size: int = 2):
        return (torch.randn(batch_size, self.config.z_dim),)
