"""A small ResNet of our own (no torchvision dependency): ``pipeline_opt.training.models.resnet:build``.

Convolutions, batch norm (running statistics in buffers), in-place ReLU, strided stages with projection shortcuts,
global average pooling and a linear classifier; ``blocks`` is the flat stack of residual blocks the planner
checkpoints.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

INPUTS = ("pixels=float32[32,3,64,64]", "labels=int64[32]<10")


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm; a 1×1 projection shortcut when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, widths: tuple = (32, 64, 128), depth: int = 2, classes: int = 10, channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU(inplace=True))
        blocks, cin = [], widths[0]
        for stage, width in enumerate(widths):
            for j in range(depth):
                blocks.append(BasicBlock(cin, width, 2 if stage and not j else 1))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(cin, classes)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(pixels))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def loss(self, batch: dict) -> torch.Tensor:
        return F.cross_entropy(self(batch["pixels"]).float(), batch["labels"].long())


def build(widths: tuple | list = (32, 64, 128), depth: int = 2, classes: int = 10, channels: int = 3) -> ResNet:
    return ResNet(tuple(widths), depth, classes, channels)
