"""The classical baseline row of the evaluation: no learning, only symmetry and inpainting.

classical_fill(partial, visibility):
1. visible texels stay exactly as they are;
2. an unseen chart texel whose left/right mirror texel was seen takes that colour (mirror fill,
   through the layout's `mirror_yx`);
3. what is still unknown inside the UV charts is inpainted with OpenCV's Telea method. Texels outside
   the charts are marked unknown too, so the black background never bleeds into the fill; they are
   zero in the result.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import InputError

INPAINT_RADIUS_256 = 3  # texels at 256²; scaled with the texture size
INPAINT_MAX_SIZE = 512  # chart_fill inpaints at most at this size, then upsamples


def _check(partial: np.ndarray, visibility: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    partial = np.asarray(partial)
    visibility = np.asarray(visibility)
    if partial.ndim != 3 or partial.shape[2] != 3:
        raise InputError(f"partial texture must be H×W×3, got shape {partial.shape}", kind="bad_partial")
    if partial.shape[0] != partial.shape[1]:
        raise InputError(f"partial texture must be square (SMPL UV), got {partial.shape[1]}×{partial.shape[0]}",
                         kind="bad_partial")
    if visibility.ndim == 3 and visibility.shape[2] == 1:
        visibility = visibility[..., 0]
    if visibility.shape != partial.shape[:2]:
        raise InputError(f"visibility is {visibility.shape} but the partial texture is {partial.shape[:2]}",
                         kind="size_mismatch")
    if partial.dtype == np.uint8:
        partial = partial.astype(np.float32) / 255.0
    partial = partial.astype(np.float32, copy=False)
    if not (np.isfinite(partial).all() and np.isfinite(visibility).all()):
        raise InputError("partial texture or visibility contains NaN or infinite values", kind="bad_partial")
    return np.clip(partial, 0.0, 1.0), visibility.astype(np.float32) > 0.5


def classical_fill(partial: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """Complete a partial SMPL-UV texture by mirror fill, then Telea inpainting inside the charts.

    partial: H×W×3 float in [0,1] (or uint8), square; visibility: H×W (or H×W×1), > 0.5 = seen.
    Returns float32 H×W×3 in [0,1]: seen texels unchanged, every other chart texel filled, 0 outside.
    """
    from .uv_layout import get_layout

    partial, seen = _check(partial, visibility)
    layout = get_layout(partial.shape[0])
    chart = layout.chart_mask
    seen &= chart
    out = np.where(seen[..., None], partial, 0.0).astype(np.float32)

    mirror = layout.mirror_yx
    has_mirror = mirror[..., 0] >= 0
    mr, mc = np.where(has_mirror, mirror[..., 0], 0), np.where(has_mirror, mirror[..., 1], 0)
    from_mirror = chart & ~seen & has_mirror & seen[mr, mc]
    out[from_mirror] = partial[mr[from_mirror], mc[from_mirror]]
    known = seen | from_mirror
    if not known.any():
        raise InputError("the visibility mask shows no texel of the UV charts: nothing to fill from",
                         kind="empty_visibility")

    unknown = ~known
    if (unknown & chart).any():
        radius = max(1, round(INPAINT_RADIUS_256 * partial.shape[0] / 256))
        u8 = np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)
        filled = cv2.inpaint(u8, unknown.astype(np.uint8), radius, cv2.INPAINT_TELEA)
        fill_here = unknown & chart
        out[fill_here] = filled[fill_here].astype(np.float32) / 255.0
    out[~chart] = 0.0
    return out


def chart_fill(partial: np.ndarray, visibility: np.ndarray, chart_mask: np.ndarray) -> np.ndarray:
    """The classical fill for any UV layout (no mirror map): Telea inpainting inside `chart_mask`.

    For textures in a mesh's own UV map, which the networks and the SMPL mirror table do not know.
    Inpainting runs at most at INPAINT_MAX_SIZE² (its cost grows with the unknown area times the
    radius²) and the result is upsampled into the unknown texels; seen texels keep their colour.
    Returns float32 H×W×3 in [0,1], 0 outside the charts.
    """
    partial, seen = _check(partial, visibility)
    chart = np.asarray(chart_mask, dtype=bool)
    if chart.shape != seen.shape:
        raise InputError(f"chart mask is {chart.shape} but the texture is {seen.shape}", kind="size_mismatch")
    seen &= chart
    if not seen.any():
        raise InputError("no texel inside the UV charts was seen: nothing to fill from", kind="empty_visibility")
    size = partial.shape[0]
    small = min(size, INPAINT_MAX_SIZE)
    u8 = np.clip(np.where(seen[..., None], partial, 0.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    unknown = (~seen).astype(np.uint8)
    if small < size:
        # area-average the seen colours only (weights), so black unseen texels do not darken the edges
        weight = cv2.resize(seen.astype(np.float32), (small, small), interpolation=cv2.INTER_AREA)
        colour = cv2.resize(np.where(seen[..., None], partial, 0.0).astype(np.float32), (small, small),
                            interpolation=cv2.INTER_AREA)
        u8 = np.clip(colour / np.maximum(weight, 1e-6)[..., None] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        unknown = (weight < 0.5).astype(np.uint8)
    radius = max(1, round(INPAINT_RADIUS_256 * small / 256))
    filled = cv2.inpaint(u8, unknown, radius, cv2.INPAINT_TELEA).astype(np.float32) / 255.0
    if small < size:
        filled = cv2.resize(filled, (size, size), interpolation=cv2.INTER_LINEAR)
    out = np.where(seen[..., None], partial, filled).astype(np.float32)
    out[~chart] = 0.0
    return out
