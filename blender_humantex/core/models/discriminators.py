"""pix2pixHD's conditional multi-scale PatchGAN, beside the generators (SPADE's models/networks layout).

The trainer owns the discriminator and its optimiser; core.losses.RefinerLoss only scores through it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchDiscriminator(nn.Module):
    """pix2pixHD NLayerDiscriminator with getIntermFeat: returns every block's output (the last is the patch score)."""

    def __init__(self, in_ch: int, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        blocks = [nn.Sequential(nn.Conv2d(in_ch, ndf, 4, 2, 2), nn.LeakyReLU(0.2, True))]
        ch = ndf
        for n in range(1, n_layers + 1):
            prev, ch = ch, min(ch * 2, 512)
            stride = 2 if n < n_layers else 1
            blocks.append(
                nn.Sequential(nn.Conv2d(prev, ch, 4, stride, 2), nn.InstanceNorm2d(ch), nn.LeakyReLU(0.2, True))
            )
        blocks.append(nn.Sequential(nn.Conv2d(ch, 1, 4, 1, 2)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD: `num_d` PatchGANs on the image at 1, 1/2, 1/4 ... scale. Returns a list (per scale) of feature lists."""

    def __init__(self, in_ch: int, ndf: int = 64, n_layers: int = 3, num_d: int = 2):
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(in_ch, ndf, n_layers) for _ in range(num_d))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outputs = []
        for i, disc in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(disc(x))
        return outputs


def define_D(loss_config, condition_channels: int = 4) -> MultiscaleDiscriminator:
    """The discriminator a loss config asks for: it sees (condition, texture), condition_channels + 3."""
    return MultiscaleDiscriminator(condition_channels + 3, loss_config.ndf, loss_config.n_layers_d, loss_config.num_d)
