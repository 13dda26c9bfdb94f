"""A linear texture model: PCA of the training textures, and its Gaussian conditional mean.

A texture at `size`² (chart texels only, RGB) is modelled as x = mean + basis·z with z ~ N(0, I)
(`basis` holds the principal directions scaled by their standard deviations). Given the seen texels
x_o, the unseen ones get the posterior mean

    z = (B_oᵀB_o + ridge·I)⁻¹ B_oᵀ (x_o − mean_o),        x̂ = mean + basis·z

a smooth, whole-body estimate (colours of the unseen back from the seen front, skin from the face, ...)
that RefinerNet takes as an input. It is computed at a low resolution (64² by default) and upsampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import WeightsError

PCA_FORMAT = "blender_humantex.texture_pca.v1"


@dataclass(frozen=True)
class TexturePCA:
    size: int
    mean: np.ndarray  # float32 S×S×3 (0 outside the charts)
    basis: np.ndarray  # float32 k×S×S×3: principal directions × standard deviation
    metadata: dict


def fit_pca(textures: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """textures N×S×S×3 (complete) -> (mean S×S×3, basis k×S×S×3)."""
    n = textures.shape[0]
    x = textures.reshape(n, -1).astype(np.float64)
    mean = x.mean(0)
    _, sigma, vt = np.linalg.svd(x - mean, full_matrices=False)
    k = min(k, len(sigma))
    basis = vt[:k] * (sigma[:k, None] / np.sqrt(max(n - 1, 1)))
    return mean.reshape(textures.shape[1:]).astype(np.float32), basis.reshape(k, *textures.shape[1:]).astype(np.float32)


def save_pca(path, mean: np.ndarray, basis: np.ndarray, metadata: dict):
    from ..uv_layout import get_layout
    from .data_models import write_data_model

    size = mean.shape[0]
    chart = get_layout(size).chart_mask  # only chart texels are stored (77% of the square)
    # safetensors writes an array's buffer as it lies in memory: boolean indexing on a middle axis
    # leaves it non-C-ordered, so make it contiguous first
    tensors = {"mean": np.ascontiguousarray(mean[chart], np.float16),
               "basis": np.ascontiguousarray(basis[:, chart], np.float16)}
    return write_data_model(path, tensors, PCA_FORMAT, {"size": size, "k": basis.shape[0], **metadata})


def load_pca(path) -> TexturePCA:
    """Read a PCA file; anything missing or inconsistent is a one-line WeightsError."""
    from pathlib import Path

    from ..uv_layout import get_layout
    from .data_models import read_data_model

    meta, tensors, size = read_data_model(path, PCA_FORMAT, "texture PCA", ("mean", "basis"))
    mean, basis = tensors["mean"], tensors["basis"]
    chart = get_layout(size).chart_mask
    n = int(chart.sum())
    if mean.shape != (n, 3) or basis.ndim != 3 or basis.shape[1:] != (n, 3):
        raise WeightsError(f"{Path(path).name}: mean {mean.shape} and basis {basis.shape} do not fit size {size}")
    full_mean = np.zeros((size, size, 3), np.float32)
    full_basis = np.zeros((basis.shape[0], size, size, 3), np.float32)
    full_mean[chart], full_basis[:, chart] = mean, basis
    return TexturePCA(size, full_mean, full_basis, meta)


class PCAEstimator:
    """The conditional-mean texture, batched in torch (the model's tensors live on one device)."""

    def __init__(self, pca: TexturePCA, ridge: float = 0.01, device="cpu"):
        import torch

        self.size, self.ridge = pca.size, ridge
        self.mean = torch.from_numpy(pca.mean.reshape(-1).copy()).to(device)  # D = S·S·3
        self.basis = torch.from_numpy(pca.basis.reshape(pca.basis.shape[0], -1).copy()).to(device)  # k×D
        # Outside the charts the estimate copies the nearest chart texel, so upsampling never pulls the
        # black background into chart borders (dark seams).
        from scipy import ndimage

        from ..uv_layout import get_layout

        chart = get_layout(self.size).chart_mask
        _, (iy, ix) = ndimage.distance_transform_edt(~chart, return_indices=True)
        self.nearest_chart = torch.from_numpy((iy * self.size + ix).reshape(-1)).to(device)  # S²

    def to(self, device):
        self.mean, self.basis = self.mean.to(device), self.basis.to(device)
        self.nearest_chart = self.nearest_chart.to(device)
        return self

    def __call__(self, partial_texture, visibility):
        """partial N×3×H×W, visibility N×1×H×W -> the estimate N×3×H×W (same size, bilinear upsampled)."""
        import torch

        from .networks import resize, resize_partial

        n, _, h, w = partial_texture.shape
        s = self.size
        small, weight = resize_partial(partial_texture.float(), visibility.float(), (s, s))  # N×3×s×s, N×1×s×s
        x = small.permute(0, 2, 3, 1).reshape(n, -1)  # N×D (H, W, C order, as the basis)
        o = (weight > 0.5).float().permute(0, 2, 3, 1).expand(n, s, s, 3).reshape(n, -1)  # N×D observed dims
        k = self.basis.shape[0]
        b = self.basis.t()  # D×k
        estimates = []
        for i in range(n):
            bo = b * o[i, :, None]  # D×k, rows of unobserved dims zeroed
            gram = bo.t() @ bo + self.ridge * torch.eye(k, dtype=b.dtype, device=b.device)  # k×k
            z = torch.linalg.solve(gram, bo.t() @ ((x[i] - self.mean) * o[i]))  # k
            estimates.append(self.mean + b @ z)
        estimate = torch.stack(estimates).reshape(n, s * s, 3)[:, self.nearest_chart]  # N×S²×3, padded
        estimate = estimate.reshape(n, s, s, 3).permute(0, 3, 1, 2).clamp(0, 1)  # N×3×s×s
        return resize(estimate, (h, w))
