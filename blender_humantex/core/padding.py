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


def chart_mask(size: int) -> np.ndarray:
    """The SMPL UV chart mask at size² (bool). Not remembered: the tables made from it are (a 4096² mask is
    16 MB that a warm worker would hold for nothing)."""
    from .uv_layout import get_layout

    if size <= LAYOUT_PADDING_MAX:
        return get_layout(size).chart_mask
    small = get_layout(LAYOUT_PADDING_MAX).chart_mask.astype(np.uint8)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_NEAREST) > 0


def _nearest_labels(inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels int32 size², lut int32): lut[labels[t]] is the flat index of the chart texel nearest to t."""
    # OpenCV labels every zero pixel and gives each other pixel the label of its nearest zero pixel.
    distance, labels = cv2.distanceTransformWithLabels((~inside).astype(np.uint8), cv2.DIST_L2, 5,
                                                       labelType=cv2.DIST_LABEL_PIXEL)
    del distance
    labels = labels.reshape(-1)
    zeros = np.flatnonzero(inside).astype(np.int32)  # (flat indices fit int32 up to 46340²)
    lut = np.zeros(int(labels.max()) + 1, np.int32)
    lut[labels[zeros]] = zeros
    return labels, lut


@lru_cache(maxsize=4)
def nearest_chart_texel(size: int) -> np.ndarray:
    """int64 size²: for every texel, the flat index of the nearest chart texel (itself inside the charts)."""
    labels, lut = _nearest_labels(chart_mask(size))
    index = lut[labels].astype(np.int64)
    index.setflags(write=False)
    return index


@lru_cache(maxsize=4)
def outside_sources(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(flat indices of the texels outside the charts, flat index of each one's nearest chart texel), int32:
    pad_charts as an in-place copy of the outside texels only. Made without the size² index nearest_chart_texel
    holds (at 4096² that is 134 MB kept and ~0.3 GB more while it is made); 31 MB kept at 4096²."""
    inside = chart_mask(size)
    labels, lut = _nearest_labels(inside)
    outside = np.flatnonzero(~inside).astype(np.int32)
    source = lut[labels[outside]]
    for array in (outside, source):
        array.setflags(write=False)
    return outside, source


def pad_charts(image: np.ndarray) -> np.ndarray:
    """image H×W or H×W×C (square, SMPL UV layout) -> a copy where every texel outside the charts holds the
    colour of the nearest chart texel (a Voronoi dilation: only texture colours, no blur, no black)."""
    size = image.shape[0]
    flat = image.reshape(size * size, -1)
    return flat[nearest_chart_texel(size)].reshape(image.shape)
