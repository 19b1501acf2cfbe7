"""The DCGAN-style generator and critic of Su Jianlin's GAN scripts, shared by GAN-QP and O-GAN.

``bojone/gan-qp`` (``128/gan_qp_l2.py`` and its 256/512 copies) and ``bojone/o-gan``
(``o_gan_celeba.py`` and its ``sm_4x4`` variant) build the same two networks at any power-of-two size::

    num_layers       = log2(img_dim) - 3              # 128 px: 4
    max_num_channels = img_dim * 8                     # 128 px: 1024; 256 px: 2048; 512 px: img_dim * 4 = 2048
    f_size           = img_dim // 2**(num_layers + 1)  # always 4

    D: for i in 0..num_layers:  Conv2D(max_num_channels // 2**(num_layers - i), k x k, stride 2, 'same')
                                [norm if i > 0] -> LeakyReLU(0.2)
       Flatten -> Dense(out)        GAN-QP: out 1, no biases;  O-GAN's encoder E: out z_dim, biases
    G: Dense(f_size**2 * max_num_channels) -> norm -> ReLU -> Reshape(f_size, f_size, max_num_channels)
       for i in 0..num_layers-1: Conv2DTranspose(max_num_channels // 2**(i + 1), k x k, stride 2, 'same')
                                 -> norm -> ReLU
       Conv2DTranspose(channels, k x k, stride 2, 'same') -> tanh

The scripts differ in three places, which are options here:

- G's first normalisation: GAN-QP normalises the Dense output per unit (``project_norm="unit"``,
  BatchNormalization before the Reshape), O-GAN per channel after the Reshape (``"channel"``);
- the kernel: 5 x 5 everywhere, 4 x 4 in O-GAN's ``sm_4x4`` scripts;
- G's normalisation: batch norm, or O-GAN's self-modulated batch norm (:class:`SelfModulatedBatchNorm`:
  BN without centre and scale, then h (gamma(z) + 1) + beta(z), gamma and beta two-layer ReLU MLPs
  of the raw z, one pair per normalisation).

Keras defaults, mirrored: BatchNormalization(momentum 0.99, epsilon 1e-3) is PyTorch momentum 0.01,
eps 1e-3; stride-2 'same' is Conv2d(k, 2, padding (k - 1) // 2) and ConvTranspose2d(k, 2, padding
(k - 1) // 2, output_padding k % 2). (TensorFlow's 'same' pads 1 pixel before and 2 after for a 5 x 5
window at stride 2, PyTorch 2 and 2: the feature maps are the same size, the windows sit one pixel
apart. No Keras weights exist to port, so the layers use PyTorch's symmetric padding.)
Initialisation: :func:`keras_init_` (glorot-uniform, GAN-QP) or :func:`normal_init_` (N(0, 0.02), O-GAN).

Under torchrun the batch normalisations compute their batch statistics over the whole global batch
(all processes), so N processes train exactly like one: see :class:`BatchNorm2d`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from zoo_core import ZooError

BN_MOMENTUM = 0.01  # Keras momentum 0.99
BN_EPS = 1e-3  # Keras epsilon
LEAK = 0.2
CRITIC_NORMS = ("batch", "layer", "none")
PROJECT_NORMS = ("unit", "channel")


def default_max_channels(img_size: int) -> int:
    """The scripts' cap: 8 * img_size (128 px: 1024, 256 px: 2048), at most 2048 (512 px: 4 * 512)."""
    return min(8 * img_size, 2048)


def _power_of_two(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n > 0 and n & (n - 1) == 0


def dcgan_widths(img_size: int, f_size: int = 4, max_channels: int | None = None, *,
                 where: str = "model config") -> tuple[list[int], list[int]]:
    """(D's convolution widths, G's transposed-convolution widths before the last), after checking the sizes.

    128 px: D [64, 128, 256, 512, 1024], G [512, 256, 128, 64]; 32 px: D [64, 128, 256], G [128, 64].
    """
    if not _power_of_two(img_size) or img_size < 16:
        raise ZooError(f"img_size {img_size!r} is not a power of two >= 16", where=where,
                       hint="use 16, 32, 64, 128, 256, 512 or 1024")
    if not _power_of_two(f_size) or img_size // f_size < 4:
        raise ZooError(f"f_size {f_size!r} must be a power of two at most img_size / 4", where=where,
                       hint="the scripts use f_size 4")
    num_layers = int(math.log2(img_size // f_size)) - 1  # log2(img_size) - 3 for f_size 4
    top = max_channels or default_max_channels(img_size)
    if not isinstance(top, int) or top < 2 ** num_layers or top % 2 ** num_layers:
        raise ZooError(f"max_channels {top!r} does not halve {num_layers} times", where=where,
                       hint=f"use a multiple of {2 ** num_layers}")
    d = [top // 2 ** (num_layers - i) for i in range(num_layers + 1)]
    g = [top // 2 ** (i + 1) for i in range(num_layers)]
    return d, g


def check_kernel(kernel, where: str = "model config") -> int:
    """The convolution size: 4 or 5 (the scripts' two), or another size >= 2 that stride-2 'same' allows."""
    if not isinstance(kernel, int) or isinstance(kernel, bool) or kernel < 2:
        raise ZooError(f"kernel {kernel!r} must be an integer >= 2", where=where, hint="the scripts use 5, or 4")
    return kernel


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

    def __init__(self, features: int, affine: bool = True):
        super().__init__(features, eps=BN_EPS, momentum=BN_MOMENTUM, affine=affine)

    def forward(self, x):
        group = _sync_group() if self.training else None
        return super().forward(x) if group is None else _global_batch_norm(self, x, group)


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d (Keras momentum and epsilon) whose training statistics span every torchrun process.

    (torch's SyncBatchNorm does this on GPUs only; this one also works on CPU over gloo.)
    """

    def __init__(self, features: int, affine: bool = True):
        super().__init__(features, eps=BN_EPS, momentum=BN_MOMENTUM, affine=affine)

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


class SelfModulatedBatchNorm(nn.Module):
    """O-GAN's self-modulated batch norm (``sm_4x4`` scripts): h = BN(x) without centre and scale, then
    h (gamma + 1) + beta, with beta = Dense(C)(ReLU(Dense(hidden)(z))) and gamma likewise (separate heads).

    Call with ``(x, z)``: x (B, C, ...) and the raw latent z (B, z_dim). The heads' Dense layers keep
    Keras's glorot-uniform default, as in the script.
    """

    def __init__(self, features: int, z_dim: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or z_dim  # the script: num_hidden = z_dim
        self.norm = BatchNorm2d(features, affine=False)
        self.beta = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, features))
        self.gamma = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, features))
        for m in (*self.beta, *self.gamma):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x, z):
        shape = (x.shape[0], x.shape[1]) + (1,) * (x.dim() - 2)
        h = self.norm(x)  # (B, C, H, W)
        return h * (self.gamma(z).view(shape) + 1.0) + self.beta(z).view(shape)


def critic_norm_layer(kind: str, features: int) -> nn.Module:
    """D's normalisation after convolutions 2..n: batch (the scripts), layer (WGAN-GP's critic) or none."""
    if kind == "batch":
        return BatchNorm2d(features)
    if kind == "layer":
        return LayerNorm2d(features)
    if kind == "none":
        return nn.Identity()
    raise ZooError(f"unknown critic_norm {kind!r}", hint=f"use one of {', '.join(CRITIC_NORMS)}")


# --- the two networks ----------------------------------------------------------------------------------


def _same(kernel: int) -> dict:
    """Conv2d / ConvTranspose2d padding for stride-2 'same': S -> S/2 and s -> 2s."""
    return {"padding": (kernel - 1) // 2}


class Critic(nn.Module):
    """D: x (B, C, S, S) in [-1, 1] -> a score (B,) (``out_features`` None) or a code (B, out_features)."""

    def __init__(self, channels: int, widths: list[int], f_size: int, norm: str = "batch", *, kernel: int = 5,
                 bias: bool = False, out_features: int | None = None):
        super().__init__()
        layers, c_in = [], channels
        for i, c in enumerate(widths):
            layers.append(nn.Conv2d(c_in, c, kernel, stride=2, bias=bias, **_same(kernel)))  # S -> S/2
            if i > 0:
                layers.append(critic_norm_layer(norm, c))
            layers.append(nn.LeakyReLU(LEAK))
            c_in = c
        self.features = nn.Sequential(*layers)  # (B, C, S, S) -> (B, widths[-1], f, f)
        self.squeeze = out_features is None
        self.score = nn.Linear(widths[-1] * f_size * f_size, out_features or 1, bias=bias)

    def forward(self, x):
        h = self.features(x).flatten(1)  # (B, widths[-1] * f * f)
        out = self.score(h)  # (B, out_features)
        return out.squeeze(-1) if self.squeeze else out


class Generator(nn.Module):
    """G: z (B, z_dim) -> x (B, channels, S, S) in [-1, 1].

    ``project_norm``: "unit" normalises the Dense output per unit (GAN-QP), "channel" per channel of
    the reshaped map (O-GAN). ``self_modulated``: every normalisation is a :class:`SelfModulatedBatchNorm`
    of z (O-GAN's sm variant; it implies "channel").
    """

    def __init__(self, z_dim: int, channels: int, top: int, widths: list[int], f_size: int, *, kernel: int = 5,
                 project_norm: str = "unit", self_modulated: bool = False):
        super().__init__()
        if project_norm not in PROJECT_NORMS:
            raise ZooError(f"unknown project_norm {project_norm!r}", hint=f"use one of {', '.join(PROJECT_NORMS)}")
        self.top, self.f_size, self.self_modulated = top, f_size, self_modulated
        pad = {**_same(kernel), "output_padding": kernel % 2}
        self.project = nn.Linear(z_dim, f_size * f_size * top)  # (B, z) -> (B, f*f*top)
        if self_modulated:
            self.project_norm = SelfModulatedBatchNorm(top, z_dim)
        elif project_norm == "unit":
            self.project_norm = BatchNorm1d(f_size * f_size * top)  # Keras BN on the Dense output: per unit
        else:
            self.project_norm = BatchNorm2d(top)
        self.per_unit = project_norm == "unit" and not self_modulated
        stages, c_in = [], top
        for c in widths:
            norm = SelfModulatedBatchNorm(c, z_dim) if self_modulated else BatchNorm2d(c)
            stages += [nn.ConvTranspose2d(c_in, c, kernel, stride=2, **pad), norm, nn.ReLU()]  # s -> 2s
            c_in = c
        stages += [nn.ConvTranspose2d(c_in, channels, kernel, stride=2, **pad), nn.Tanh()]
        self.stages = nn.Sequential(*stages)

    def forward(self, z):
        h = self.project(z)  # (B, f*f*top)
        if self.per_unit:
            h = self.project_norm(h)
        h = h.view(-1, self.top, self.f_size, self.f_size)  # (B, top, f, f)
        if not self.per_unit:
            h = self.project_norm(h, z) if self.self_modulated else self.project_norm(h)
        h = torch.relu(h)
        if not self.self_modulated:
            return self.stages(h)  # (B, channels, S, S)
        for layer in self.stages:
            h = layer(h, z) if isinstance(layer, SelfModulatedBatchNorm) else layer(h)
        return h


class LatentGenerator:
    """For a model whose generator ``self.G`` maps z ~ N(0, I) of ``config.z_dim`` to images (GAN-QP, O-GAN)."""

    def noise(self, n: int, *, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """z ~ N(0, I), (n, z_dim), drawn on the CPU (the same numbers on any device) and moved to ``device``."""
        device = device if device is not None else next(self.parameters()).device
        return torch.randn(n, self.config.z_dim, generator=generator).to(device)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """n images G(z), (n, channels, S, S) in [-1, 1]; call ``eval()`` first for the running statistics."""
        return self.G(self.noise(n, generator=generator, device=device))


def interpolation_latents(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """(rows * steps, z_dim): for each row, z0 + t (z1 - z0) at t = 0, 1/(steps-1), ..., 1."""
    t = torch.linspace(0.0, 1.0, steps, dtype=z0.dtype, device=z0.device).view(1, steps, 1)  # (1, steps, 1)
    z = z0[:, None, :] + t * (z1 - z0)[:, None, :]  # (rows, steps, z_dim)
    return z.reshape(-1, z0.shape[1])


def keras_init_(module: nn.Module) -> None:
    """Keras defaults: glorot-uniform kernels, zero biases, BN/LN scale 1 and shift 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            # fan_in + fan_out = k*k*(c_in + c_out) for convolutions either way round, as in Keras
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def normal_init_(module: nn.Module, std: float = 0.02) -> None:
    """O-GAN's RandomNormal(0, 0.02) kernels and zero biases, for every convolution and Dense of ``module``
    except the self-modulation heads (which keep Keras's glorot-uniform default, as in the script)."""
    heads = {id(m) for smbn in module.modules() if isinstance(smbn, SelfModulatedBatchNorm)
             for m in smbn.modules()}
    for m in module.modules():
        if id(m) in heads:
            continue
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

