"""SamplerNet, RefinerNet and the Lazova-style baseline, in the style of pix2pixHD/CycleGAN networks.py.

All three are the same residual U-Net (`ResUNet`): a first 7×7 conv, `n_down` residual `Down`
blocks, `n_res` residual blocks at the bottleneck, `n_down` residual `Up` blocks with skip
connections, and a last 7×7 conv. So for the sampler "every layer except the first and the last
is a residual block" (Cha et al. 2022), and the refiner has its 9 bottleneck blocks.
Only the inputs and the head differ:

  SamplerNet   partial + visibility [+ uv] [+ mirrored]  -> sampling_grid = identity + tanh·max_offset
               T_sample = visible ? partial : grid_sample(partial, sampling_grid)
  RefinerNet   T_sample + visibility [+ uv]               -> T_refine (sigmoid), blend_mask M (sigmoid)
               T_final = T_sample⊙M + T_refine⊙(1−M)
  LazovaNet    partial + visibility [+ uv]               -> texture (sigmoid), predicted directly

Every network runs at `config.net_size` and accepts inputs of any size: inputs are resized to
net_size, and the outputs (grid offset, T_refine, M, texture) are upsampled to the input size.
The sampling itself always reads the full-resolution partial, so T_sample keeps the photo's detail.

Tensors are N×C×H×W float in [0, 1]; visibility is N×1×H×W (1 = observed texel).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .grid_prior import seen_source_offset, smooth_fill
from .resample import SAMPLE_WEIGHT_EPS, resize, resize_partial

# ----------------------------------------------------------------------------- small tensor helpers


def identity_grid(n: int, height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """N×H×W×2 grid (x, y) of texel centres in normalised coords (grid_sample, align_corners=False)."""
    xs = (torch.arange(width, device=device, dtype=dtype) * 2 + 1) / width - 1
    ys = (torch.arange(height, device=device, dtype=dtype) * 2 + 1) / height - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)
    return grid.unsqueeze(0).expand(n, height, width, 2)


def uv_channels(n: int, height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """N×2×H×W (u, v) in [-1, 1]; row 0 is the top of the UV square (v = +1), as in the SMPL layout."""
    grid = identity_grid(n, height, width, device, dtype)
    u = grid[..., 0]
    v = -grid[..., 1]
    return torch.stack([u, v], dim=1)


def sample_texture(partial_texture: torch.Tensor, visibility: torch.Tensor, sampling_grid: torch.Tensor):
    """T_sample: observed texels keep their colour; the others read the partial at `sampling_grid`.

    The sampling is premultiplied: grid_sample(partial·vis) / grid_sample(vis). A plain
    grid_sample would mix the black of unobserved texels into every sample near a chart border;
    dividing by the sampled visibility keeps only observed colour. Positions whose sampled weight is
    below SAMPLE_WEIGHT_EPS saw nothing and stay 0. `visibility` may be soft; 1 keeps the partial
    exactly, 0 takes the sample.
    """
    if not torch.is_grad_enabled():  # inference: the same, computed only where visibility < 1
        return sample_unseen(partial_texture, visibility, sampling_grid)
    sampled = F.grid_sample(
        torch.cat([partial_texture * visibility, visibility], dim=1),
        sampling_grid.to(partial_texture.dtype),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    weight = sampled[:, 3:]
    colour = sampled[:, :3] / weight.clamp_min(SAMPLE_WEIGHT_EPS) * (weight > SAMPLE_WEIGHT_EPS)
    del sampled, weight  # 4096² textures: free each full-size temporary as soon as it is used
    return visibility * partial_texture + (1 - visibility) * colour


SPARSE_BLOCK_TEXELS = 1 << 18  # texels per block of rows in sample_unseen (bounds its per-texel temporaries)


def sample_unseen(texture, visibility, sampling_grid):
    """networks.sample_texture at inference: a new tensor equal to texture where visibility is 1, and computed
    (the same arithmetic) only where it is below 1, in blocks of rows (SPARSE_BLOCK_TEXELS): each texel's result
    is its own, so blocks change nothing but the size of the per-texel temporaries. The results are gathered
    first and written into the copy of `texture` after the premultiplied buffer is freed, so the two full-size
    buffers are never held together (~0.1 GB less at 4096²).

    texture N×3×H×W, visibility N×1×H×W, sampling_grid N×H×W×2 -> N×3×H×W.
    """
    n, _, h, w = texture.shape
    texture = texture.to(sampling_grid.dtype)
    rows = max(1, SPARSE_BLOCK_TEXELS // w)
    results = [_sample_unseen_texels(texture[i], visibility[i], sampling_grid[i], rows) for i in range(n)]
    out = texture.clone(memory_format=torch.contiguous_format)
    for i, (where, value) in enumerate(results):
        out[i].view(3, -1).index_copy_(1, where, value)
    return out


def _sample_unseen_texels(texture, visibility, sampling_grid, rows: int):
    """One texture of sample_unseen: (flat indices M of its texels with visibility < 1, their values 3×M)."""
    _, h, w = texture.shape
    unseen = visibility[0] < 1
    m = int(unseen.sum())
    where_all = torch.empty(m, dtype=torch.int64, device=texture.device)
    value_all = torch.empty(3, m, dtype=texture.dtype, device=texture.device)
    if m == 0:
        return where_all, value_all
    premultiplied = premultiply_channels_last(texture, visibility.to(texture.dtype))
    flat, flat_visibility = texture.reshape(3, -1), visibility.reshape(-1)
    done = 0
    for top in range(0, h, rows):
        yx = unseen[top : top + rows].nonzero()  # M×2, rows from `top`
        if yx.shape[0] == 0:
            continue
        grid = sampling_grid[yx[:, 0] + top, yx[:, 1]]  # M×2 (no copy of the whole grid, whatever its strides)
        sampled = F.grid_sample(premultiplied, grid.view(1, 1, -1, 2), mode="bilinear", padding_mode="zeros",
                                align_corners=False)[0, :, 0]  # 4×M
        weight = sampled[3]
        colour = sampled[:3] / weight.clamp_min(SAMPLE_WEIGHT_EPS) * (weight > SAMPLE_WEIGHT_EPS)
        where = (yx[:, 0] + top) * w + yx[:, 1]
        seen = flat_visibility.index_select(0, where).to(texture.dtype)
        block = slice(done, done + len(where))
        where_all[block] = where
        value_all[:, block] = seen * flat.index_select(1, where) + (1 - seen) * colour
        done += len(where)
    return where_all, value_all


def premultiply_channels_last(texture, visibility):
    """3×h×w, 1×h×w -> 1×4×h×w (texture·visibility, visibility) in channels-last memory: grid_sample reads a
    texel's four values from one place (about twice as fast on a CPU as planar channels for scattered points)."""
    _, h, w = texture.shape
    out = torch.empty(1, h, w, 4, dtype=texture.dtype, device=texture.device)
    if torch.is_grad_enabled():  # (out= has no gradient)
        out[0, ..., :3] = (texture * visibility).permute(1, 2, 0)
    else:
        torch.mul(texture.permute(1, 2, 0), visibility.permute(1, 2, 0), out=out[0, ..., :3])
    out[0, ..., 3] = visibility[0]
    return out.permute(0, 3, 1, 2)


# Above the refiner's net_size its T_refine is an upsampled, smooth layer: at 512² and more it blurs what
# T_sample's sampling from the full-resolution photo did resolve (weave, folds, print edges). T_refine gets
# T_sample's detail finer than net_size back: its high-pass, clipped to ±DETAIL_CLAMP, so that fine grain
# comes back but not the strong edges of a print the prior placed wrongly. Validation at 512² (MODEL_CARD,
# step 7): no detail 0.2178 / 22.02 / 0.7938, unclipped 0.1976 / 21.85 / 0.7797, ±0.03 0.1948 / 21.98 /
# 0.7839, ±0.015 0.1976 / 22.00 / 0.7871 (LPIPS / PSNR / SSIM).
DETAIL_CLAMP = 0.015


def fine_detail(texture: torch.Tensor, coarse: tuple[int, int]) -> torch.Tensor:
    """texture N×C×H×W -> its detail finer than `coarse` (texture − texture at coarse, upsampled back),
    clipped to ±DETAIL_CLAMP; 0 when H×W is not larger than coarse (so training at net_size never sees it)."""
    full = tuple(texture.shape[-2:])
    if full[0] <= coarse[0] and full[1] <= coarse[1]:
        return torch.zeros_like(texture)
    detail = resize(resize(texture, tuple(coarse)), full)
    if torch.is_grad_enabled():
        return (texture - detail).clamp(-DETAIL_CLAMP, DETAIL_CLAMP)
    # inference: the same arithmetic in the one full-size buffer (4096²: no further temporaries)
    return torch.sub(texture, detail, out=detail).clamp_(-DETAIL_CLAMP, DETAIL_CLAMP)


def make_norm(norm: str, channels: int) -> nn.Module:
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


# ----------------------------------------------------------------------------- blocks


class ResBlock(nn.Module):
    """conv3-norm-ReLU-conv3-norm plus a shortcut (a 1×1 conv when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1),
            make_norm(norm, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            make_norm(norm, out_channels),
        )
        if in_channels == out_channels and stride == 1:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride)

    def forward(self, x):
        return self.shortcut(x) + self.body(x)


class Down(nn.Module):
    """Halve the resolution: a stride-2 residual block."""

    def __init__(self, in_channels: int, out_channels: int, norm: str):
        super().__init__()
        self.block = ResBlock(in_channels, out_channels, norm, stride=2)

    def forward(self, x):
        return self.block(x)


class Up(nn.Module):
    """Double the resolution, join the encoder's skip features, then a residual block."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, norm: str):
        super().__init__()
        self.block = ResBlock(in_channels + skip_channels, out_channels, norm)

    def forward(self, x, skip):
        x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
        return self.block(torch.cat([x, skip], dim=1))


class ResUNet(nn.Module):
    """first conv -> Down×n_down -> ResBlock×n_res -> Up×n_down (with skips) -> last conv."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = config
        widths = [c.ngf * min(2**i, c.max_mult) for i in range(c.n_down + 1)]
        self.first = nn.Sequential(
            nn.Conv2d(c.in_channels, widths[0], 7, padding=3), make_norm(c.norm, widths[0]), nn.ReLU(inplace=True)
        )
        self.downs = nn.ModuleList(Down(widths[i], widths[i + 1], c.norm) for i in range(c.n_down))
        self.bottleneck = nn.Sequential(*(ResBlock(widths[-1], widths[-1], c.norm) for _ in range(c.n_res)))
        self.ups = nn.ModuleList(
            Up(widths[i + 1], widths[i], widths[i], c.norm) for i in reversed(range(c.n_down))
        )
        self.last = nn.Conv2d(widths[0], c.out_channels, 7, padding=3)

    def forward(self, x):
        x = self.first(x)
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()  # the deepest features go through the bottleneck, not a skip
        x = self.bottleneck(x)
        for up in self.ups:
            x = up(x, skips.pop())
        return self.last(x)


# ----------------------------------------------------------------------------- the three networks


class SamplerOutput(NamedTuple):
    t_sample: torch.Tensor  # N×3×H×W
    sampling_grid: torch.Tensor | None  # N×H×W×2, normalised (x, y), align_corners=False; None at inference (smooth fill)


class RefinerOutput(NamedTuple):
    t_final: torch.Tensor  # N×3×H×W
    t_refine: torch.Tensor  # N×3×H×W
    blend_mask: torch.Tensor  # N×1×H×W, 1 = keep T_sample


class _TextureNet(nn.Module):
    """What the three networks share: the config, the U-Net, and building its input at net_size."""

    def __init__(self, config: ModelConfig, kind: str):
        super().__init__()
        if config.kind != kind:
            raise ValueError(f"{type(self).__name__} needs a config of kind {kind!r}, got {config.kind!r}")
        self.config = config
        self.unet = ResUNet(config)
        self._mirror_index = None  # (net_size, LongTensor) cache, built from the UV layout on first use

    def network_input(self, texture: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
        """texture and visibility already at net_size -> the U-Net's input channels."""
        n, _, h, w = texture.shape
        channels = [texture, visibility]
        if self.config.uv_coords:
            channels.append(uv_channels(n, h, w, texture.device, texture.dtype))
        if self.config.mirror:
            channels.extend(self.mirrored(texture, visibility))
        return torch.cat(channels, dim=1)

    def mirrored(self, texture: torch.Tensor, visibility: torch.Tensor) -> list[torch.Tensor]:
        """The left/right mirrored partial and visibility: texel (y, x) reads its mirror partner.

        Mirror partners come from core.uv_layout (mirror_yx: S×S×2 row/col of each texel's partner,
        negative where a texel has none). Texels without a partner get visibility 0.
        """
        size = texture.shape[-1]
        if self._mirror_index is None or self._mirror_index[0] != size:
            from ..uv_layout import get_layout

            mirror_yx = torch.from_numpy(get_layout(size).mirror_yx.astype(np.int64))  # a copy: layout arrays are read-only
            valid = (mirror_yx[..., 0] >= 0) & (mirror_yx[..., 1] >= 0)
            flat = (mirror_yx[..., 0].clamp_min(0) * size + mirror_yx[..., 1].clamp_min(0)).reshape(-1)
            self._mirror_index = (size, flat, valid.reshape(-1))
        _, flat, valid = self._mirror_index
        flat, valid = flat.to(texture.device), valid.to(texture.device, texture.dtype)
        n, _, h, w = texture.shape
        mirrored_texture = texture.reshape(n, 3, -1)[..., flat].reshape(n, 3, h, w)
        mirrored_visibility = (visibility.reshape(n, 1, -1)[..., flat] * valid).reshape(n, 1, h, w)
        return [mirrored_texture * mirrored_visibility, mirrored_visibility]


class SamplerNet(_TextureNet):
    """Predicts where each texel should sample the partial texture from (Cha et al. 2022, SamplerNet).

    With grid_prior "correspondence" the grid is a mix of the correspondence prior's grids (closed form,
    from data; `attach_prior`) shifted by the learned offset.
    """

    def __init__(self, config: ModelConfig | None = None):
        super().__init__(config or ModelConfig.default("sampler"), "sampler")
        # Start at the identity grid (offset 0): training begins from "copy what you see".
        nn.init.zeros_(self.unet.last.weight)
        nn.init.zeros_(self.unet.last.bias)
        self.prior = None  # core.models.correspondence.PriorSampler, for grid_prior "correspondence"

    def attach_prior(self, prior) -> SamplerNet:
        """Give the sampler its correspondence prior (a PriorSampler; shipped beside the weights)."""
        self.prior = prior
        return self

    def _apply(self, fn, *args, **kwargs):  # .to(device) moves the attached prior too
        result = super()._apply(fn, *args, **kwargs)
        if self.prior is not None:
            self.prior.to(self.unet.last.weight.device)
        return result

    def predict_offset(self, partial_texture: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
        """N×2×s×s grid offset at net_size, bounded by tanh·max_offset (normalised coordinates)."""
        size = (self.config.net_size, self.config.net_size)
        small_partial, small_visibility = resize_partial(partial_texture, visibility, size)
        raw = self.unet(self.network_input(small_partial, small_visibility))
        return torch.tanh(raw.float()) * self.config.max_offset

    def forward(self, partial_texture: torch.Tensor, visibility: torch.Tensor) -> SamplerOutput:
        n, _, h, w = partial_texture.shape
        offset = self.predict_offset(partial_texture, visibility)  # N×2×s×s
        if self.config.grid_prior == "correspondence":
            # the prior reads the small offset where it samples (its bilinear upsampling, at those texels only):
            # no N×2×H×W copy (128 MiB at 4096²)
            return self.sample_with_prior(partial_texture.float(), visibility.float(), offset)
        offset = resize(offset, (h, w))  # N×2×H×W
        if self.config.grid_prior == "seen":
            # Learn corrections to "mirror partner, else nearest seen texel of the part" (grid_prior.py).
            offset = offset + resize(seen_source_offset(visibility), (h, w))
        # The offset field is smooth: upsample it (not identity+offset, whose border would shift) and
        # add the identity at full resolution, so the full-resolution partial is sampled directly.
        sampling_grid = offset.permute(0, 2, 3, 1) + identity_grid(n, h, w, offset.device)
        t_sample = sample_texture(partial_texture.float(), visibility.float(), sampling_grid)
        return SamplerOutput(t_sample, sampling_grid)


    def sample_with_prior(self, partial_texture, visibility, offset) -> SamplerOutput:
        """T_sample = Σ_j w_j · grid_sample(partial, identity + prior_offset_j + learned offset), then the
        config.prior_fill where the prior reached no seen texel: a smooth push-pull of the part's known colours
        (grid_prior.smooth_fill), or the old structural "mirror, else nearest seen texel" grid."""
        if self.prior is None:
            raise RuntimeError("this sampler needs its correspondence prior: call attach_prior() first")
        n, _, h, w = partial_texture.shape
        texture, reached = self.prior(partial_texture, visibility, offset)  # N×3×H×W, N×1×H×W
        if self.config.prior_fill == "nearest":  # (the shipped sampler's setting until step 7)
            fallback = resize(seen_source_offset(reached), (h, w))  # N×2×H×W, 0 where reached
            sampling_grid = fallback.permute(0, 2, 3, 1) + identity_grid(n, h, w, offset.device)  # N×H×W×2
            return SamplerOutput(sample_texture(texture, reached, sampling_grid), sampling_grid)
        # what the prior did not reach: a smooth push-pull of its part's known colours (grid_prior.smooth_fill).
        # The full-size grid only feeds training's grid losses: inference does not build it (4096²: 128 MB).
        sampling_grid = None
        if torch.is_grad_enabled():
            sampling_grid = identity_grid(n, h, w, offset.device) + resize(offset, (h, w)).permute(0, 2, 3, 1)
        return SamplerOutput(smooth_fill(texture, reached), sampling_grid)


class RefinerNet(_TextureNet):
    """Repairs T_sample and says where to trust it (Cha et al. 2022, RefinerNet).

    With `pca_input` it also sees the PCA texture model's estimate T_pca (`attach_pca`), and
    T_refine = T_pca + Δ, M = visibility + (1 − visibility)·σ(m): seen texels keep their photo colour,
    and an untrained refiner already returns the even mix of T_sample and T_pca.
    """

    def __init__(self, config: ModelConfig | None = None):
        super().__init__(config or ModelConfig.default("refiner"), "refiner")
        self.pca = None  # core.models.texture_pca.PCAEstimator, for pca_input
        self._chart = None
        if self.config.pca_input:
            nn.init.zeros_(self.unet.last.weight)
            nn.init.zeros_(self.unet.last.bias)

    def attach_pca(self, pca) -> RefinerNet:
        self.pca = pca
        return self

    def _apply(self, fn, *args, **kwargs):  # .to(device) moves the attached PCA model too
        result = super()._apply(fn, *args, **kwargs)
        if self.pca is not None:
            self.pca.to(self.unet.last.weight.device)
        return result

    def chart(self, size: int, device) -> torch.Tensor:
        if self._chart is None or self._chart.shape[-1] != size:
            from ..uv_layout import get_layout

            self._chart = torch.from_numpy(get_layout(size).chart_mask.astype(np.float32))[None, None]
        return self._chart.to(device)

    def forward(self, t_sample: torch.Tensor, visibility: torch.Tensor, t_pca: torch.Tensor | None = None,
                crop: tuple[int, int, int] | None = None) -> RefinerOutput:
        """`t_pca` (pca_input only) is computed from T_sample when not given. `crop` = (top, left, size):
        run on that window of the net_size atlas only (training on crops); outputs are then crop-sized."""
        size = (self.config.net_size, self.config.net_size)
        small_sample, small_visibility = resize(t_sample, size), resize(visibility, size)
        extra = []
        if self.config.pca_input:
            if t_pca is not None:
                small_pca = resize(t_pca, size)
            elif self.pca is None:
                raise RuntimeError("this refiner needs the PCA texture model: call attach_pca() first")
            else:  # resize(T_pca, size), without making T_pca at T_sample's size
                small_pca = self.pca(t_sample * (visibility > 0.5), visibility, size=size)
            chart = self.chart(size[0], t_sample.device).expand(t_sample.shape[0], -1, -1, -1)
            extra = [small_pca, chart]
        net_input = torch.cat([self.network_input(small_sample, small_visibility), *extra], dim=1)
        if crop is not None:
            top, left, c = crop
            net_input = net_input[..., top : top + c, left : left + c]
        raw = self.unet(net_input).float()
        if crop is not None:
            return self.blend(raw, *(x[..., top : top + c, left : left + c] for x in (t_sample, visibility)),
                              small_pca[..., top : top + c, left : left + c] if self.config.pca_input else None)
        return self.blend(raw, t_sample, visibility, small_pca if self.config.pca_input else None)

    def blend(self, raw, t_sample, visibility, small_pca) -> RefinerOutput:
        """The network's raw output -> T_refine, M at T_sample's size, and T_final = T_sample⊙M + T_refine⊙(1−M)."""
        full = t_sample.shape[-2:]
        if self.config.pca_input:
            t_refine = resize((small_pca + raw[:, :3]).clamp(0, 1), full)  # residual over the PCA estimate
            if torch.is_grad_enabled():
                t_refine = (t_refine + fine_detail(t_sample, raw.shape[-2:])).clamp(0, 1)
            else:  # inference: in place, as the blend below
                t_refine = t_refine.contiguous().add_(fine_detail(t_sample, raw.shape[-2:])).clamp_(0, 1)
            blend_mask = resize(torch.sigmoid(raw[:, 3:]), full)
            if torch.is_grad_enabled():
                blend_mask = visibility + (1 - visibility) * blend_mask
            else:  # inference: in place (the same arithmetic), no full-size temporaries
                blend_mask = blend_mask.contiguous().mul_(1 - visibility).add_(visibility)
        else:
            t_refine = resize(torch.sigmoid(raw[:, :3]), full)
            blend_mask = resize(torch.sigmoid(raw[:, 3:]), full)
        if torch.is_grad_enabled():
            t_final = t_sample * blend_mask + t_refine * (1 - blend_mask)
        else:  # one pass, one full-size buffer: T_refine + M·(T_sample − T_refine), equal to rounding
            t_final = torch.lerp(t_refine, t_sample, blend_mask)
        return RefinerOutput(t_final, t_refine, blend_mask)


class LazovaNet(_TextureNet):
    """Baseline after Lazova et al. 2019: predicts the whole texture directly at net_size."""

    def __init__(self, config: ModelConfig | None = None):
        super().__init__(config or ModelConfig.default("lazova"), "lazova")

    def forward(self, partial_texture: torch.Tensor, visibility: torch.Tensor,
                crop: tuple[int, int, int] | None = None) -> torch.Tensor:
        """`crop` = (top, left, size): run on that window of the net_size atlas only (training on crops)."""
        size = (self.config.net_size, self.config.net_size)
        small_partial, small_visibility = resize_partial(partial_texture, visibility, size)
        net_input = self.network_input(small_partial, small_visibility)
        if crop is not None:
            top, left, c = crop
            return torch.sigmoid(self.unet(net_input[..., top : top + c, left : left + c]).float())
        raw = self.unet(net_input).float()
        return resize(torch.sigmoid(raw), partial_texture.shape[-2:])


NETWORKS = {"sampler": SamplerNet, "refiner": RefinerNet, "lazova": LazovaNet}


def build_model(config: ModelConfig) -> _TextureNet:
    """The network a config describes (random initial weights: for training, or to load into)."""
    return NETWORKS[config.kind](config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
