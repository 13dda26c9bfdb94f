"""The `iuv` source: DensePose IUV + photo -> partial SMPL-UV texture and its visibility mask.

Method (inverse mapping, so a small person never leaves holes in a large texture):
1. The chosen person's pixels are taken from the IUV (and INDS), and the silhouette is eroded so that
   texels near the body's outline never pick up background. DensePose's outline is only as sharp as its
   per-box output grid, so its error grows with the person's size: by default the erosion does too
   (1 px per AUTO_ERODE_PER_PX pixels of the person's longer side, 1..AUTO_ERODE_MAX px).
2. Every 2×2 block of neighbouring pixels on the same body part spans two triangles of the surface.
   Each part's DensePose (U, V) square is a 256² grid (IUV values are 8-bit); the triangles are
   rasterised into it, interpolating the photo position (x, y) of their corners. Grid cells hit by
   pixels directly keep the mean position of those pixels. Triangles much larger in (U, V) than the
   part's usual pixel step span a fold or a DensePose error and are dropped.
3. Every chart texel of the SMPL UV layout knows its DensePose (part, U, V) (see uv_layout); it looks up
   its photo position bilinearly in that grid and samples the photo bilinearly there.

IUV images: I is the part index 0..24 (0 = background), U and V are 0..255. Files come in two channel
orders when read as RGB: "vui" (R = V, G = U, B = I: what DensePose/detectron and OpenCV's imwrite of
an I,U,V array give, the usual case) and "iuv" (R = I, G = U, B = V, e.g. pose-with-style's files).
The default, "auto", picks the order whose I channel holds only 0..24 and fails with a clear message
when both or neither could be I.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import numpy as np

from ..errors import InputError
from ..files import to_plain
from ..imageio import DEFAULT_MAX_PIXELS, read_raw_u8, read_rgb
from ..request import check_size
from ..uv_layout import DP_GRID, LAYOUT_ID, get_layout, rasterize_triangles
from .partial import PartialTexture, as_photo
from .raster import erode

# The unwrap's own texture sizes, inside uv_layout's MIN_SIZE..MAX_SIZE (see working_size).
MIN_TEXTURE_SIZE, MAX_TEXTURE_SIZE = 256, 2048
IUV_ORDERS = ("auto", "vui", "iuv")
N_PARTS = 24
DEFAULT_ERODE_PX = None  # None: grows with the person's size (see auto_erode_px)
AUTO_ERODE_PER_PX = 250
AUTO_ERODE_MAX = 6
# An explicit erosion may be at most this share of the image's shorter side (a person is rarely
# thinner than 10% of the frame, so more would erode the whole silhouette).
MAX_ERODE_FRACTION = 0.05
# A triangle of neighbouring pixels whose longest (U, V) edge exceeds this many times the part's
# 90th-percentile pixel step (or STRETCH_FLOOR grid cells, whichever is larger) is a fold or an error.
STRETCH_FACTOR = 4.0
STRETCH_FLOOR = 6.0
# Where in a grid cell a stored U, V value sits. DensePose's own code reads U = stored / 255 (offset 0),
# and so does this module. (Against SMPLitex's partial texture, -0.5 scores 0.3 dB higher and +0.5 0.9 dB
# lower; that reference has its own rounding, so DensePose's convention is kept.)
IUV_CELL_CENTRE = 0.0


# ---------------------------------------------------------------- input checks


def iuv_channels(raw: np.ndarray, order: str = "auto") -> tuple[np.ndarray, str]:
    """An IUV image as stored (H×W×3 uint8, RGB as read) -> (I,U,V-ordered H×W×3 uint8, order used)."""
    if order not in IUV_ORDERS:
        raise InputError(f"--iuv-order must be one of {', '.join(IUV_ORDERS)}, got {order!r}", kind="bad_argument")
    if raw.ndim != 3 or raw.shape[2] < 3:
        raise InputError(
            f"not a DensePose IUV image: expected 3 colour channels (I, U, V), got shape {raw.shape}", kind="not_iuv"
        )
    raw = raw[..., :3]
    if raw.dtype != np.uint8:
        raise InputError(f"IUV must be 8-bit (uint8), got {raw.dtype}", kind="not_iuv")
    if order == "auto":
        r_ok, b_ok = int(raw[..., 0].max()) <= N_PARTS, int(raw[..., 2].max()) <= N_PARTS
        if b_ok and not r_ok:
            order = "vui"
        elif r_ok and not b_ok:
            order = "iuv"
        elif r_ok and b_ok:
            if not raw[..., 0].any() and not raw[..., 2].any():
                raise InputError("no person in the IUV image (every pixel has part index 0)", kind="no_person")
            raise InputError(
                "cannot tell the IUV channel order (red and blue both look like part indices 0..24);"
                " pass --iuv-order vui or iuv",
                kind="ambiguous_iuv",
            )
        else:
            raise InputError(
                f"not a DensePose IUV image: no channel holds part indices 0..{N_PARTS}"
                f" (max R={int(raw[..., 0].max())}, B={int(raw[..., 2].max())})",
                kind="not_iuv",
            )
    iuv = raw[..., ::-1] if order == "vui" else raw
    top = int(iuv[..., 0].max())
    if top > N_PARTS:
        raise InputError(
            f"not a DensePose IUV image in '{order}' order: part index channel reaches {top} (must be 0..{N_PARTS});"
            " check --iuv-order",
            kind="not_iuv",
        )
    return np.ascontiguousarray(iuv), order


def _as_inds(inds: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    inds = np.asarray(inds)
    if inds.ndim == 3:
        if not (np.array_equal(inds[..., 0], inds[..., 1]) and np.array_equal(inds[..., 0], inds[..., 2])):
            raise InputError("INDS must be a grey instance map (one person index per pixel), got colour", kind="bad_inds")
        inds = inds[..., 0]
    if inds.ndim != 2 or inds.shape != shape:
        raise InputError(f"INDS is {inds.shape[::-1]} but the IUV is {shape[::-1]} (width, height)", kind="size_mismatch")
    return inds


def select_person(iuv: np.ndarray, inds: np.ndarray | None, person: int | None):
    """The chosen person's pixel mask, its index, and {person index: pixel count} for all persons found."""
    body = iuv[..., 0] > 0
    if inds is None:
        count = int(body.sum())
        persons = {1: count} if count else {}
        if person not in (None, 1):
            raise InputError(f"--person {person} needs an INDS instance map (--inds); without one the IUV is one person",
                             kind="no_such_person")
        chosen = 1
        mask = body
    else:
        inds = _as_inds(inds, iuv.shape[:2])
        labels, counts = np.unique(inds[body], return_counts=True)
        persons = {int(k): int(c) for k, c in zip(labels, counts, strict=False) if k != 0}
        if person is None:
            chosen = max(persons, key=lambda k: (persons[k], -k)) if persons else None
        else:
            chosen = int(person)
            if persons and chosen not in persons:
                found = ", ".join(f"{k} ({c} px)" for k, c in sorted(persons.items()))
                raise InputError(f"no person {chosen} in the INDS map; persons found: {found}", kind="no_such_person")
        mask = body & (inds == chosen) if chosen is not None else np.zeros_like(body)
    if inds is not None and body.any() and not persons:
        raise InputError(
            "the INDS map marks no person where the IUV image has a body (it is 0 under every body pixel):"
            " check that the INDS file belongs to this IUV image",
            kind="bad_inds",
        )
    if not persons or not mask.any():
        raise InputError("no person in the IUV image (every pixel has part index 0)", kind="no_person")
    return mask, chosen, persons


def _check_unwrap_size(size) -> int:
    return check_size(size, low=MIN_TEXTURE_SIZE, high=MAX_TEXTURE_SIZE)


def working_size(output_size: int) -> int:
    """The texture size the unwrap works at for a given output size: the output size, brought into
    MIN_TEXTURE_SIZE..MAX_TEXTURE_SIZE (the completion then resizes the partial to the output size)."""
    return min(max(int(output_size), MIN_TEXTURE_SIZE), MAX_TEXTURE_SIZE)


# ---------------------------------------------------------------- the mapping


# Triangles of neighbouring pixels on one part: (a, b, c) and (b, d, c) in each 2×2 block, where
# a = (r, c), b = (r, c+1), c = (r+1, c), d = (r+1, c+1). Offsets are (row, col) from the block corner.
PIXEL_TRIANGLES = (((0, 0), (0, 1), (1, 0)), ((0, 1), (1, 1), (1, 0)))


def photo_position_grid(iuv: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For every DensePose point (part, V, U) on the 256² grids: where the person shows it in the image.

    Returns float32 25×256×256×2 (x, y) in IUV pixel coordinates (pixel centres at integers); NaN where
    the person does not show that point.
    """
    part = np.where(mask, iuv[..., 0], 0).astype(np.int16)
    u = iuv[..., 1].astype(np.int16)
    v = iuv[..., 2].astype(np.int16)
    view = {}
    for dr in (0, 1):
        for dc in (0, 1):
            sl = (slice(dr, part.shape[0] - 1 + dr), slice(dc, part.shape[1] - 1 + dc))
            view[dr, dc] = (part[sl], u[sl], v[sl])
    same, ext = [], []
    for corners in PIXEL_TRIANGLES:
        (p0, u0, v0), (p1, u1, v1), (p2, u2, v2) = (view[k] for k in corners)
        same.append((p0 > 0) & (p1 == p0) & (p2 == p0))
        # (U, V) bounding-box extent of the triangle: the stretch measure, cheap in integers
        ext_u = np.maximum(np.maximum(u0, u1), u2) - np.minimum(np.minimum(u0, u1), u2)
        ext_v = np.maximum(np.maximum(v0, v1), v2) - np.minimum(np.minimum(v0, v1), v2)
        ext.append(np.maximum(ext_u, ext_v))
    grid = _rasterised_grid(view, same, ext, _stretch_limits(view, same, ext))
    _direct_cells(grid, part, u, v)
    return grid


def _stretch_limits(view: dict, same: list, ext: list) -> np.ndarray:
    """Per part, the largest (U, V) extent of a kept triangle: from the 90th percentile of the extent
    (a histogram per part)."""
    hist = np.zeros((25, 256), dtype=np.int64)
    for k, corners in enumerate(PIXEL_TRIANGLES):
        p0 = view[corners[0]][0]
        hist += np.bincount(p0[same[k]].astype(np.intp) * 256 + ext[k][same[k]], minlength=25 * 256).reshape(25, 256)
    cdf = np.cumsum(hist, axis=1)
    p90 = np.argmax(cdf >= 0.9 * np.maximum(cdf[:, -1:], 1), axis=1)
    return np.maximum(STRETCH_FLOOR, STRETCH_FACTOR * p90).astype(np.int16)


def _rasterised_grid(view: dict, same: list, ext: list, limit: np.ndarray) -> np.ndarray:
    """The kept pixel triangles rasterised into the 25 part grids, interpolating their corners' image positions."""
    g = DP_GRID
    tri_u, tri_v, tri_p, tri_xy = [], [], [], []
    for k, corners in enumerate(PIXEL_TRIANGLES):
        p0 = view[corners[0]][0]
        # a triangle inside one 1×1 cell square covers no grid point but its own corners, which the
        # direct per-cell means (_direct_cells) already give: skip those (most triangles, for a large person)
        keep = same[k] & (ext[k] > 1) & (ext[k] <= limit[p0])
        r, c = np.nonzero(keep)
        tri_p.append(p0[r, c])
        tri_u.append(np.stack([view[q][1][r, c] for q in corners], axis=1))
        tri_v.append(np.stack([view[q][2][r, c] for q in corners], axis=1))
        tri_xy.append(np.stack([np.stack([c + q[1], r + q[0]], axis=-1) for q in corners], axis=1))
    kp = np.concatenate(tri_p).astype(np.float64)
    grid = np.full((25, g, g, 2), np.nan, dtype=np.float32)
    if len(kp):
        tu = np.concatenate(tri_u).astype(np.float64)
        tv = np.concatenate(tri_v).astype(np.float64)
        corners_xy = np.stack([tu + 0.5 + g * kp[:, None], tv + 0.5], axis=-1)  # grid cell k has its centre at k+0.5
        positions = np.concatenate(tri_xy).astype(np.float32)  # T×3×(x, y) in the image
        index, bary = rasterize_triangles(corners_xy, g, 25 * g)
        hit = index >= 0
        strip = np.full((g, 25 * g, 2), np.nan, dtype=np.float32)
        strip[hit] = np.einsum("nk,nkc->nc", bary[hit], positions[index[hit]])
        grid = np.ascontiguousarray(strip.reshape(g, 25, g, 2).transpose(1, 0, 2, 3))
    return grid


def _direct_cells(grid: np.ndarray, part: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
    """Cells hit by pixels directly take the mean position of those pixels (exact where the person is
    large), in place; part 0 (the background) has no positions."""
    g = DP_GRID
    ys, xs = np.nonzero(part > 0)
    cell = (part[ys, xs].astype(np.int64) * g + v[ys, xs]) * g + u[ys, xs]
    n_cells = 25 * g * g
    count = np.bincount(cell, minlength=n_cells)
    hit = count > 0
    flat = grid.reshape(n_cells, 2)
    flat[hit, 0] = (np.bincount(cell, weights=xs, minlength=n_cells)[hit] / count[hit]).astype(np.float32)
    flat[hit, 1] = (np.bincount(cell, weights=ys, minlength=n_cells)[hit] / count[hit]).astype(np.float32)
    grid[0] = np.nan


@functools.lru_cache(maxsize=4)
def _grid_lookup_maps(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each texel of a size² layout reads the 25 part grids laid side by side (cv2.remap maps)."""
    layout = get_layout(size)
    g = DP_GRID
    fx = np.clip(layout.dp_uv[..., 0] * (g - 1) - IUV_CELL_CENTRE, 0, g - 1) + g * layout.part_label
    fy = np.clip(layout.dp_uv[..., 1] * (g - 1) - IUV_CELL_CENTRE, 0, g - 1)
    outside = ~layout.chart_mask
    fx[outside] = -2.0  # reads the constant 0 border: weight 0, not visible
    fy[outside] = -2.0
    return fx.astype(np.float32), fy.astype(np.float32)


def texel_photo_positions(grid: np.ndarray, layout) -> tuple[np.ndarray, np.ndarray]:
    """Each texel's (x, y) in the IUV image, bilinear in the grid over seen cells, and which texels are seen.

    Returns (xy float32 S×S×2, visible bool S×S). A texel is seen when at least half of its bilinear
    weight falls on seen cells (about: its nearest cell is seen).
    """
    import cv2

    g = DP_GRID
    seen = ~np.isnan(grid[..., 0])
    # (x·w, y·w, w) with w = 1 on seen cells: bilinear sampling then gives the weighted mean over seen cells
    strip = np.zeros((25, g, g, 3), dtype=np.float32)
    strip[seen, :2] = grid[seen]
    strip[seen, 2] = 1.0
    strip = np.ascontiguousarray(strip.transpose(1, 0, 2, 3).reshape(g, 25 * g, 3))
    map_x, map_y = _grid_lookup_maps(layout.size)
    sampled = cv2.remap(strip, map_x, map_y, interpolation=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    weight = sampled[..., 2]
    visible = (weight >= 0.5) & layout.chart_mask
    xy = sampled[..., :2] / np.maximum(weight, 1e-6)[..., None]
    return xy, visible


def max_erode_px(shape: tuple[int, int]) -> int:
    """The largest erosion accepted for an image of this (height, width)."""
    return max(AUTO_ERODE_MAX, int(min(shape) * MAX_ERODE_FRACTION))


def auto_erode_px(mask: np.ndarray) -> int:
    """The default erosion for a person mask: 1 px per AUTO_ERODE_PER_PX px of its bounding box's longer side."""
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if not len(rows):
        return 1
    longer = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    return int(np.clip(round(longer / AUTO_ERODE_PER_PX), 1, AUTO_ERODE_MAX))


def _prepare(iuv, inds, person, erode_px):
    iuv = np.asarray(iuv)
    if iuv.ndim != 3 or iuv.shape[2] != 3 or iuv.dtype != np.uint8:
        raise InputError(f"IUV must be uint8 H×W×3 in I, U, V order, got {iuv.dtype} {iuv.shape}", kind="not_iuv")
    top = int(iuv[..., 0].max())
    if top > N_PARTS:
        raise InputError(f"not a DensePose IUV: part index reaches {top} (must be 0..{N_PARTS})", kind="not_iuv")
    mask, chosen, persons = select_person(iuv, inds, person)
    if erode_px is None:
        erode_px = auto_erode_px(mask)
    elif int(erode_px) < 0:
        raise InputError(f"erosion must be ≥ 0 pixels, got {erode_px}", kind="bad_argument")
    elif int(erode_px) > max_erode_px(iuv.shape[:2]):
        # A kernel of thousands of pixels runs for minutes (or runs out of memory) and erodes any person away.
        raise InputError(
            f"--erode {erode_px} is too much for a {iuv.shape[1]}×{iuv.shape[0]} image: at most"
            f" {max_erode_px(iuv.shape[:2])} px ({MAX_ERODE_FRACTION:.0%} of its shorter side)",
            kind="bad_argument",
        )
    eroded = erode(mask, int(erode_px), "ellipse")
    if not eroded.any():
        eroded = mask  # a person thinner than the erosion: keep what there is rather than nothing
    return mask, eroded, chosen, persons, int(erode_px)


def visibility_from_iuv(iuv: np.ndarray, inds: np.ndarray | None = None, person: int | None = None,
                        size: int = 256, erode_px: int | None = DEFAULT_ERODE_PX) -> np.ndarray:
    """Which texels of a size² SMPL-UV texture the person in this IUV (I,U,V order, uint8) shows: float32 {0,1}.

    Any layout size get_layout accepts (64..4096), so training can use small masks.
    """
    layout = get_layout(size)
    _, eroded, _, _, _ = _prepare(iuv, inds, person, erode_px)
    _, visible = texel_photo_positions(photo_position_grid(iuv, eroded), layout)
    return visible.astype(np.float32)


def unwrap(photo: np.ndarray, iuv: np.ndarray, inds: np.ndarray | None = None, person: int | None = None,
           size: int = 512, erode_px: int | None = DEFAULT_ERODE_PX, on_size_mismatch: str = "error",
           progress=None) -> PartialTexture:
    """Unwrap a photo into a size² partial SMPL-UV texture.

    photo: H×W×3 float in [0, 1] (or uint8; ×4 is composited over black). iuv: uint8 h×w×3 in I, U, V
    order (see iuv_channels for files). inds: optional h×w person index map; person: which one (default:
    the largest). If the photo and the IUV differ in size, on_size_mismatch="resize" treats the IUV as
    covering the whole photo (positions are scaled, nothing is resampled); "error" refuses.
    erode_px: silhouette erosion in IUV pixels; None picks it from the person's size (auto_erode_px).
    """
    timings = {}
    t0 = time.perf_counter()
    report = progress or (lambda stage, fraction: None)
    size = _check_unwrap_size(size)
    photo, iuv = _photo_and_iuv(photo, iuv, on_size_mismatch)
    report("unwrap", 0.0)
    mask, eroded, chosen, persons, erode_px = _prepare(iuv, inds, person, erode_px)
    timings["select_ms"] = (time.perf_counter() - t0) * 1e3

    t = time.perf_counter()
    layout = get_layout(size)
    timings["layout_ms"] = (time.perf_counter() - t) * 1e3
    report("unwrap", 0.3)

    t = time.perf_counter()
    xy, visible = texel_photo_positions(photo_position_grid(iuv, eroded), layout)
    timings["map_ms"] = (time.perf_counter() - t) * 1e3
    report("unwrap", 0.7)

    t = time.perf_counter()
    partial, visibility = _sample_photo(photo, iuv.shape[:2], xy, visible)
    timings["sample_ms"] = (time.perf_counter() - t) * 1e3
    timings["total_ms"] = (time.perf_counter() - t0) * 1e3
    report("unwrap", 1.0)

    chart_texels = int(layout.chart_mask.sum())
    meta = {
        "uv_layout": LAYOUT_ID,
        "size": size,
        "person": chosen,
        "persons": {str(k): v for k, v in sorted(persons.items())},
        "person_pixels": int(mask.sum()),
        "coverage": round(int(visible.sum()) / chart_texels, 6),
        "visible_texels": int(visible.sum()),
        "photo_size": [int(photo.shape[1]), int(photo.shape[0])],
        "iuv_size": [int(iuv.shape[1]), int(iuv.shape[0])],
        "erode_px": int(erode_px),
        "timings_ms": {k: round(v, 2) for k, v in timings.items()},
    }
    return PartialTexture(partial=partial, visibility=visibility, meta=meta)


def _photo_and_iuv(photo, iuv, on_size_mismatch: str) -> tuple[np.ndarray, np.ndarray]:
    """(the photo as float32 H×W×3, the IUV as an array), or InputError when their sizes differ and may not."""
    if on_size_mismatch not in ("error", "resize"):
        raise InputError(f"on_size_mismatch must be 'error' or 'resize', got {on_size_mismatch!r}", kind="bad_argument")
    photo = as_photo(photo)
    iuv = np.asarray(iuv)
    if iuv.ndim == 3 and photo.shape[:2] != iuv.shape[:2] and on_size_mismatch == "error":
        raise InputError(
            f"photo is {photo.shape[1]}×{photo.shape[0]} but the IUV is {iuv.shape[1]}×{iuv.shape[0]};"
            " pass --on-size-mismatch resize to stretch the IUV over the photo",
            kind="size_mismatch",
        )
    return photo, iuv


def _sample_photo(photo: np.ndarray, iuv_shape, xy: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(partial float32 S×S×3, visibility float32 S×S): the photo sampled bilinearly at the seen texels' positions."""
    import cv2

    # IUV pixel centres -> photo pixel centres (identity when the sizes match)
    sx = photo.shape[1] / iuv_shape[1]
    sy = photo.shape[0] / iuv_shape[0]
    map_x = np.where(visible, (xy[..., 0] + 0.5) * sx - 0.5, -1.0).astype(np.float32)
    map_y = np.where(visible, (xy[..., 1] + 0.5) * sy - 0.5, -1.0).astype(np.float32)
    partial = cv2.remap(photo, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    visibility = visible.astype(np.float32)
    partial *= visibility[..., None]
    return partial.astype(np.float32, copy=False), visibility


# ---------------------------------------------------------------- files


def _read_inds(path, max_pixels):
    inds = read_raw_u8(path, max_pixels=max_pixels)
    if inds.ndim == 3:
        inds = _as_inds(inds, inds.shape[:2])
    return inds


def _resize_nearest(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(arr, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


def unwrap_files(photo_path, iuv_path, inds_path=None, person: int | None = None, size: int = 512,
                 iuv_order: str = "auto", on_size_mismatch: str = "error", max_pixels: int = DEFAULT_MAX_PIXELS,
                 erode_px: int | None = DEFAULT_ERODE_PX, progress=None) -> PartialTexture:
    """unwrap() on files: any photo PIL reads (EXIF orientation applied, alpha composited over black)."""
    if progress:
        progress("load", 0.0)
    t = time.perf_counter()
    size = _check_unwrap_size(size)
    photo = read_rgb(photo_path, max_pixels=max_pixels)
    iuv, order = iuv_channels(read_raw_u8(iuv_path, max_pixels=max_pixels), iuv_order)
    inds = _read_inds(inds_path, max_pixels) if inds_path is not None else None
    if inds is not None and inds.shape != iuv.shape[:2]:
        if on_size_mismatch != "resize":
            raise InputError(
                f"INDS is {inds.shape[1]}×{inds.shape[0]} but the IUV is {iuv.shape[1]}×{iuv.shape[0]};"
                " pass --on-size-mismatch resize to resize it",
                kind="size_mismatch",
            )
        inds = _resize_nearest(inds, iuv.shape[:2])
    load_ms = (time.perf_counter() - t) * 1e3
    if progress:
        progress("load", 1.0)
    result = unwrap(photo, iuv, inds=inds, person=person, size=size, erode_px=erode_px,
                    on_size_mismatch=on_size_mismatch, progress=progress)
    meta = dict(result.meta, photo=str(photo_path), iuv=str(iuv_path),
                inds=None if inds_path is None else str(inds_path), iuv_order=order)
    meta["timings_ms"] = dict(meta["timings_ms"], load_ms=round(load_ms, 2))
    return dataclasses.replace(result, meta=meta, photo=photo)


def read(request, size, progress=None, on_size_mismatch: str = "error",
         erode_px: int | None = DEFAULT_ERODE_PX) -> PartialTexture:
    """The `iuv` source: photo + DensePose IUV (+ INDS), unwrapped at the working size for `size`."""
    options = {"iuv_order": request.iuv_order} if request.iuv_order is not None else {}
    if request.max_pixels is not None:
        options["max_pixels"] = request.max_pixels
    result = unwrap_files(request.photo, request.iuv, inds_path=request.inds, person=request.person,
                          size=working_size(size), on_size_mismatch=on_size_mismatch, erode_px=erode_px,
                          progress=progress, **options)
    job_meta = {} if request.person is None else {"person": request.person}
    job_meta["unwrap"] = to_plain(result.meta)
    return dataclasses.replace(result, job_meta=job_meta)
