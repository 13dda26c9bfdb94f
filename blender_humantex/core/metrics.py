"""Image metrics: LPIPS (v0.1, plain torch), and PSNR / SSIM from scikit-image, inside the UV mask.

LPIPS reproduces richzhang/PerceptualSimilarity v0.1 (`lpips.LPIPS(net=..., version='0.1')`):
ImageNet backbone features, unit-normalised along channels, squared difference, the learned
1×1 "lin" layers (shipped in core/lpips_lin), averaged over space and summed over layers.
Inputs here are float images in [0, 1] (the project's convention); they are mapped to [-1, 1]
as the lpips package expects.

Masked evaluation (the paper's Table 1 protocol, at 256²): only texels inside the SMPL UV chart
mask count. Both images are first composited onto black outside the mask, so that the empty
background is identical in both and only leaks in through filter footprints at chart borders. Then
- LPIPS: the spatial LPIPS map (each layer's map upsampled to the image size, as lpips' spatial=True)
  averaged over mask texels;
- PSNR: scikit-image's peak_signal_noise_ratio on the mask texels only (data_range 1);
- SSIM: scikit-image's structural_similarity map (Gaussian 11×11, σ=1.5, Wang et al. settings),
  averaged over mask texels.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbones import load_backbone
from .errors import InputError, WeightsError

LIN_DIR = Path(__file__).resolve().parent / "lpips_lin"


def normalize_channels(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Unit length along channels (lpips.normalize_tensor), so layers compare directions, not magnitudes."""
    return x / (torch.sqrt(torch.sum(x * x, dim=1, keepdim=True)) + eps)


class ScalingLayer(nn.Module):
    """lpips' fixed input shift/scale for [-1, 1] images (ImageNet mean/std re-expressed)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

    def forward(self, x):
        return (x - self.shift) / self.scale


class LPIPS(nn.Module):
    """LPIPS v0.1. `forward(a, b)` takes N×3×H×W in [0, 1] and returns N distances (lower = closer).

    Gradients flow to the inputs (it is also the sampler's perceptual loss); its own weights are frozen.
    """

    def __init__(self, net: str = "alex", backbone_file: str | os.PathLike | None = None):
        super().__init__()
        if net not in ("alex", "squeeze"):
            raise WeightsError(f"LPIPS backbone must be alex or squeeze, got {net!r}", kind="bad_config")
        self.net_name = net
        self.scaling = ScalingLayer()
        self.backbone = load_backbone(net, backbone_file)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in self.backbone.channels)
        self._load_lins(LIN_DIR / f"{net}_v0.1.safetensors")
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def _load_lins(self, path: Path) -> None:
        from safetensors.torch import load_file

        if not path.is_file():
            raise WeightsError(f"LPIPS linear layers not found: {path}", kind="missing_weights")
        try:
            sd = load_file(str(path))
        except Exception as e:
            raise WeightsError(f"cannot read {path.name}: {e}") from None
        for k, lin in enumerate(self.lins):
            key = f"lin{k}.model.1.weight"
            if key not in sd or sd[key].shape != lin.weight.shape:
                raise WeightsError(f"{path.name}: missing or misshapen {key}")
            lin.weight.data.copy_(sd[key])

    def train(self, mode: bool = True):
        # always eval: the metric must not change with the caller's train/eval state
        return super().train(False)

    def distance_map(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Per-texel LPIPS map, N×1×H×W (lpips' spatial=True): each layer's map upsampled, then summed."""
        size = a.shape[-2:]
        fa = self.backbone(self.scaling(a * 2 - 1))
        fb = self.backbone(self.scaling(b * 2 - 1))
        total = 0
        for lin, xa, xb in zip(self.lins, fa, fb, strict=True):
            layer = lin((normalize_channels(xa) - normalize_channels(xb)) ** 2)
            total = total + F.interpolate(layer, size=size, mode="bilinear", align_corners=False)
        return total

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa = self.backbone(self.scaling(a * 2 - 1))
        fb = self.backbone(self.scaling(b * 2 - 1))
        total = 0
        for lin, xa, xb in zip(self.lins, fa, fb, strict=True):
            total = total + lin((normalize_channels(xa) - normalize_channels(xb)) ** 2).mean(dim=(2, 3))
        return total.flatten()


_LPIPS_CACHE: dict[tuple, LPIPS] = {}


def get_lpips(net: str = "alex", backbone_file=None) -> LPIPS:
    """A cached LPIPS instance (loading the backbone costs ~0.1 s and 10 MB)."""
    key = (net, str(backbone_file))
    if key not in _LPIPS_CACHE:
        _LPIPS_CACHE[key] = LPIPS(net, backbone_file)
    return _LPIPS_CACHE[key]


def _check_pair(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None):
    pred = np.asarray(pred, dtype=np.float32)
    target = np.asarray(target, dtype=np.float32)
    if pred.shape != target.shape:
        raise InputError(f"metric inputs differ in shape: {pred.shape} vs {target.shape}", kind="size_mismatch")
    if mask is None:
        mask = np.ones(pred.shape[:2], dtype=bool)
    mask = np.asarray(mask) > 0.5
    if mask.shape != pred.shape[:2]:
        raise InputError(f"mask shape {mask.shape} does not match images {pred.shape[:2]}", kind="size_mismatch")
    if not mask.any():
        raise InputError("metric mask is empty", kind="empty_mask")
    if pred.ndim == 3:
        m = mask[..., None]
    else:
        m = mask
    return pred * m, target * m, mask


def psnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB over mask texels (all when mask is None); images H×W×3 or H×W in [0, 1]."""
    from skimage.metrics import peak_signal_noise_ratio

    pred, target, mask = _check_pair(pred, target, mask)
    if np.array_equal(pred[mask], target[mask]):
        return float("inf")
    return float(peak_signal_noise_ratio(target[mask], pred[mask], data_range=1.0))


def ssim(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """SSIM (Wang et al. 2004 settings) averaged over mask texels; images H×W×3 or H×W in [0, 1]."""
    from skimage.metrics import structural_similarity

    pred, target, mask = _check_pair(pred, target, mask)
    kwargs = dict(data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True)
    if pred.ndim == 3:
        _, smap = structural_similarity(target, pred, channel_axis=2, **kwargs)
        smap = smap.mean(axis=2)
    else:
        _, smap = structural_similarity(target, pred, **kwargs)
    return float(smap[mask].mean())


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]


@torch.no_grad()
def lpips(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, net: str = "alex",
          backbone_file=None) -> float:
    """LPIPS v0.1 between two H×W×3 images in [0, 1]; with a mask, the spatial map's mean over mask texels."""
    pred, target, mask = _check_pair(pred, target, mask)
    if pred.ndim != 3 or pred.shape[2] != 3:
        raise InputError(f"LPIPS needs H×W×3 images, got {pred.shape}", kind="bad_shape")
    model = get_lpips(net, backbone_file)
    a, b = _to_tensor(pred), _to_tensor(target)
    if mask.all():
        return float(model(a, b)[0])
    dmap = model.distance_map(a, b)[0, 0].numpy()
    return float(dmap[mask].mean())


def all_metrics(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, backbone_file=None) -> dict:
    """{"lpips", "psnr", "ssim"} for one texture pair (the evaluation's three columns)."""
    return {
        "lpips": lpips(pred, target, mask, backbone_file=backbone_file),
        "psnr": psnr(pred, target, mask),
        "ssim": ssim(pred, target, mask),
    }
