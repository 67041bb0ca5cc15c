"""Tiny models for the trainer tests (importable as ``tinymodels:TinyConv`` from a config)."""

from __future__ import annotations

import time

import torch
from torch import nn


class TinyConv(nn.Module):
    """Two 3x3 convolutions and a 1x1 projection: any resolution, ~700 parameters."""

    def __init__(self, in_channels: int = 1, out_channels: int = 1, hidden: int = 8,
                 dropout: float = 0.0, sleep: float = 0.0):
        super().__init__()
        self.in_channels, self.out_channels, self.sleep = in_channels, out_channels, sleep
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1), nn.GELU(), nn.Dropout(dropout),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.GELU(),
            nn.Conv2d(hidden, out_channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sleep:
            time.sleep(self.sleep)
        return self.net(x)
