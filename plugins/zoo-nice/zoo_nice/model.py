"""NICE: Non-linear Independent Components Estimation (Dinh, Krueger, Bengio, arXiv 1410.8516).

A flow f maps data x in R^D to a latent h = f(x) with a factorised prior p_H, and the
change of variables gives the exact log-likelihood (paper eq. 1 and 3):

    log p_X(x) = sum_d log p_Hd(f_d(x)) + log |det df(x)/dx|

f is a stack of additive coupling layers (paper eq. 5, 6), each of which splits its input
into two halves (I1, I2) and shifts one half by a function m of the other:

    y_I1 = x_I1                       x_I1 = y_I1
    y_I2 = x_I2 + m(x_I1)             x_I2 = y_I2 - m(y_I1)      (exact inverse)

The Jacobian of a coupling layer is unit triangular, so its log-determinant is 0; the only
volume change comes from the final diagonal scaling layer (paper section 3.3):

    h = exp(s) * y,      log |det| = sum_d s_d

Priors (paper section 3.4): the standard logistic, log p(h_d) = -(softplus(h_d) + softplus(-h_d)),
or the standard Gaussian, log p(h_d) = -h_d^2 / 2 - log(2 pi) / 2.

Two configurations of the same model:
- the paper's MNIST model (default): 4 couplings alternating the even/odd halves, m = 5 hidden
  ReLU layers of 1000 units with a linear output, logistic prior;
- Su Jianlin's variant (kexue.fm/archives/5776; ``NICEConfig.su()``): before each coupling the
  vector is reversed, then split even/odd; the coupling subtracts m(x_I1), m ends in a ReLU,
  and the prior is Gaussian.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zoo_core import ZooModel

PRIORS = ("logistic", "gaussian")
PARTITIONS = ("alternate", "reverse-shuffle")
COUPLING_OUTPUTS = ("linear", "relu")


@dataclass
class NICEConfig:
    """Hyper-parameters of a NICE model. Defaults are the paper's MNIST model."""

    dim: int = 784  # D, the number of pixels; must be even
    num_couplings: int = 4
    hidden: int = 1000  # width of each hidden layer of m
    hidden_layers: int = 5  # number of hidden ReLU layers of m
    prior: str = "logistic"  # "logistic" (paper) | "gaussian" (Su)
    partition: str = "alternate"  # "alternate" (paper: even/odd, swapped each layer) | "reverse-shuffle" (Su)
    coupling_output: str = "linear"  # output layer of m: "linear" (paper) | "relu" (Su)
    coupling_sign: int = 1  # +1: y2 = x2 + m(x1) (paper); -1: y2 = x2 - m(x1) (Su)

    def __post_init__(self):
        if self.dim % 2:
            raise ValueError(f"NICE needs an even dim to split into two halves, got {self.dim}")
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {self.prior!r}")
        if self.partition not in PARTITIONS:
            raise ValueError(f"partition must be one of {PARTITIONS}, got {self.partition!r}")
        if self.coupling_output not in COUPLING_OUTPUTS:
            raise ValueError(f"coupling_output must be one of {COUPLING_OUTPUTS}, got {self.coupling_output!r}")
        if self.coupling_sign not in (1, -1):
            raise ValueError(f"coupling_sign must be +1 or -1, got {self.coupling_sign!r}")

    @classmethod
    def su(cls, **overrides) -> NICEConfig:
        """Su Jianlin's Keras reference (bojone/flow nice.py) as a config."""
        values = dict(prior="gaussian", partition="reverse-shuffle", coupling_output="relu", coupling_sign=-1)
        values.update(overrides)
        return cls(**values)


class CouplingMLP(nn.Sequential):
    """m: R^{D/2} -> R^{D/2}, ``hidden_layers`` ReLU layers of ``hidden`` units, then a linear (or ReLU) output."""

    def __init__(self, config: NICEConfig):
        half = config.dim // 2
        layers: list[nn.Module] = []
        width = half
        for _ in range(config.hidden_layers):
            layers += [nn.Linear(width, config.hidden), nn.ReLU(inplace=True)]
            width = config.hidden
        layers.append(nn.Linear(width, half))
        if config.coupling_output == "relu":
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class AdditiveCoupling(nn.Module):
    """One additive coupling layer (paper eq. 5, 6) on a fixed partition of the D coordinates.

    The input x (B, D) is viewed as pairs (B, D/2, 2); the first coordinate of each pair goes
    to x_I1 (conditioning half), the second to x_I2 (shifted half).
    - ``"alternate"`` (paper): odd layers swap the roles, so the halves alternate.
    - ``"reverse-shuffle"`` (Su): the layer first reverses the D coordinates and does not undo
      it; the output stays in reversed order, so the next layer's reversal restores it and
      the conditioning half alternates between odd and even positions (D is even). After an
      even number of layers the coordinates are back in pixel order.
    """

    def __init__(self, config: NICEConfig, k: int):
        super().__init__()
        self.m = CouplingMLP(config)
        self.sign = float(config.coupling_sign)
        self.reverse = config.partition == "reverse-shuffle"
        self.swap = config.partition == "alternate" and k % 2 == 1

    def _split(self, x):  # x (B, D) -> x1, x2 each (B, D/2)
        a, b = x.reshape(x.shape[0], -1, 2).unbind(-1)  # even, odd coordinates (views when x is contiguous)
        return (b, a) if self.swap else (a, b)

    def _merge(self, y1, y2):  # y1, y2 (B, D/2) -> y (B, D), re-interleaved
        a, b = (y2, y1) if self.swap else (y1, y2)
        return torch.stack((a, b), dim=-1).flatten(1)

    def forward(self, x):
        """Data direction: y_I1 = x_I1, y_I2 = x_I2 + sign * m(x_I1)."""
        if self.reverse:
            x = x.flip(1)
        x1, x2 = self._split(x)
        y2 = torch.add(x2, self.m(x1), alpha=self.sign)  # (B, D/2)
        return self._merge(x1, y2)

    def inverse(self, y):
        """Latent direction: x_I1 = y_I1, x_I2 = y_I2 - sign * m(y_I1)."""
        y1, y2 = self._split(y)
        x = self._merge(y1, torch.add(y2, self.m(y1), alpha=-self.sign))
        return x.flip(1) if self.reverse else x


class NICE(ZooModel):
    """The NICE flow: ``num_couplings`` additive couplings, a diagonal scaling exp(s), a factorised prior."""

    config_class = NICEConfig
    architecture = "nice"

    def __init__(self, config: NICEConfig):
        super().__init__(config)
        config = self.config
        self.couplings = nn.ModuleList(AdditiveCoupling(config, k) for k in range(config.num_couplings))
        # Paper section 3.3: a diagonal scaling S = exp(s) as the last layer; s = 0 starts at the identity.
        self.s = nn.Parameter(torch.zeros(config.dim))  # (D,)

    def example_inputs(self, batch_size: int = 2) -> tuple:
        """A batch x (B, D) of points in [0, 1]^D, the data range (for the contract tests)."""
        return (torch.rand(batch_size, self.config.dim, device=self.s.device, dtype=self.s.dtype),)

    # --- the flow ----------------------------------------------------------------------

    def forward(self, x):
        """Data to latent: x (B, D) -> (h (B, D), log|det dh/dx| (B,))."""
        for layer in self.couplings:
            x = layer(x)  # volume preserving: log|det| = 0
        h = x * torch.exp(self.s)  # (B, D)
        log_det = self.s.sum().expand(h.shape[0])  # (B,), the same for every example
        return h, log_det

    def inverse(self, h):
        """Latent to data, exactly: h (B, D) -> x (B, D)."""
        x = h * torch.exp(-self.s)
        for layer in reversed(self.couplings):
            x = layer.inverse(x)
        return x

    # --- densities ---------------------------------------------------------------------

    def prior_log_prob(self, h):
        """sum_d log p_H(h_d) for h (B, D) -> (B,), in nats."""
        if self.config.prior == "logistic":
            # log of the standard logistic density e^{-h} / (1 + e^{-h})^2
            return -(F.softplus(h) + F.softplus(-h)).sum(-1)
        return -0.5 * (h * h).sum(-1) - 0.5 * h.shape[-1] * math.log(2 * math.pi)

    def log_prob(self, x):
        """log p_X(x) per example in nats: x (B, D) -> (B,). Paper eq. 3."""
        h, log_det = self(x)
        return self.prior_log_prob(h) + log_det

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None):
        """Draw n samples x (n, D): h ~ prior scaled by ``temperature``, x = f^{-1}(h).

        Temperature < 1 (Su uses 0.75 with the Gaussian prior) trades diversity for cleaner
        digits. Images are not clipped; clamp to [0, 1] to display them.
        """
        device, dtype = self.s.device, self.s.dtype
        shape = (n, self.config.dim)
        if self.config.prior == "logistic":
            # inverse CDF of the standard logistic: h = log u - log(1 - u)
            u = torch.rand(shape, generator=generator, device=device, dtype=dtype).clamp_(1e-6, 1 - 1e-6)
            h = torch.log(u) - torch.log1p(-u)
        else:
            h = torch.randn(shape, generator=generator, device=device, dtype=dtype)
        return self.inverse(h * temperature)
