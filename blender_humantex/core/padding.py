"""Chart padding: fill the texels outside the UV charts from the charts, as texture bakers do.

A renderer's bilinear filtering and mipmaps read texels just outside a chart's border; if those are
black (or noise), every seam shows a dark line. `pad_charts` gives every texel outside the charts the
colour of its nearest chart texel, so the charts' border colours run outward (as a baker's dilation
does, without a limit), and nothing outside the charts is black.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

LAYOUT_PADDING_MAX = 2048  # above this, the chart mask is the 2048² one upsampled (the layout build is slow)


@lru_cache(maxsize=4)
def chart_mask(size: int) -> np.ndarray:
    """The SMPL UV chart mask at size² (bool)."""
    from .uv_layout import get_layout

    if size <= LAYOUT_PADDING_MAX:
        return get_layout(size).chart_mask
    small = get_layout(LAYOUT_PADDING_MAX).chart_mask.astype(np.uint8)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_NEAREST) > 0


@lru_cache(maxsize=4)
def nearest_chart_texel(size: int) -> np.ndarray:
    """int64 size²: for every texel, the flat index of the nearest chart texel (itself inside the charts)."""
    inside = chart_mask(size)
    # OpenCV labels every zero pixel and gives each other pixel the label of its nearest zero pixel.
    _, labels = cv2.distanceTransformWithLabels((~inside).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    zeros = np.flatnonzero(inside)
    lut = np.zeros(labels.max() + 1, np.int64)
    lut[labels.reshape(-1)[zeros]] = zeros
    index = lut[labels.reshape(-1)]
    index.setflags(write=False)
    return index


@lru_cache(maxsize=4)
def outside_sources(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(flat indices of the texels outside the charts, flat index of each one's nearest chart texel), int64:
    pad_charts as an in-place copy of the outside texels only."""
    outside = np.flatnonzero(~chart_mask(size))
    source = nearest_chart_texel(size)[outside]
    return outside, source


def pad_charts(image: np.ndarray) -> np.ndarray:
    """image H×W or H×W×C (square, SMPL UV layout) -> a copy where every texel outside the charts holds the
    colour of the nearest chart texel (a Voronoi dilation: only texture colours, no blur, no black)."""
    size = image.shape[0]
    flat = image.reshape(size * size, -1)
    return flat[nearest_chart_texel(size)].reshape(image.shape)
