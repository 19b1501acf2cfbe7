"""LeNet: a small MNIST classifier whose penultimate layer is the feature space of LeNet-FID and KID.

Bińkowski et al. ("Demystifying MMD GANs", ICLR 2018) score MNIST generators with a LeNet trained on
MNIST in place of Inception. This one, for (1, 28, 28) images in [-1, 1]:

    x (B, 1, 28, 28)
    -> Conv 5x5, conv1 channels, ReLU, MaxPool 2   (B, conv1, 12, 12)
    -> Conv 5x5, conv2 channels, ReLU, MaxPool 2   (B, conv2, 4, 4)
    -> flatten -> Linear(conv2 * 16, hidden), ReLU  (B, hidden)   <- ``features``: the FID feature space
    -> Dropout -> Linear(hidden, classes)          (B, classes)  logits
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zoo_core import ZooModel


@dataclass
class LeNetConfig:
    """Hyper-parameters of the LeNet; the defaults are the shipped lenet-mnist model."""

    in_channels: int = 1
    image_size: int = 28
    conv1: int = 20  # Caffe's LeNet widths (20, 50); a 128-unit penultimate layer instead of 500
    conv2: int = 50
    hidden: int = 128  # the feature dimension of LeNet-FID
    num_classes: int = 10
    dropout: float = 0.5

    def __post_init__(self):
        if (self.image_size - 4) % 2 or ((self.image_size - 4) // 2 - 4) % 2 or self.image_size < 16:
            raise ValueError(f"image_size {self.image_size} does not survive two (conv 5, pool 2) stages evenly")


class LeNet(ZooModel):
    """LeNet-style classifier; ``features(x)`` is the penultimate (post-ReLU) layer."""

    config_class = LeNetConfig
    architecture = "lenet"

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        self.conv1 = nn.Conv2d(c.in_channels, c.conv1, 5)
        self.conv2 = nn.Conv2d(c.conv1, c.conv2, 5)
        side = ((c.image_size - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(c.conv2 * side * side, c.hidden)
        self.dropout = nn.Dropout(c.dropout)
        self.fc2 = nn.Linear(c.hidden, c.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) in [-1, 1] -> (B, hidden) penultimate activations."""
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, conv1, (S-4)/2, ...)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # (B, conv2, side, side)
        return F.relu(self.fc1(h.flatten(1)))  # (B, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) -> (B, classes) logits."""
        return self.fc2(self.dropout(self.features(x)))

    def example_inputs(self, batch_size: int = 2):
        c = self.config
        return (torch.rand(batch_size, c.in_channels, c.image_size, c.image_size) * 2 - 1,)
