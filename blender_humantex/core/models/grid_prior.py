"""The sampling-grid prior: where a texel would look for its colour before any learning.

SamplerNet predicts a sampling grid. With `ModelConfig.grid_prior == "seen"` that grid is
parameterised as   identity + prior_offset(visibility) + learned_offset   where the prior sends each
unseen texel to a seen texel:

  1. its left/right mirror partner (core.uv_layout mirror_yx), if that partner was seen;
  2. else the nearest seen texel of the same DensePose part (Euclidean distance in the atlas);
  3. else the nearest seen texel anywhere.

Seen texels keep offset 0. The network's learned offset starts at zero (SamplerNet zero-initialises
its last layer), so an untrained sampler already equals a "mirror, then nearest same-part texel"
fill, and training only has to learn corrections (e.g. shifting by a pattern period, or fetching the
back from the front). Why: on 2 CPU cores the sampler gets ~1k training steps, far too few to
discover the mirror and nearest-texel structure from scratch through grid_sample's local gradients.

The prior is a deterministic function of the visibility mask and the UV layout (numpy/scipy, no
gradient), computed at min(H, PRIOR_MAX_SIZE) and upsampled like the learned offset.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

PRIOR_MAX_SIZE = 256


@lru_cache(maxsize=8)
def _layout_tables(size: int):
    from ..uv_layout import get_layout

    layout = get_layout(size)
    part = layout.part_label
    boxes = {}
    for p in range(1, 25):
        ys, xs = np.nonzero(part == p)
        if len(ys):
            boxes[p] = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    return layout.chart_mask, part, layout.mirror_yx, boxes


def seen_source(seen: np.ndarray, same_part: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the texel each unseen chart texel reads from, for one square boolean `seen` mask:
    its mirror partner if seen, else the nearest seen texel of its own DensePose part (`same_part`) or
    anywhere (not `same_part`: the sampler loss's guide), else the nearest seen texel anywhere."""
    size = seen.shape[0]
    chart, part, mirror_yx, boxes = _layout_tables(size)
    src_y, src_x = np.mgrid[:size, :size]
    todo = chart & ~seen
    if not seen.any() or not todo.any():
        return src_y, src_x

    my, mx = mirror_yx[..., 0], mirror_yx[..., 1]
    has_partner = todo & (my >= 0) & (mx >= 0)
    partner_seen = np.zeros_like(todo)
    partner_seen[has_partner] = seen[my[has_partner], mx[has_partner]]
    src_y[partner_seen], src_x[partner_seen] = my[partner_seen], mx[partner_seen]
    todo &= ~partner_seen

    for p, (rows, cols) in boxes.items() if same_part else ():
        in_part = part[rows, cols] == p
        need = todo[rows, cols] & in_part
        have = seen[rows, cols] & in_part
        if not need.any() or not have.any():
            continue
        _, (iy, ix) = ndimage.distance_transform_edt(~have, return_indices=True)
        src_y[rows, cols][need] = iy[need] + rows.start
        src_x[rows, cols][need] = ix[need] + cols.start
        todo[rows, cols] &= ~need

    if todo.any():
        _, (iy, ix) = ndimage.distance_transform_edt(~seen, return_indices=True)
        src_y[todo], src_x[todo] = iy[todo], ix[todo]
    return src_y, src_x


def seen_source_offset(visibility: torch.Tensor) -> torch.Tensor:
    """N×2×r×r prior offset (x, y) in normalised grid coordinates, r = min(H, PRIOR_MAX_SIZE).

    `visibility` is an N×1×H×W tensor (square, H = W); it is area-resized to r and thresholded at 0.5.
    """
    n, _, h, w = visibility.shape
    r = min(h, PRIOR_MAX_SIZE)
    small = visibility.detach().float()
    if r != h:
        small = F.interpolate(small, size=(r, r), mode="area")
    seen_masks = (small[:, 0] > 0.5).cpu().numpy()
    offsets = np.zeros((n, 2, r, r), dtype=np.float32)
    xs = np.arange(r)
    for i, seen in enumerate(seen_masks):
        src_y, src_x = seen_source(seen)
        offsets[i, 0] = (src_x - xs[None, :]) * (2.0 / r)
        offsets[i, 1] = (src_y - xs[:, None]) * (2.0 / r)
    return torch.from_numpy(offsets).to(visibility.device)


# ----------------------------------------------------------------------------- the smooth fill

# What the correspondence prior cannot reach (no seen source after its passes: a hand the photo does not
# show, texels of a fine atlas's chart border that the prior's coarser chart leaves out) gets a smooth
# interpolation of the colours around it, within its own DensePose part: a push-pull (Gortler et al. 1996,
# the Lumigraph's pull-push) of the known texels. Why not the "nearest seen texel" grid above: that copies
# one texel per ray, so every border fans out into streaks and a part with nothing seen reads texels of
# another part. Computed at SMOOTH_FILL_SIZE² and upsampled bilinearly: smooth by construction, no blocks.
SMOOTH_FILL_SIZE = 128


@lru_cache(maxsize=4)
def _fill_tables(size: int):
    """(part of every texel, background included: its nearest chart texel's part; each part's bounding box
    of that; chart part labels; flat index of each texel's mirror texel (of the nearest chart texel), -1 none)."""
    from ..uv_layout import get_layout

    layout = get_layout(size)
    part = layout.part_label.astype(np.int64)
    _, (iy, ix) = ndimage.distance_transform_edt(part == 0, return_indices=True)
    nearest = part[iy, ix]
    boxes = {}
    for p in range(1, 25):
        ys, xs = np.nonzero(nearest == p)
        if len(ys):
            boxes[p] = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    my, mx = layout.mirror_yx[iy, ix, 0], layout.mirror_yx[iy, ix, 1]
    mirror = np.where(my >= 0, my * size + mx, -1)
    return torch.from_numpy(nearest), boxes, torch.from_numpy(part), torch.from_numpy(mirror.reshape(-1))


def push_pull(colour: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth interpolation of scattered colours. colour N×C×h×w (premultiplied by weight), weight N×1×h×w
    in [0, 1] -> (fill N×C×h×w, has N: whether any weight was there). Pull: halve the resolution, weights
    summed and clamped at 1, colours weight-averaged; push: back up, each level keeping its own colour
    by its weight and taking the coarser level's, bilinearly upsampled, for the rest."""
    import torch.nn.functional as F

    levels = [(colour, weight)]
    while max(levels[-1][1].shape[-2:]) > 1:
        c, w = levels[-1]
        c_sum = F.avg_pool2d(c, 2, ceil_mode=True) * 4  # N×C×h/2×w/2: Σ children w·colour
        w_sum = F.avg_pool2d(w, 2, ceil_mode=True) * 4
        mean = c_sum / w_sum.clamp_min(1e-6)
        w_next = w_sum.clamp(max=1.0)
        levels.append((mean * w_next, w_next))
    c, w = levels[-1]
    fill = c / w.clamp_min(1e-6)
    for c, w in reversed(levels[:-1]):
        up = F.interpolate(fill, size=c.shape[-2:], mode="bilinear", align_corners=False)
        fill = c + (1 - w) * up  # c is already w·colour
    return fill, levels[-1][1].flatten(1).amax(1) > 0


def smooth_fill(texture: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """texture N×3×H×W, known N×1×H×W (1 where the texture holds a seen or sampled colour) -> N×3×H×W:
    known texels as they are, the others the push-pull of their part's known texels; a part with none
    takes its mirror part's fill (through the mirror table), and if that has none too, the push-pull of
    every known texel."""
    from .resample import resize, resize_partial

    n, _, h, w = texture.shape
    r = min(h, SMOOTH_FILL_SIZE)
    small, weight = resize_partial(texture, known, (r, r)) if r != h else (texture, known)
    nearest, boxes, part, mirror = _fill_tables(r)
    nearest, part, mirror = nearest.to(texture.device), part.to(texture.device), mirror.to(texture.device)
    fill = torch.zeros(n, 3, r, r, dtype=texture.dtype, device=texture.device)
    has = torch.zeros(n, 25, dtype=torch.bool, device=texture.device)
    for p, (rows, cols) in boxes.items():
        part_weight = weight[..., rows, cols] * (part[rows, cols] == p)  # N×1×bh×bw: this part's known texels
        part_fill, has[:, p] = push_pull(small[..., rows, cols] * part_weight, part_weight)
        region = nearest[rows, cols] == p
        fill[..., rows, cols] = torch.where(region, part_fill, fill[..., rows, cols])
    everywhere, _ = push_pull(small * weight, weight)
    from ..uv_layout import PART_MIRROR

    mirror_part = torch.from_numpy(PART_MIRROR.astype(np.int64)).to(texture.device)[nearest]  # r×r
    own = has.gather(1, nearest.reshape(1, -1).expand(n, -1)).view(n, 1, r, r)
    other = has.gather(1, mirror_part.reshape(1, -1).expand(n, -1)).view(n, 1, r, r) & (mirror >= 0).view(1, 1, r, r)
    mirrored = fill.flatten(2)[..., mirror.clamp_min(0)].view(n, 3, r, r)
    fill = torch.where(own, fill, torch.where(other, mirrored, everywhere))
    unknown = 1 - known
    return texture * known + resize(fill, (h, w)) * unknown
