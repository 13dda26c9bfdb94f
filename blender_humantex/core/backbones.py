"""ImageNet feature stacks in plain torch (torchvision does not import here).

Each backbone reproduces torchvision's `features` module layer for layer, so torchvision
state dicts load unchanged, and returns the activations LPIPS (and our perceptual loss) taps:

- AlexNet: relu1..relu5 (64, 192, 384, 256, 256 channels).
- SqueezeNet 1.1: LPIPS's seven slices (64, 128, 256, 384, 384, 512, 512).
- VGG19: relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (pix2pixHD's VGGLoss taps); only used
  when the user supplies VGG19 weights, since they cannot be had here.

Weights are never random: `load_backbone` reads a file or raises a one-line WeightsError.
The files live in `<repo>/../shared/data/lpips_backbones` by default; override the folder with
the environment variable HUMANTEX_LPIPS_BACKBONES (or the `--lpips-backbones` CLI flags).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .errors import WeightsError

BACKBONE_FILES = {
    "alex": "alexnet_features_torchvision_from_lpips_torch2tf.npz",
    "squeeze": "squeezenet1_1_features_torchvision.pth",
}


def default_lpips_backbones() -> Path:
    env = os.environ.get("HUMANTEX_LPIPS_BACKBONES")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "data" / "lpips_backbones"


class AlexNetFeatures(nn.Module):
    """torchvision alexnet().features, tapped after each ReLU."""

    channels = (64, 192, 384, 256, 256)

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.taps = (1, 4, 7, 9, 11)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return _tapped(self.features, x, self.taps)


class Fire(nn.Module):
    """SqueezeNet's fire module: 1×1 squeeze, then parallel 1×1 and 3×3 expands, concatenated."""

    def __init__(self, in_ch: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = nn.Conv2d(in_ch, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.relu(self.squeeze(x))
        return torch.cat([self.relu(self.expand1x1(x)), self.relu(self.expand3x3(x))], 1)


class SqueezeNetFeatures(nn.Module):
    """torchvision squeezenet1_1().features, tapped at LPIPS's seven slice ends."""

    channels = (64, 128, 256, 384, 384, 512, 512)

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, stride=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, ceil_mode=True), Fire(64, 16, 64), Fire(128, 16, 64),
            nn.MaxPool2d(3, 2, ceil_mode=True), Fire(128, 32, 128), Fire(256, 32, 128),
            nn.MaxPool2d(3, 2, ceil_mode=True), Fire(256, 48, 192), Fire(384, 48, 192),
            Fire(384, 64, 256), Fire(512, 64, 256),
        )  # fmt: skip
        self.taps = (1, 4, 7, 9, 10, 11, 12)

    def forward(self, x):
        return _tapped(self.features, x, self.taps)


VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)


class VGG19Features(nn.Module):
    """torchvision vgg19().features up to relu5_1, tapped at relu{1..5}_1 (pix2pixHD's VGGLoss)."""

    channels = (64, 128, 256, 512, 512)

    def __init__(self):
        super().__init__()
        layers, in_ch = [], 3
        for v in VGG19_LAYOUT:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_ch, v, 3, padding=1), nn.ReLU(inplace=True)]
                in_ch = v
        self.features = nn.Sequential(*layers[:30])  # index 29 is relu5_1
        self.taps = (1, 6, 11, 20, 29)

    def forward(self, x):
        return _tapped(self.features, x, self.taps)


def _tapped(seq: nn.Sequential, x: torch.Tensor, taps) -> list[torch.Tensor]:
    outs, last = [], taps[-1]
    for i, layer in enumerate(seq):
        # in-place ReLUs only overwrite the conv output before them, never a tapped tensor
        x = layer(x)
        if i in taps:
            outs.append(x)
        if i == last:
            break
    return outs


BACKBONES = {"alex": AlexNetFeatures, "squeeze": SqueezeNetFeatures, "vgg19": VGG19Features}


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsError(
            f"backbone weights not found: {path} (set HUMANTEX_LPIPS_BACKBONES or pass --lpips-backbones DIR)",
            kind="missing_weights",
        )
    try:
        if path.suffix == ".npz":
            import numpy as np

            with np.load(path) as z:
                return {k: torch.from_numpy(z[k].copy()) for k in z.files}
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except WeightsError:
        raise
    except Exception as e:  # corrupt file, pickle with code in it, ...
        raise WeightsError(f"cannot read backbone weights {path.name}: {type(e).__name__}: {e}") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise WeightsError(f"{path.name} does not hold a state dict")
    return sd


def load_backbone(name: str, path: str | os.PathLike | None = None) -> nn.Module:
    """A frozen, eval-mode backbone with ImageNet weights from `path` (default: the shared folder).

    Accepts torchvision layouts: a `features` state dict (keys `0.weight`), a full model's
    (`features.0.weight`, classifier keys ignored), as .pth/.pt, .npz or .safetensors.
    """
    if name not in BACKBONES:
        raise WeightsError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}", kind="bad_config")
    if path is None:
        if name not in BACKBONE_FILES:
            raise WeightsError(f"{name} weights are not shipped; pass their path explicitly", kind="missing_weights")
        path = default_lpips_backbones() / BACKBONE_FILES[name]
    path = Path(path)
    sd = _read_state_dict(path)
    model = BACKBONES[name]()
    wanted = model.features.state_dict()
    remapped = {}
    for k, v in sd.items():
        key = k[len("features.") :] if k.startswith("features.") else k
        if key in wanted:
            remapped[key] = v
    missing = [k for k in wanted if k not in remapped]
    if missing:
        raise WeightsError(f"{path.name} is not a {name} feature state dict (missing {missing[0]} and {len(missing) - 1} more)")
    bad = [k for k in wanted if tuple(remapped[k].shape) != tuple(wanted[k].shape)]
    if bad:
        raise WeightsError(f"{path.name}: shape mismatch for {bad[0]}: {tuple(remapped[bad[0]].shape)} vs {tuple(wanted[bad[0]].shape)}")
    model.features.load_state_dict({k: v.float() for k, v in remapped.items()})
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
