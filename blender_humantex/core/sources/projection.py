"""The `projection` source (camera projection): photo + posed mesh + camera -> partial texture + visibility in the mesh's own UV layout.

No DensePose: the artist poses the mesh to match the photo as seen through a camera, and every
texel of the mesh's UV map that the camera sees takes the photo's colour there.

    mesh = load_mesh("body.obj")                       # or MeshData(vertices, triangles, corner_uvs)
    camera = load_camera("camera.json", (w, h))        # Blender's camera model or OpenCV's K, R, t
    result = project(mesh, camera, photo, mask=None, size=1024)   # -> ProjectedTexture

Cameras: see cameras.py (one internal model, OpenCV's pinhole). Meshes: meshes.py.

Method, all vectorised numpy (no GPU, no extra dependency; `triangle_fragments` enumerates
(triangle, pixel) pairs in batches of similar-sized triangles, which is fast for the many small
triangles of a body mesh and exact at pixel centres):
1. Depth buffer: every triangle in front of the camera is rasterised at the photo's resolution; a
   pixel keeps the largest 1/z (the nearest surface, perspective-correct) and that triangle's id.
2. Texel space: the mesh's UV triangles are rasterised at the texture size, giving each texel its
   triangle and barycentric weights, hence its 3D surface point.
3. A texel is seen when its point projects inside the photo, its triangle faces the camera, and its
   depth passes the depth test: it is within DEPTH_TOLERANCE of the nearest surface at that pixel,
   evaluated on the nearest triangle's own 1/z plane at the exact projected position (so a
   neighbouring triangle of the same surface never occludes it). This is the exact, geometric
   visibility (`meta["geometric_texels"]`).
4. Then conservative: texels seen at a grazing angle (smooth normal more than max_angle_deg from
   the view ray) are dropped (their colour is a smear of a few pixels), and so are texels whose
   photo pixels lie within erode_px of the mesh's silhouette, of a depth discontinuity (one surface
   in front of another), or of the person mask's outline, so background never bleeds in.
5. Colours are sampled bilinearly from the photo at each seen texel's projected position, so a
   small photo still fills a large texture without holes.
"""


from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..files import to_plain
from ..imageio import DEFAULT_MAX_PIXELS, read_gray, read_rgb, read_rgba_alpha
from ..request import check_size
from ..uv_layout import LAYOUT_ID, rasterize_triangles, uv_to_pixels
from .cameras import ASPECT_RTOL, Camera, camera_from_dict, camera_image_size, read_camera_json
from .meshes import SMPL_LAYOUT_MIN_IOU, MeshData, load_mesh, smpl_layout_iou, uv_chart_mask
from .partial import PartialTexture, as_photo
from .raster import depth_buffer, depth_edges, erode, inv_z_planes

DEFAULT_MARGIN_PX = 2  # the CLI's --margin: photo pixels kept clear of silhouettes and occlusion edges
DEFAULT_MAX_ANGLE_DEG = 75.0
# Relative depth slack of the depth test: a texel up to this fraction of its depth behind the
# nearest surface still counts as that surface (float rounding, and curvature between triangles).
DEPTH_TOLERANCE = 2e-3
# The camera is inside the mesh when most of what it sees are triangles' back sides.
INSIDE_BACKFACE_FRACTION = 0.5


@dataclass(frozen=True, eq=False)
class ProjectedTexture(PartialTexture):
    """unwrap's PartialTexture (partial, visibility, meta) plus what only a projection knows."""

    geometric: np.ndarray | None = None  # bool S×S: the exact depth-and-facing visibility, before margins


def _as_mask(mask, shape) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.shape != tuple(shape):
        raise InputError(f"the person mask is {mask.shape[1]}×{mask.shape[0]} but the photo is {shape[1]}×{shape[0]}",
                         kind="size_mismatch")
    if mask.dtype == np.uint8:
        return mask >= 128
    return np.asarray(mask, dtype=np.float32) >= 0.5


def project(mesh: MeshData, camera: Camera, photo, mask=None, size: int = 1024, erode_px: int = DEFAULT_MARGIN_PX,
            max_angle_deg: float = DEFAULT_MAX_ANGLE_DEG, progress=None) -> ProjectedTexture:
    """Project `photo` (H×W×3, float [0, 1] or uint8, seen through `camera`) onto the mesh's UV map.

    camera must be for the photo's size (load_camera / camera_from_dict fit it). mask: optional
    H×W person mask (bool, or float/uint8 where ≥ half is the person). Returns a
    ProjectedTexture: partial float32 size×size×3 (unseen texels 0), visibility float32 {0, 1},
    meta (coverage, counts, timings; `geometric` holds the exact depth-and-facing visibility before
    the grazing and silhouette margins, for diagnostics).
    """
    timings = {}
    t0 = time.perf_counter()
    report = progress or (lambda stage, fraction: None)
    size = _check_limits(size, erode_px, max_angle_deg)
    mesh = mesh.check()
    photo = as_photo(photo)
    height, width = photo.shape[:2]
    if (camera.width, camera.height) != (width, height):
        raise InputError(f"the camera is for {camera.width}×{camera.height} images but the photo is {width}×{height}",
                         kind="size_mismatch")
    person = _as_mask(mask, (height, width))
    report("project", 0.0)
    surface = _Surface.of(mesh, size)
    view = _View.of(surface, camera, height, width, timings)
    report("project", 0.4)
    texels = _Texels.of(surface, view, camera, size, width, height, timings)
    t = time.perf_counter()
    geometric = texels.inside & _depth_test(surface, view, texels)
    not_grazing = _not_grazing(surface, camera, texels, max_angle_deg)
    clean = _clean_pixels(view, person, erode_px)
    seen = geometric & not_grazing & clean[texels.iy, texels.ix]
    timings["visibility_ms"] = (time.perf_counter() - t) * 1e3 + texels.visibility_ms
    report("project", 0.8)
    t = time.perf_counter()
    partial, visibility = _colours(photo, texels, seen, size)
    timings["sample_ms"] = (time.perf_counter() - t) * 1e3
    timings["total_ms"] = (time.perf_counter() - t0) * 1e3
    if not seen.any():
        raise InputError(f"no texel of the mesh is visible from the camera: {_why_unseen(person, geometric, not_grazing)}",
                         kind="no_visible_texels")
    report("project", 1.0)
    geometric_map = np.zeros((size, size), dtype=bool)
    geometric_map[texels.rows[geometric], texels.cols[geometric]] = True
    meta = _meta(surface, view, camera, size, (width, height), erode_px, max_angle_deg, seen, geometric, person, timings)
    return ProjectedTexture(partial=partial, visibility=visibility, meta=meta, geometric=geometric_map)


def _check_limits(size, erode_px, max_angle_deg) -> int:
    """The texture size, or InputError for a size, margin or grazing-angle limit out of range."""
    size = check_size(size)
    if erode_px is None or int(erode_px) < 0:
        raise InputError(f"erosion must be ≥ 0 pixels, got {erode_px}", kind="bad_argument")
    if not 0 < float(max_angle_deg) <= 90:
        raise InputError(f"the grazing-angle limit must be in (0, 90] degrees, got {max_angle_deg}", kind="bad_argument")
    return size


@dataclass(frozen=True, eq=False)
class _Surface:
    """The mesh's triangles in world space and in texel space."""

    verts: np.ndarray  # V×3
    tris: np.ndarray  # T×3
    corners: np.ndarray  # T×3×3
    normals: np.ndarray  # T×3, |n| = 2·area
    scale: float  # the mesh's largest extent
    uv_px: np.ndarray  # T×3×2 corners in texels
    uv_area: np.ndarray  # T, doubled UV area in texels²

    @classmethod
    def of(cls, mesh: MeshData, size: int) -> _Surface:
        verts, tris = mesh.vertices, mesh.triangles
        corners = verts[tris]  # T×3×3
        normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])  # T×3, |n| = 2·area
        doubled_area = np.linalg.norm(normals, axis=1)
        scale = float(np.ptp(verts, axis=0).max())
        if scale <= 0 or doubled_area.max() <= 1e-12 * scale * scale:
            raise InputError("the mesh is degenerate: its triangles have no area", kind="degenerate_mesh")
        uv_px = uv_to_pixels(mesh.corner_uvs, size)
        uv_area = np.abs(np.cross(uv_px[:, 1] - uv_px[:, 0], uv_px[:, 2] - uv_px[:, 0]))
        if uv_area.max() <= 1e-9:
            raise InputError("the mesh's UV map is degenerate: every UV triangle has zero area", kind="no_uvs")
        return cls(verts, tris, corners, normals, scale, uv_px, uv_area)


@dataclass(frozen=True, eq=False)
class _View:
    """The mesh as the camera sees it: projected triangles and the depth buffer at the photo's resolution."""

    near: float  # the least depth in front of the camera
    in_front: np.ndarray  # T bool: all corners in front of the camera
    screen_ok: np.ndarray  # T×3×2 projected corners, NaN for triangles not in front
    inv_z: np.ndarray  # T×3 1/z of the corners, NaN for triangles not in front
    buf: np.ndarray  # H×W nearest 1/z, 0 where empty
    face_id: np.ndarray  # H×W nearest triangle, -1 where empty
    facing: np.ndarray  # T bool: front side towards the camera

    @classmethod
    def of(cls, surface: _Surface, camera: Camera, height: int, width: int, timings: dict) -> _View:
        xy, z = camera.project(surface.verts)
        near = 1e-6 * max(surface.scale, float(np.abs(z).max()))
        tri_z = z[surface.tris]  # T×3
        in_front = (tri_z > near).all(axis=1)
        screen = xy[surface.tris]  # T×3×2
        inv_z = np.where(in_front[:, None], 1.0 / np.where(tri_z > near, tri_z, 1.0), np.nan)
        screen_ok = np.where(in_front[:, None, None], screen, np.nan)
        if not in_front.any():
            raise InputError("the camera does not see the mesh: all of it is behind the camera", kind="not_in_view")
        t = time.perf_counter()
        buf, face_id = depth_buffer(screen_ok, inv_z, height, width)
        timings["depth_ms"] = (time.perf_counter() - t) * 1e3
        if not (face_id >= 0).any():
            raise InputError(f"the camera does not see the mesh: no part of it falls inside the {width}×{height} view",
                             kind="not_in_view")
        facing = np.einsum("ij,ij->i", surface.normals, camera.centre - surface.corners[:, 0]) > 0
        backface_share = float((~facing[face_id[face_id >= 0]]).mean())
        if backface_share > INSIDE_BACKFACE_FRACTION:
            raise InputError(
                f"the camera is inside the mesh: {backface_share:.0%} of what it sees are the backs of triangles; move"
                " the camera out (or, if it is outside, the mesh's normals point inwards: recalculate them outside)",
                kind="camera_inside")
        return cls(near, in_front, screen_ok, inv_z, buf, face_id, facing)

    @property
    def covered(self) -> np.ndarray:
        return self.face_id >= 0


@dataclass(frozen=True, eq=False)
class _Texels:
    """Every texel a visible-side triangle covers: its triangle, barycentrics, camera-space point and photo position."""

    rows: np.ndarray  # N texel rows
    cols: np.ndarray  # N texel columns
    f: np.ndarray  # N triangle ids
    bary: np.ndarray  # N×3 float32
    cam_pts: np.ndarray  # N×3 camera space
    px: np.ndarray  # N photo x
    py: np.ndarray  # N photo y
    own_inv_z: np.ndarray  # N 1/z of the texel's own point
    inside: np.ndarray  # N bool: in front of the camera and inside the photo
    ix: np.ndarray  # N nearest photo column
    iy: np.ndarray  # N nearest photo row
    visibility_ms: float  # the time spent here on the visibility's share

    @classmethod
    def of(cls, surface: _Surface, view: _View, camera: Camera, size: int, width: int, height: int,
           timings: dict) -> _Texels:
        # Only triangles that can be seen at all (in front, facing the camera, overlapping the photo) are
        # rasterised: the texels of the others stay unseen, and the work halves.
        t = time.perf_counter()
        lo, hi = np.nanmin(view.screen_ok, axis=1), np.nanmax(view.screen_ok, axis=1)
        overlaps = (hi[:, 0] >= -0.5) & (lo[:, 0] <= width - 0.5) & (hi[:, 1] >= -0.5) & (lo[:, 1] <= height - 0.5)
        candidates = np.nonzero(view.in_front & view.facing & overlaps)[0]
        texel_face, texel_bary = rasterize_triangles(surface.uv_px[candidates], size, size, dtype=np.float32)
        timings["uv_raster_ms"] = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        rows, cols = np.nonzero(texel_face >= 0)
        f = candidates[texel_face[rows, cols]]
        bary = texel_bary[rows, cols]  # N×3 float32
        tri_cam = camera.to_camera(surface.corners.reshape(-1, 3)).reshape(-1, 3, 3).astype(np.float32)  # T×3×3
        cam_pts = np.einsum("nk,nkc->nc", bary, tri_cam[f])  # N×3 camera space
        pz = cam_pts[:, 2]
        K = camera.K.astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            own_inv_z = 1.0 / pz
            px = (K[0, 0] * cam_pts[:, 0] + K[0, 1] * cam_pts[:, 1]) * own_inv_z + K[0, 2]
            py = K[1, 1] * cam_pts[:, 1] * own_inv_z + K[1, 2]
        inside = (pz > view.near) & (px >= 0) & (px <= width - 1) & (py >= 0) & (py <= height - 1)
        ix = np.clip(np.rint(np.nan_to_num(px)), 0, width - 1).astype(np.int64)
        iy = np.clip(np.rint(np.nan_to_num(py)), 0, height - 1).astype(np.int64)
        return cls(rows, cols, f, bary, cam_pts, px, py, own_inv_z, inside, ix, iy, (time.perf_counter() - t) * 1e3)


def _depth_test(surface: _Surface, view: _View, texels: _Texels) -> np.ndarray:
    """N bool: the texel's point is the nearest surface at its pixel (within DEPTH_TOLERANCE).

    Seen when the nearest pixel shows the texel's own triangle or a neighbour sharing a vertex (the same
    surface: extrapolating a neighbour's plane fails where the surface turns edge-on), or a surface
    not nearer than the tolerance; where the pixel shows no surface (on the silhouette), nothing is in front.
    """
    px, py, f, tris = texels.px, texels.py, texels.f, surface.tris
    front = view.face_id[texels.iy, texels.ix].astype(np.int64)
    planes = inv_z_planes(view.screen_ok, view.inv_z).astype(np.float32)
    fr = np.maximum(front, 0)
    front_inv_z = planes[fr, 0] * px + planes[fr, 1] * py + planes[fr, 2]
    same = front == f
    near_ids = np.nonzero(~same & (front >= 0))[0]
    shares = (tris[front[near_ids]][:, :, None] == tris[f[near_ids]][:, None, :]).any(axis=(1, 2))
    same[near_ids[shares]] = True
    return (front < 0) | same | (texels.own_inv_z >= front_inv_z * np.float32(1.0 - DEPTH_TOLERANCE))


def _not_grazing(surface: _Surface, camera: Camera, texels: _Texels, max_angle_deg: float) -> np.ndarray:
    """N bool: the smooth (area-weighted vertex) normal is within max_angle_deg of the view ray (camera space)."""
    verts, tris = surface.verts, surface.tris
    vertex_normals = np.zeros_like(verts)
    for k in range(3):
        for c in range(3):
            vertex_normals[:, c] += np.bincount(tris[:, k], weights=surface.normals[:, c], minlength=len(verts))
    vertex_normals = (vertex_normals @ camera.R.T).astype(np.float32)
    smooth = np.einsum("nk,nkc->nc", texels.bary, vertex_normals[tris[texels.f]])
    cam_pts = texels.cam_pts
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = -np.einsum("nc,nc->n", smooth, cam_pts) / np.sqrt(
            np.einsum("nc,nc->n", smooth, smooth) * np.einsum("nc,nc->n", cam_pts, cam_pts))
    return np.nan_to_num(cos) >= math.cos(math.radians(float(max_angle_deg)))


def _clean_pixels(view: _View, person, erode_px: int) -> np.ndarray:
    """H×W bool: photo pixels erode_px clear of the silhouette, of depth discontinuities and of the mask's outline."""
    clean = view.covered & ~depth_edges(view.buf)
    if person is not None:
        clean &= person
    return erode(clean, int(erode_px), "square")


def _colours(photo: np.ndarray, texels: _Texels, seen: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(partial float32 S×S×3, visibility float32 S×S): the seen texels' colours, bilinear in the photo."""
    import cv2

    rows, cols = texels.rows[seen], texels.cols[seen]
    visibility = np.zeros((size, size), dtype=np.float32)
    visibility[rows, cols] = 1.0
    map_x = np.full((size, size), -1.0, dtype=np.float32)
    map_y = np.full((size, size), -1.0, dtype=np.float32)
    map_x[rows, cols] = texels.px[seen]
    map_y[rows, cols] = texels.py[seen]
    partial = cv2.remap(photo, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=0)
    partial *= visibility[..., None]
    return partial.astype(np.float32, copy=False), visibility


def _why_unseen(person, geometric: np.ndarray, not_grazing: np.ndarray) -> str:
    if person is not None and geometric.any():
        return "the person mask excludes it"
    if not geometric.any() or not not_grazing.any():
        return "it sees only the backs of triangles or grazing surfaces"
    return "every seen texel lies on the silhouette margin"


def _meta(surface: _Surface, view: _View, camera: Camera, size: int, photo_size, erode_px, max_angle_deg,
          seen: np.ndarray, geometric: np.ndarray, person, timings: dict) -> dict:
    chart_texels = float(surface.uv_area.sum()) / 2  # the UV map's area in texels (overlaps counted twice)
    return {
        "source": "projection",
        "size": size,
        "photo_size": [int(photo_size[0]), int(photo_size[1])],
        "camera": dict(camera.source),
        "erode_px": int(erode_px),
        "max_angle_deg": float(max_angle_deg),
        "depth_tolerance": DEPTH_TOLERANCE,
        "mesh": {"vertices": int(len(surface.verts)), "triangles": int(len(surface.tris)),
                 "triangles_behind_camera": int((~view.in_front).sum())},
        "uv_area_texels": int(round(chart_texels)),
        "visible_texels": int(seen.sum()),
        "geometric_texels": int(geometric.sum()),
        "coverage": round(int(seen.sum()) / max(chart_texels, 1), 6),
        "person_mask": person is not None,
        "timings_ms": {k: round(v, 2) for k, v in timings.items()},
    }


def project_files(mesh_path, camera_path, photo_path, mask_path=None, size: int = 1024, y_up: bool = False,
                  erode_px: int = DEFAULT_MARGIN_PX, max_angle_deg: float = DEFAULT_MAX_ANGLE_DEG,
                  max_pixels=None, progress=None) -> ProjectedTexture:
    """project() on files. The mask is a grey PNG (white = person); without one, a photo with an
    alpha channel uses its alpha as the person mask. Adds the SMPL-layout check to meta."""
    report = progress or (lambda stage, fraction: None)
    report("load", 0.0)
    limit = max_pixels or DEFAULT_MAX_PIXELS
    params = read_camera_json(camera_path)
    mesh = load_mesh(mesh_path, y_up=y_up)
    photo = read_rgb(photo_path, max_pixels=limit)
    height, width = photo.shape[:2]
    mask, mask_from = None, None
    if mask_path is not None:
        mask, mask_from = read_gray(mask_path, max_pixels=limit), "file"
    else:
        alpha = read_rgba_alpha(photo_path, max_pixels=limit)
        if alpha is not None:
            mask, mask_from = alpha, "photo alpha"
    camera = camera_from_dict(params, (width, height))
    report("load", 1.0)
    result = project(mesh, camera, photo, mask=mask, size=size, erode_px=erode_px, max_angle_deg=max_angle_deg,
                     progress=progress)
    iou = smpl_layout_iou(mesh.corner_uvs)
    meta = dict(result.meta, uv_layout=LAYOUT_ID if iou >= SMPL_LAYOUT_MIN_IOU else "mesh",
                smpl_layout_iou=round(iou, 4), photo=str(photo_path), mesh_file=str(mesh_path),
                camera_file=str(camera_path), mask=mask_from)
    fit = _photo_fit(camera, camera_image_size(params), (width, height))
    if fit is not None:
        meta["photo_fit"] = fit
    chart_mask = uv_chart_mask(mesh.corner_uvs, result.size) if meta["uv_layout"] == "mesh" else None
    return dataclasses.replace(result, meta=meta, photo=photo, chart_mask=chart_mask)


def _photo_fit(camera: Camera, expected, photo_size) -> dict | None:
    """How a photo of another size than the camera's was fitted (for meta.json); None when the sizes match."""
    width, height = photo_size
    if tuple(expected) == (width, height):
        return None
    same_aspect = abs((width / height) / (expected[0] / expected[1]) - 1) <= ASPECT_RTOL
    return {
        "camera_size": list(expected), "photo_size": [width, height], "same_aspect": same_aspect,
        "note": "photo scaled to the camera's size" if same_aspect else
        "photo aspect differs from the camera's: fitted as Blender's sensor fit does"
        f" ({camera.source.get('sensor_fit_used', 'n/a')} side keeps its field of view)",
    }


def read(request, size, progress=None, y_up: bool = False, margin_px: int = DEFAULT_MARGIN_PX,
         max_angle_deg: float = DEFAULT_MAX_ANGLE_DEG) -> ProjectedTexture:
    """The `projection` source: photo + posed mesh + camera (+ mask), projected at `size`."""
    result = project_files(request.mesh, request.camera, request.photo, mask_path=request.mask, size=size, y_up=y_up,
                           erode_px=margin_px, max_angle_deg=max_angle_deg, max_pixels=request.max_pixels,
                           progress=progress)
    return dataclasses.replace(result, job_meta={"projection": to_plain(result.meta)})
