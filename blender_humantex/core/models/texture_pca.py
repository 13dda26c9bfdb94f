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
from functools import lru_cache

import numpy as np
import torch
from torch import nn

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


class PCAEstimator(nn.Module):
    """The conditional-mean texture, batched in torch. An nn.Module whose tensors are non-persistent buffers
    (`.to`, `.half()` and `print` see them; a network's state_dict does not hold them: they have their own file)."""

    def __init__(self, pca: TexturePCA, ridge: float = 0.01, device="cpu"):
        from scipy import ndimage

        from ..uv_layout import get_layout

        super().__init__()
        self.size, self.ridge = pca.size, ridge
        # Outside the charts the estimate copies the nearest chart texel, so upsampling never pulls the
        # black background into chart borders (dark seams).
        chart = get_layout(self.size).chart_mask
        _, (iy, ix) = ndimage.distance_transform_edt(~chart, return_indices=True)
        buffers = {
            "mean": torch.from_numpy(pca.mean.reshape(-1).copy()),  # D = S·S·3
            "basis": torch.from_numpy(pca.basis.reshape(pca.basis.shape[0], -1).copy()),  # k×D
            "nearest_chart": torch.from_numpy((iy * self.size + ix).reshape(-1)),  # S²
        }
        for name, tensor in buffers.items():
            self.register_buffer(name, tensor.to(device), persistent=False)

    def extra_repr(self) -> str:
        return f"size={self.size}, components={self.basis.shape[0]}, ridge={self.ridge}"

    def forward(self, partial_texture, visibility, size=None):
        """partial N×3×H×W, visibility N×1×H×W -> the estimate N×3×H×W (bilinear upsampled), or with `size`
        (h, w) what resample.resize would make of that: the same two resizes as one small linear map each way,
        never at H×W."""
        from .resample import resize, resize_partial

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
        if size is None or tuple(size) == (h, w):
            return resize(estimate, (h, w))
        rows, cols = (resize_matrix(s, full, out, estimate.device) for full, out in ((h, size[0]), (w, size[1])))
        return torch.einsum("ys,ncst,xt->ncyx", rows, estimate, cols)


@lru_cache(maxsize=8)
def _resize_matrix(size: int, full: int, out: int) -> torch.Tensor:
    from .resample import resize

    up = resize(torch.eye(size).view(1, 1, size, size), (full, size))[0, 0]  # full×size: resample.resize, one axis
    down = resize(up.t().contiguous().view(1, 1, size, full), (size, out))[0, 0].t()  # out×size
    return down.contiguous()


def resize_matrix(size: int, full: int, out: int, device) -> torch.Tensor:
    """out×size: resample.resize from `size` to `full` and on to `out`, along one axis (both resizes are separable
    and linear, bilinear up then area down, so an image's two resizes are this matrix on each side)."""
    return _resize_matrix(size, full, out).to(device)
