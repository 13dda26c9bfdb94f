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
