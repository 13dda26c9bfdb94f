"""Image-space rasters shared by the sources: the depth buffer of a projected mesh, its 1/z planes and
depth edges, and the silhouette erosion (all vectorised numpy)."""

from __future__ import annotations

import numpy as np

from ..uv_layout import triangle_fragments

# Neighbouring pixels whose depths differ by more than this fraction are a depth discontinuity (an
# occlusion edge), whose pixels mix two surfaces. A surface at 87° from the view ray changes depth
# by under 1/50 of its depth per pixel at any usual focal length, so surfaces themselves do not trip it.
EDGE_TOLERANCE = 0.02


def erode(mask: np.ndarray, px: int, kernel: str) -> np.ndarray:
    """A bool mask eroded by px pixels (image edge = outside). kernel "ellipse": a disc of radius px
    (the DensePose silhouette, round like a body's outline); "square": a pixel survives when its whole
    (2px+1)² block is in the mask (the projection's margins, a conservative bound in every direction)."""
    if px <= 0:
        return mask
    import cv2

    if kernel == "ellipse":
        element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    else:
        element = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
    # border value 0: pixels on the image edge count as outline too
    return cv2.erode(mask.astype(np.uint8), element, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def depth_buffer(screen_xy: np.ndarray, inv_z: np.ndarray, height: int, width: int):
    """Nearest surface per pixel: (1/z float32 H×W, 0 where empty; triangle id int32 H×W, -1 where empty).

    screen_xy: T×3×2 projected corners (OpenCV pixels, centres at integers); inv_z: T×3 1/z of the
    corners (> 0; triangles with a corner behind the camera must be left out by the caller as NaN).
    1/z is linear in screen space, so it is interpolated with the screen-space barycentrics.
    """
    buf = np.zeros(height * width, dtype=np.float32)
    inv_z = inv_z.astype(np.float32)
    frags = []
    # float32 is ample: the depth test's tolerance is 2e-3 of the depth, float32 resolves 1e-7
    for faces, rows, cols, bary in triangle_fragments(screen_xy + 0.5, height, width, dtype=np.float32):
        pix = rows * width + cols
        z = inv_z[faces]
        w = bary[:, 0] * z[:, 0] + bary[:, 1] * z[:, 1] + bary[:, 2] * z[:, 2]
        np.maximum.at(buf, pix, w)
        frags.append((faces, pix, w))
    face_id = np.full(height * width, -1, dtype=np.int32)
    for faces, pix, w in frags:
        front = w >= buf[pix]
        face_id[pix[front]] = faces[front]
    return buf.reshape(height, width), face_id.reshape(height, width)


def inv_z_planes(screen_xy: np.ndarray, inv_z: np.ndarray) -> np.ndarray:
    """Per triangle (a, b, c) with 1/z = a·x + b·y + c over the screen (T×3; NaN for degenerate ones)."""
    x0, y0 = screen_xy[:, 0, 0], screen_xy[:, 0, 1]
    e1x, e1y = screen_xy[:, 1, 0] - x0, screen_xy[:, 1, 1] - y0
    e2x, e2y = screen_xy[:, 2, 0] - x0, screen_xy[:, 2, 1] - y0
    d1, d2 = inv_z[:, 1] - inv_z[:, 0], inv_z[:, 2] - inv_z[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        det = e1x * e2y - e2x * e1y
        a = (d1 * e2y - d2 * e1y) / det
        b = (d2 * e1x - d1 * e2x) / det
    c = inv_z[:, 0] - a * x0 - b * y0
    return np.stack([a, b, c], axis=1)


def depth_edges(inv_z: np.ndarray) -> np.ndarray:
    """Pixels next to a depth discontinuity (both sides), from the 1/z buffer (0 = empty)."""
    edge = np.zeros(inv_z.shape, dtype=bool)
    for axis in (0, 1):
        a = np.take(inv_z, np.arange(inv_z.shape[axis] - 1), axis=axis)
        b = np.take(inv_z, np.arange(1, inv_z.shape[axis]), axis=axis)
        both = (a > 0) & (b > 0)
        # |z_a - z_b| > tol·min(z): in 1/z terms |b - a| > tol·max(a, b)... up to second order
        jump = both & (np.abs(a - b) > EDGE_TOLERANCE * np.minimum(a, b))
        if axis == 0:
            edge[:-1] |= jump
            edge[1:] |= jump
        else:
            edge[:, :-1] |= jump
            edge[:, 1:] |= jump
    return edge
