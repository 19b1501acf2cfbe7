"""GAN-QP's generator G and critic D (Su 2018, arXiv 1811.07296), as in the original Keras scripts.

``bojone/gan-qp`` @ f81ec73, ``128/gan_qp_l2.py`` (and its 256 and 512 copies), at any power-of-two size::

    num_layers       = log2(img_dim) - 3              # 128 px: 4
    max_num_channels = img_dim * 8                     # 128 px: 1024; 256 px: 2048; 512 px: img_dim * 4 = 2048
    f_size           = img_dim // 2**(num_layers + 1)  # always 4

    D: for i in 0..num_layers:  Conv2D(max_num_channels // 2**(num_layers - i), 5x5, stride 2, 'same', no bias)
                                [BatchNorm if i > 0] -> LeakyReLU(0.2)
       Flatten -> Dense(1, no bias)
    G: Dense(f_size**2 * max_num_channels) -> BatchNorm -> ReLU -> Reshape(f_size, f_size, max_num_channels)
       for i in 0..num_layers-1: Conv2DTranspose(max_num_channels // 2**(i + 1), 5x5, stride 2, 'same')
                                 -> BatchNorm -> ReLU
       Conv2DTranspose(channels, 5x5, stride 2, 'same') -> tanh

So at 128 px D has 5 convolutions (64, 128, 256, 512, 1024) and G is Dense(4*4*1024), then 512, 256,
128, 64, then 3 channels; at 256 px D has 6 (64 -> 2048); at 512 px 7 (32 -> 2048). The 32 px MNIST
model (max channels 8*32 = 256) has D 64, 128, 256 and G Dense(4*4*256), then 128, 64, then 1.

Keras defaults, mirrored: glorot-uniform kernels, zero biases; BatchNormalization(momentum 0.99,
epsilon 1e-3) is PyTorch momentum 0.01, eps 1e-3; Conv2DTranspose(5, stride 2, 'same') is
ConvTranspose2d(5, stride 2, padding 2, output_padding 1). (TensorFlow's 'same' pads 1 pixel before
and 2 after at stride 2, PyTorch's padding=2 pads 2 and 2: the feature maps are the same size, the
5x5 windows sit one pixel apart. No Keras weights exist to port, so the layers use PyTorch's
symmetric padding.)

``critic_norm`` replaces D's batch normalisation for the baselines: ``"layer"`` (per-sample over
C, H, W with a per-channel scale and shift, WGAN-GP's own choice for DCGAN critics) or ``"none"``.

Under torchrun the batch normalisations compute their batch statistics over the whole global batch
(all processes), so N processes train exactly like one: see :class:`BatchNorm2d`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from zoo_core import ZooError, ZooModel

BN_MOMENTUM = 0.01  # Keras momentum 0.99
BN_EPS = 1e-3  # Keras epsilon
LEAK = 0.2
KERNEL = 5
CRITIC_NORMS = ("batch", "layer", "none")


def default_max_channels(img_size: int) -> int:
    """The scripts' cap: 8 * img_size (128 px: 1024, 256 px: 2048), at most 2048 (512 px: 4 * 512)."""
    return min(8 * img_size, 2048)


@dataclass
class GANQPConfig:
    img_size: int = 128  # a power of two >= 16
    channels: int = 3  # 1 (MNIST) or 3 (RGB)
    z_dim: int = 128
    max_channels: int | None = None  # None: default_max_channels(img_size)
    f_size: int = 4  # side of G's first feature map (and of D's last)
    critic_norm: str = "batch"  # "batch" (GAN-QP, SGAN), "layer" (WGAN-GP), "none"


# --- normalisation layers --------------------------------------------------------------------------------


_SYNC_GROUPS: dict = {}


def _sync_group():
    """A process group of its own for the batch-norm statistics (None outside torchrun), made once per run."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    key = id(dist.group.WORLD)
    if key not in _SYNC_GROUPS:
        _SYNC_GROUPS.clear()
        _SYNC_GROUPS[key] = dist.new_group(backend=dist.get_backend())
    return _SYNC_GROUPS[key]


class _AllReduceSum(torch.autograd.Function):
    """Sum over the processes; the gradient of each process's input is the sum of every process's gradient."""

    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        y = x.clone()
        torch.distributed.all_reduce(y, group=group)
        return y

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        torch.distributed.all_reduce(grad, group=ctx.group)
        return grad, None


def all_reduce_sum(x: torch.Tensor, group) -> torch.Tensor:
    """Differentiable all-reduce (sum) over ``group``."""
    return _AllReduceSum.apply(x, group)


def _global_batch_norm(bn, x: torch.Tensor, group) -> torch.Tensor:
    """Batch norm with the statistics of the global batch: two differentiable all-reduces (sum, squares).

    The gradient flows through the all-reduce to every process's inputs, so DDP's averaged gradient
    equals one process's gradient on the whole batch. Running statistics as F.batch_norm keeps them:
    mean and unbiased variance, blended with ``momentum``.
    """
    dims = [0, *range(2, x.dim())]
    shape = [1, -1] + [1] * (x.dim() - 2)
    count = x.numel() // x.shape[1] * torch.distributed.get_world_size(group)
    mean = all_reduce_sum(x.sum(dims), group) / count  # (C,)
    xc = x - mean.view(shape)
    var = all_reduce_sum((xc * xc).sum(dims), group) / count  # (C,) biased, as in training-mode BN
    y = xc * torch.rsqrt(var + bn.eps).view(shape)
    if bn.affine:
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    if bn.track_running_stats:
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            bn.running_mean.lerp_(mean.detach(), bn.momentum)
            bn.running_var.lerp_(var.detach() * (count / max(count - 1, 1)), bn.momentum)
    return y


class BatchNorm1d(nn.BatchNorm1d):
    """nn.BatchNorm1d (Keras momentum and epsilon) whose training statistics span every torchrun process."""

    def __init__(self, features: int):
        super().__init__(features, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, x):
        group = _sync_group() if self.training else None
        return super().forward(x) if group is None else _global_batch_norm(self, x, group)


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d (Keras momentum and epsilon) whose training statistics span every torchrun process.

    (torch's SyncBatchNorm does this on GPUs only; this one also works on CPU over gloo.)
    """

    def __init__(self, features: int):
        super().__init__(features, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, x):
        group = _sync_group() if self.training else None
        return super().forward(x) if group is None else _global_batch_norm(self, x, group)


class LayerNorm2d(nn.Module):
    """Per-sample normalisation over (C, H, W) with a per-channel scale and shift (WGAN-GP's critic norm)."""

    def __init__(self, features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(features))
        self.bias = nn.Parameter(torch.zeros(features))

    def forward(self, x):  # (B, C, H, W)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        var = x.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def critic_norm_layer(kind: str, features: int) -> nn.Module:
    if kind == "batch":
        return BatchNorm2d(features)
    if kind == "layer":
        return LayerNorm2d(features)
    if kind == "none":
        return nn.Identity()
    raise ZooError(f"unknown critic_norm {kind!r}", hint=f"use one of {', '.join(CRITIC_NORMS)}")


# --- the two networks ----------------------------------------------------------------------------------


class Critic(nn.Module):
    """D (the paper's T): x (B, C, S, S) in [-1, 1] -> score (B,)."""

    def __init__(self, channels: int, widths: list[int], f_size: int, norm: str):
        super().__init__()
        layers, c_in = [], channels
        for i, c in enumerate(widths):
            layers.append(nn.Conv2d(c_in, c, KERNEL, stride=2, padding=KERNEL // 2, bias=False))  # S -> S/2
            if i > 0:
                layers.append(critic_norm_layer(norm, c))
            layers.append(nn.LeakyReLU(LEAK))
            c_in = c
        self.features = nn.Sequential(*layers)  # (B, C, S, S) -> (B, widths[-1], f, f)
        self.score = nn.Linear(widths[-1] * f_size * f_size, 1, bias=False)

    def forward(self, x):
        h = self.features(x).flatten(1)  # (B, widths[-1] * f * f)
        return self.score(h).squeeze(-1)  # (B,)


class Generator(nn.Module):
    """G: z (B, z_dim) -> x (B, channels, S, S) in [-1, 1]."""

    def __init__(self, z_dim: int, channels: int, top: int, widths: list[int], f_size: int):
        super().__init__()
        self.top, self.f_size = top, f_size
        self.project = nn.Linear(z_dim, f_size * f_size * top)  # (B, z) -> (B, f*f*top)
        self.project_norm = BatchNorm1d(f_size * f_size * top)  # Keras BN on the Dense output: per unit
        stages, c_in = [], top
        for c in widths:
            stages += [nn.ConvTranspose2d(c_in, c, KERNEL, stride=2, padding=2, output_padding=1),  # s -> 2s
                       BatchNorm2d(c), nn.ReLU()]
            c_in = c
        stages += [nn.ConvTranspose2d(c_in, channels, KERNEL, stride=2, padding=2, output_padding=1), nn.Tanh()]
        self.stages = nn.Sequential(*stages)

    def forward(self, z):
        h = torch.relu(self.project_norm(self.project(z)))  # (B, f*f*top)
        h = h.view(-1, self.top, self.f_size, self.f_size)  # (B, top, f, f)
        return self.stages(h)  # (B, channels, S, S)


def keras_init_(module: nn.Module) -> None:
    """Keras defaults: glorot-uniform kernels, zero biases, BN/LN scale 1 and shift 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            # fan_in + fan_out = k*k*(c_in + c_out) for convolutions either way round, as in Keras
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class GANQP(ZooModel):
    """G and D of GAN-QP. ``forward(z)`` is G(z); ``critic(x)`` is D(x); ``sample(n)`` draws G(z), z ~ N(0, I)."""

    config_class = GANQPConfig
    architecture = "ganqp"

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        self.check_config(c)
        self.num_layers = int(math.log2(c.img_size // c.f_size)) - 1  # log2(img_size) - 3 for f_size 4
        top = self.max_channels
        d_widths = [top // 2 ** (self.num_layers - i) for i in range(self.num_layers + 1)]
        g_widths = [top // 2 ** (i + 1) for i in range(self.num_layers)]
        self.G = Generator(c.z_dim, c.channels, top, g_widths, c.f_size)
        self.D = Critic(c.channels, d_widths, c.f_size, c.critic_norm)
        keras_init_(self)

    @property
    def max_channels(self) -> int:
        return self.config.max_channels or default_max_channels(self.config.img_size)

    @staticmethod
    def check_config(c: GANQPConfig) -> None:
        def power_of_two(n):
            return isinstance(n, int) and n > 0 and n & (n - 1) == 0

        if not power_of_two(c.img_size) or c.img_size < 16:
            raise ZooError(f"img_size {c.img_size!r} is not a power of two >= 16", where="ganqp config",
                           hint="use 16, 32, 64, 128, 256, 512 or 1024")
        if not power_of_two(c.f_size) or c.img_size // c.f_size < 4:
            raise ZooError(f"f_size {c.f_size!r} must be a power of two at most img_size / 4", where="ganqp config",
                           hint="the scripts use f_size 4")
        if c.channels not in (1, 3):
            raise ZooError(f"channels must be 1 or 3, got {c.channels!r}", where="ganqp config")
        if c.critic_norm not in CRITIC_NORMS:
            raise ZooError(f"unknown critic_norm {c.critic_norm!r}", where="ganqp config",
                           hint=f"use one of {', '.join(CRITIC_NORMS)}")
        layers = int(math.log2(c.img_size // c.f_size)) - 1
        top = c.max_channels or default_max_channels(c.img_size)
        if top % 2 ** layers:
            raise ZooError(f"max_channels {top} does not halve {layers} times", where="ganqp config",
                           hint=f"use a multiple of {2 ** layers}")

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

    def noise(self, n: int, *, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """z ~ N(0, I), (n, z_dim), drawn on the CPU (the same numbers on any device) and moved to ``device``."""
        device = device if device is not None else next(self.parameters()).device
        z = torch.randn(n, self.config.z_dim, generator=generator)
        return z.to(device)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """n images G(z), (n, channels, S, S) in [-1, 1]; call ``eval()`` first for the running statistics."""
        return self.G(self.noise(n, generator=generator, device=device))

    def use_critic_norm(self, kind: str) -> None:
        """Rebuild D's normalisation layers as ``kind`` (fresh, deterministic) and record it in the config."""
        if kind == self.config.critic_norm:
            return
        if kind not in CRITIC_NORMS:
            raise ZooError(f"unknown critic_norm {kind!r}", hint=f"use one of {', '.join(CRITIC_NORMS)}")
        device = next(self.D.parameters()).device
        layers = list(self.D.features)
        for i, m in enumerate(layers):
            if isinstance(m, (BatchNorm2d, LayerNorm2d, nn.Identity)):
                layers[i] = critic_norm_layer(kind, layers[i - 1].out_channels).to(device)
        self.D.features = nn.Sequential(*layers)
        self.config.critic_norm = kind

    def example_inputs(self, batch_size: int = 2):
        return (torch.randn(batch_size, self.config.z_dim),)
