"""Camera projection: photo + posed mesh + camera -> partial texture + visibility in the mesh's own UV layout.

No DensePose: the artist poses the mesh to match the photo as seen through a camera, and every
texel of the mesh's UV map that the camera sees takes the photo's colour there.

    mesh = load_mesh("body.obj")                       # or MeshData(vertices, triangles, corner_uvs)
    camera = load_camera("camera.json")                # Blender's camera model or OpenCV's K, R, t
    result = project(mesh, camera, photo, mask=None, size=1024)   # -> ProjectedTexture

Cameras. One internal model, OpenCV's pinhole: x_cam = R @ x_world + t, camera looking down +z,
x right, y down; pixel = K @ x_cam / z, with pixel centres at integer coordinates (the top-left
pixel's centre is (0, 0)). Blender's camera model (lens in mm, sensor width/height in mm and sensor
fit AUTO/HORIZONTAL/VERTICAL, shift_x/shift_y in units of the fitted sensor side, render resolution
x/y and percentage, pixel aspect x/y, camera looking down its local -z with y up) is converted to
K, R, t in one place, `blender_camera`, following Blender's own view-plane code
(BKE_camera_params_compute_viewplane). A photo whose size differs from the render resolution is
fitted the way Blender fits a render of that size: the camera's fitted sensor side keeps its field
of view (meta.json records it).

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

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError
from .unwrap import PartialTexture, as_photo
from .uv_layout import LAYOUT_ID, check_size

DEFAULT_ERODE_PX = 2
DEFAULT_MAX_ANGLE_DEG = 75.0
# Relative depth slack of the depth test: a texel up to this fraction of its depth behind the
# nearest surface still counts as that surface (float rounding, and curvature between triangles).
DEPTH_TOLERANCE = 2e-3
# Neighbouring pixels whose depths differ by more than this fraction are a depth discontinuity (an
# occlusion edge), whose pixels mix two surfaces. A surface at 87° from the view ray changes depth
# by under 1/50 of its depth per pixel at any usual focal length, so surfaces themselves do not trip it.
EDGE_TOLERANCE = 0.02
# The camera is inside the mesh when most of what it sees are triangles' back sides.
INSIDE_BACKFACE_FRACTION = 0.5
SMPL_LAYOUT_MIN_IOU = 0.97  # chart-mask IoU at 256² above which a UV map is SMPL's layout
CAMERA_MODELS = ("blender", "opencv")
SENSOR_FITS = ("AUTO", "HORIZONTAL", "VERTICAL")
ASPECT_RTOL = 0.01  # photo and camera image aspects closer than this are the same aspect


# ---------------------------------------------------------------- cameras


@dataclass(frozen=True, eq=False)
class Camera:
    """A pinhole camera in OpenCV's convention (see the module docstring)."""

    K: np.ndarray  # 3×3 intrinsics, pixels, pixel centres at integers
    R: np.ndarray  # 3×3 world -> camera rotation
    t: np.ndarray  # 3 world -> camera translation
    width: int
    height: int
    source: dict = field(default_factory=dict)  # what it was made from (for meta.json)

    @property
    def centre(self) -> np.ndarray:
        return -self.R.T @ self.t

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        return points @ self.R.T + self.t

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points N×3 -> (pixel xy N×2, depth z N). Points behind the camera get z <= 0."""
        cam = self.to_camera(np.asarray(points, dtype=np.float64))
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            xy = (cam @ self.K.T)[:, :2] / z[:, None]
        return xy, z

    def to_json(self) -> dict:
        return {
            "model": "opencv",
            "K": self.K.tolist(),
            "R": self.R.tolist(),
            "t": self.t.tolist(),
            "width": self.width,
            "height": self.height,
        }


def _number(params: dict, key: str, default=None, positive=False) -> float:
    value = params.get(key, default)
    if value is None:
        raise InputError(f"camera: missing {key!r}", kind="bad_camera")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"camera: {key!r} must be a number, got {value!r}", kind="bad_camera")
    if positive and value <= 0:
        raise InputError(f"camera: {key!r} must be positive, got {value!r}", kind="bad_camera")
    return float(value)


def _matrix(params: dict, key: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        value = np.asarray(params[key], dtype=np.float64)
    except KeyError:
        raise InputError(f"camera: missing {key!r}", kind="bad_camera") from None
    except (TypeError, ValueError):
        raise InputError(f"camera: {key!r} must be a {'×'.join(map(str, shape))} array of numbers", kind="bad_camera") from None
    if value.shape != shape or not np.isfinite(value).all():
        raise InputError(f"camera: {key!r} must be a finite {'×'.join(map(str, shape))} array, got shape {value.shape}",
                         kind="bad_camera")
    return value


def blender_render_size(params: dict) -> tuple[int, int]:
    """The render's pixel size: resolution × percentage / 100 (Blender rounds down)."""
    pct = _number(params, "resolution_percentage", 100, positive=True)
    w = int(_number(params, "resolution_x", positive=True) * pct / 100)
    h = int(_number(params, "resolution_y", positive=True) * pct / 100)
    if w < 1 or h < 1:
        raise InputError(f"camera: render size {w}×{h} is empty", kind="bad_camera")
    return w, h


def blender_camera(params: dict, image_size: tuple[int, int] | None = None) -> Camera:
    """Blender's camera model -> K, R, t (the one place that knows Blender's conventions).

    params: the camera JSON's Blender fields (see README: matrix_world, lens, sensor_width,
    sensor_height, sensor_fit, shift_x, shift_y, resolution_x/y, resolution_percentage,
    pixel_aspect_x/y). image_size: (width, height) of the image to project from, default the render
    size; another size is fitted as Blender fits a render of that size (same lens and sensor fit).
    """
    kind = params.get("type", "PERSP")
    if kind != "PERSP":
        raise InputError(f"camera: only perspective cameras are supported, got type {kind!r}", kind="bad_camera")
    world = _matrix(params, "matrix_world", (4, 4))
    lens = _number(params, "lens", positive=True)
    sensor_w = _number(params, "sensor_width", 36.0, positive=True)
    sensor_h = _number(params, "sensor_height", 24.0, positive=True)
    fit = params.get("sensor_fit", "AUTO")
    if fit not in SENSOR_FITS:
        raise InputError(f"camera: sensor_fit must be one of {', '.join(SENSOR_FITS)}, got {fit!r}", kind="bad_camera")
    shift_x = _number(params, "shift_x", 0.0)
    shift_y = _number(params, "shift_y", 0.0)
    aspect_x = _number(params, "pixel_aspect_x", 1.0, positive=True)
    aspect_y = _number(params, "pixel_aspect_y", 1.0, positive=True)
    winx, winy = image_size if image_size is not None else blender_render_size(params)

    # BKE_camera_params_compute_viewplane: ycor = pixel aspect y/x; the fitted side spans the sensor.
    ycor = aspect_y / aspect_x
    used_fit = fit
    if fit == "AUTO":
        used_fit = "HORIZONTAL" if aspect_x * winx >= aspect_y * winy else "VERTICAL"
    sensor = sensor_h if fit == "VERTICAL" else sensor_w  # AUTO uses sensor_width on either side
    viewfac = winx if used_fit == "HORIZONTAL" else ycor * winy
    fx = lens * viewfac / sensor
    fy = fx / ycor
    # Blender's window has its origin at the image centre, y up, pixel edges at integers; shift moves
    # the window by shift × viewfac. OpenCV: origin top-left, y down, pixel centres at integers.
    cx = winx / 2 - shift_x * viewfac - 0.5
    cy = winy / 2 + shift_y * viewfac / ycor - 0.5
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])

    # matrix_world is camera -> world and may carry scale (which Blender's projection ignores).
    rot = world[:3, :3]
    norms = np.linalg.norm(rot, axis=0)
    if np.any(norms < 1e-12) or abs(world[3, 3]) < 1e-12:
        raise InputError("camera: matrix_world is singular", kind="bad_camera")
    rot = rot / norms
    flip = np.diag([1.0, -1.0, -1.0])  # Blender camera (y up, looks down -z) -> OpenCV (y down, looks down +z)
    R = flip @ rot.T
    t = -R @ world[:3, 3]
    source = {"model": "blender", "sensor_fit": fit, "sensor_fit_used": used_fit,
              "render_size": list(blender_render_size(params)), "image_size": [int(winx), int(winy)]}
    return Camera(K=K, R=R, t=t, width=int(winx), height=int(winy), source=source)


def opencv_camera(params: dict, image_size: tuple[int, int] | None = None) -> Camera:
    """OpenCV's K, R, t (x_cam = R x_world + t) for an image of width × height pixels. Another image
    size of the same aspect scales K; a different aspect is refused (OpenCV has no sensor fit)."""
    K = _matrix(params, "K", (3, 3))
    R = _matrix(params, "R", (3, 3))
    t = _matrix(params, "t", (3,))
    width = int(_number(params, "width", positive=True))
    height = int(_number(params, "height", positive=True))
    if abs(K[2, 2] - 1) > 1e-9 or K[2, 0] != 0 or K[2, 1] != 0 or K[1, 0] != 0 or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise InputError("camera: K must be [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0", kind="bad_camera")
    if np.abs(R @ R.T - np.eye(3)).max() > 1e-4 or np.linalg.det(R) < 0:
        raise InputError("camera: R must be a rotation matrix (orthonormal, det +1)", kind="bad_camera")
    source = {"model": "opencv", "camera_size": [width, height]}
    if image_size is not None and tuple(image_size) != (width, height):
        w, h = image_size
        if abs((w / h) / (width / height) - 1) > ASPECT_RTOL:
            raise InputError(
                f"the photo is {w}×{h} but the OpenCV camera is for {width}×{height} images (another aspect):"
                " give K for the photo's size", kind="aspect_mismatch")
        sx, sy = w / width, h / height
        # scale about pixel edges: centre-at-integer coordinates shift by half a pixel
        K = K.copy()
        K[0] *= sx
        K[1] *= sy
        K[0, 2] += 0.5 * sx - 0.5
        K[1, 2] += 0.5 * sy - 0.5
        width, height = w, h
    source["image_size"] = [width, height]
    return Camera(K=K, R=R, t=t, width=width, height=height, source=source)


def camera_from_dict(params: dict, image_size: tuple[int, int] | None = None) -> Camera:
    if not isinstance(params, dict):
        raise InputError("camera: expected a JSON object", kind="bad_camera")
    model = params.get("model")
    if model == "blender":
        return blender_camera(params, image_size)
    if model == "opencv":
        return opencv_camera(params, image_size)
    raise InputError(f"camera: \"model\" must be one of {', '.join(CAMERA_MODELS)}, got {model!r}", kind="bad_camera")


def read_camera_json(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"camera file not found: {path}", kind="missing_file")
    try:
        params = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"cannot read camera {path.name}: {e}", kind="bad_camera") from None
    if not isinstance(params, dict):
        raise InputError(f"camera {path.name}: expected a JSON object", kind="bad_camera")
    return params


def camera_image_size(params: dict) -> tuple[int, int]:
    """The image size a camera JSON describes (Blender: the render size; OpenCV: width, height)."""
    if params.get("model") == "blender":
        return blender_render_size(params)
    return int(_number(params, "width", positive=True)), int(_number(params, "height", positive=True))


# ---------------------------------------------------------------- meshes


@dataclass
class MeshData:
    """A triangle mesh in world space with a UV map: what the projection needs, nothing more."""

    vertices: np.ndarray  # float64 V×3, world space (the evaluated, posed mesh)
    triangles: np.ndarray  # int64 T×3 vertex ids
    corner_uvs: np.ndarray  # float64 T×3×2 UV of each triangle corner (u right, v up)

    def check(self) -> MeshData:
        v = np.asarray(self.vertices, dtype=np.float64)
        f = np.asarray(self.triangles)
        uv = np.asarray(self.corner_uvs, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != 3 or len(v) < 3:
            raise InputError(f"mesh: vertices must be V×3 with V ≥ 3, got shape {v.shape}", kind="bad_mesh")
        if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0 or not np.issubdtype(f.dtype, np.integer):
            raise InputError(f"mesh: triangles must be T×3 integer vertex ids, got {f.dtype} {f.shape}", kind="bad_mesh")
        if f.min() < 0 or f.max() >= len(v):
            raise InputError(f"mesh: triangle vertex ids must lie in 0..{len(v) - 1}", kind="bad_mesh")
        if uv.shape != (len(f), 3, 2):
            raise InputError(f"mesh: corner UVs must be T×3×2 = {len(f)}×3×2, got {uv.shape}", kind="no_uvs")
        if not (np.isfinite(v).all() and np.isfinite(uv).all()):
            raise InputError("mesh: vertices or UVs contain NaN or infinity", kind="bad_mesh")
        self.vertices, self.triangles, self.corner_uvs = v, f.astype(np.int64), uv
        return self


def load_mesh(path, y_up: bool = False) -> MeshData:
    """A mesh file -> MeshData. OBJ, PLY, GLB/GLTF, ... through trimesh; .npz with arrays vertices,
    triangles and corner_uvs (what the Blender add-on writes). y_up: the file is Y-up (glTF, or OBJ
    exported with Blender's default axes); it is turned into Blender's Z-up world, (x, y, z) -> (x, -z, y)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"mesh file not found: {path}", kind="missing_file")
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = {"vertices", "triangles", "corner_uvs"} - set(z.files)
                if missing:
                    raise InputError(f"mesh {path.name}: missing arrays {', '.join(sorted(missing))}", kind="bad_mesh")
                mesh = MeshData(z["vertices"], z["triangles"], z["corner_uvs"])
        except InputError:
            raise
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read mesh {path.name}: {e}", kind="bad_mesh") from None
    else:
        mesh = _load_with_trimesh(path)
    if y_up:
        v = np.asarray(mesh.vertices, dtype=np.float64)
        mesh.vertices = np.stack([v[:, 0], -v[:, 2], v[:, 1]], axis=1)
    return mesh.check()


def _load_with_trimesh(path: Path) -> MeshData:
    try:
        import trimesh
    except ImportError:
        from .errors import DependencyError

        raise DependencyError("reading mesh files needs trimesh (pip install \"blender_humantex[worker]\")") from None
    try:
        loaded = trimesh.load(str(path), process=False, force="mesh")
    except Exception as e:  # trimesh raises many kinds (ValueError, KeyError, its own) on bad files
        raise InputError(f"cannot read mesh {path.name}: {type(e).__name__}: {e}", kind="bad_mesh") from None
    faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))))
    if faces.ndim != 2 or len(faces) == 0:
        raise InputError(f"mesh {path.name} has no triangles", kind="bad_mesh")
    uv = getattr(getattr(loaded, "visual", None), "uv", None)
    if uv is None or len(uv) != len(loaded.vertices):
        raise InputError(f"mesh {path.name} has no UV map (texture coordinates): the texture needs one", kind="no_uvs")
    uv = np.asarray(uv, dtype=np.float64)[:, :2]
    return MeshData(np.asarray(loaded.vertices, dtype=np.float64), faces.astype(np.int64), uv[faces])


def save_mesh_npz(path, mesh: MeshData) -> Path:
    """The add-on's exchange format: world-space arrays, no pickles."""
    path = Path(path)
    with open(path, "wb") as f:
        np.savez(f, vertices=np.asarray(mesh.vertices, dtype=np.float64),
                 triangles=np.asarray(mesh.triangles, dtype=np.int64),
                 corner_uvs=np.asarray(mesh.corner_uvs, dtype=np.float64))
    return path


def uv_sphere(n_lat: int = 84, n_lon: int = 82, radius: float = 1.0, centre=(0.0, 0.0, 0.0),
              pole_gap: float = 0.02) -> MeshData:
    """A procedural UV-mapped sphere (latitude-longitude UVs, seam at u = 0/1; the poles left open by
    pole_gap·π so no triangle is degenerate). The defaults make an SMPL-sized mesh: 84·82·2 = 13,776
    triangles on 85·83 = 7,055 vertices. Outward-facing (counter-clockwise seen from outside)."""
    theta = np.linspace(pole_gap * np.pi, (1 - pole_gap) * np.pi, n_lat + 1)  # from +z down
    phi = np.linspace(0.0, 2 * np.pi, n_lon + 1)
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    verts = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], -1).reshape(-1, 3)
    verts = verts * radius + np.asarray(centre, dtype=np.float64)
    uv = np.stack([ph / (2 * np.pi), 1.0 - (th - theta[0]) / (theta[-1] - theta[0])], -1).reshape(-1, 2)
    i, j = np.meshgrid(np.arange(n_lat), np.arange(n_lon), indexing="ij")
    a = (i * (n_lon + 1) + j).ravel()
    b, c, d = a + 1, a + n_lon + 1, a + n_lon + 2
    # rows go down (theta up), columns go east (phi up): (a, c, b) and (b, c, d) face outwards
    tris = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])
    return MeshData(verts, tris, uv[tris]).check()


def uv_chart_mask(corner_uvs: np.ndarray, size: int) -> np.ndarray:
    """Which texels of a size² texture the UV map covers (bool size×size)."""
    from .uv_layout import rasterize_triangles

    return rasterize_triangles(_uv_to_pixels(corner_uvs, size), size, size, dtype=np.float32)[0] >= 0


def smpl_layout_iou(corner_uvs: np.ndarray, size: int = 256) -> float:
    """How well a UV map covers the SMPL UV layout's charts: IoU of the two chart masks at size².

    The networks are trained on SMPL's layout; a UV map above SMPL_LAYOUT_MIN_IOU is that layout
    (whatever the mesh's topology, e.g. a subdivided SMPL), anything else is not.
    """
    from .uv_layout import get_layout

    mine = uv_chart_mask(corner_uvs, size)
    smpl = get_layout(size).chart_mask
    union = int((mine | smpl).sum())
    return float((mine & smpl).sum()) / union if union else 0.0


def _uv_to_pixels(uv: np.ndarray, size: int) -> np.ndarray:
    xy = np.empty(uv.shape, dtype=np.float64)
    xy[..., 0] = uv[..., 0] * size
    xy[..., 1] = (1.0 - uv[..., 1]) * size
    return xy


# ---------------------------------------------------------------- rasterisation


def depth_buffer(screen_xy: np.ndarray, inv_z: np.ndarray, height: int, width: int):
    """Nearest surface per pixel: (1/z float32 H×W, 0 where empty; triangle id int32 H×W, -1 where empty).

    screen_xy: T×3×2 projected corners (OpenCV pixels, centres at integers); inv_z: T×3 1/z of the
    corners (> 0; triangles with a corner behind the camera must be left out by the caller as NaN).
    1/z is linear in screen space, so it is interpolated with the screen-space barycentrics.
    """
    from .uv_layout import triangle_fragments

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


def _inv_z_planes(screen_xy: np.ndarray, inv_z: np.ndarray) -> np.ndarray:
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


def _erode(mask: np.ndarray, px: int) -> np.ndarray:
    """Square erosion: a pixel survives when its whole (2px+1)² block is in the mask (image edge = outside)."""
    if px <= 0:
        return mask
    import cv2

    kernel = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
    return cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def _depth_edges(inv_z: np.ndarray) -> np.ndarray:
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


# ---------------------------------------------------------------- the projection


@dataclass
class ProjectedTexture(PartialTexture):
    """unwrap's PartialTexture (partial, visibility, meta) plus what only a projection knows."""

    geometric: np.ndarray | None = None  # bool S×S: the exact depth-and-facing visibility, before margins
    # bool S×S: texels the mesh's UV map covers; project_files sets it when the map is not SMPL's (for the fill)
    chart_mask: np.ndarray | None = None


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


def project(mesh: MeshData, camera: Camera, photo, mask=None, size: int = 1024, erode_px: int = DEFAULT_ERODE_PX,
            max_angle_deg: float = DEFAULT_MAX_ANGLE_DEG, progress=None):
    """Project `photo` (H×W×3, float [0, 1] or uint8, seen through `camera`) onto the mesh's UV map.

    camera must be for the photo's size (load_camera / camera_from_dict fit it). mask: optional
    H×W person mask (bool, or float/uint8 where ≥ half is the person). Returns a
    ProjectedTexture: partial float32 size×size×3 (unseen texels 0), visibility float32 {0, 1},
    meta (coverage, counts, timings; `geometric` holds the exact depth-and-facing visibility before
    the grazing and silhouette margins, for diagnostics).
    """
    import cv2

    from .uv_layout import rasterize_triangles

    timings = {}
    t0 = time.perf_counter()
    report = progress or (lambda stage, fraction: None)
    size = check_size(size)
    if erode_px is None or int(erode_px) < 0:
        raise InputError(f"erosion must be ≥ 0 pixels, got {erode_px}", kind="bad_argument")
    if not 0 < float(max_angle_deg) <= 90:
        raise InputError(f"the grazing-angle limit must be in (0, 90] degrees, got {max_angle_deg}", kind="bad_argument")
    mesh = mesh.check()
    photo = as_photo(photo)
    height, width = photo.shape[:2]
    if (camera.width, camera.height) != (width, height):
        raise InputError(f"the camera is for {camera.width}×{camera.height} images but the photo is {width}×{height}",
                         kind="size_mismatch")
    person = _as_mask(mask, (height, width))
    report("project", 0.0)

    verts, tris = mesh.vertices, mesh.triangles
    corners = verts[tris]  # T×3×3
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])  # T×3, |n| = 2·area
    doubled_area = np.linalg.norm(normals, axis=1)
    scale = float(np.ptp(verts, axis=0).max())
    if scale <= 0 or doubled_area.max() <= 1e-12 * scale * scale:
        raise InputError("the mesh is degenerate: its triangles have no area", kind="degenerate_mesh")
    uv_px = _uv_to_pixels(mesh.corner_uvs, size)
    uv_area = np.abs(np.cross(uv_px[:, 1] - uv_px[:, 0], uv_px[:, 2] - uv_px[:, 0]))
    if uv_area.max() <= 1e-9:
        raise InputError("the mesh's UV map is degenerate: every UV triangle has zero area", kind="no_uvs")

    # ---- camera space, depth buffer
    xy, z = camera.project(verts)
    near = 1e-6 * max(scale, float(np.abs(z).max()))
    tri_z = z[tris]  # T×3
    in_front = (tri_z > near).all(axis=1)
    screen = xy[tris]  # T×3×2
    inv_z = np.where(in_front[:, None], 1.0 / np.where(tri_z > near, tri_z, 1.0), np.nan)
    screen_ok = np.where(in_front[:, None, None], screen, np.nan)
    if not in_front.any():
        raise InputError("the camera does not see the mesh: all of it is behind the camera", kind="not_in_view")
    t = time.perf_counter()
    buf, face_id = depth_buffer(screen_ok, inv_z, height, width)
    timings["depth_ms"] = (time.perf_counter() - t) * 1e3
    covered = face_id >= 0
    if not covered.any():
        raise InputError(f"the camera does not see the mesh: no part of it falls inside the {width}×{height} view",
                         kind="not_in_view")
    centre = camera.centre
    facing_tri = np.einsum("ij,ij->i", normals, centre - corners[:, 0]) > 0  # T: front side towards the camera
    front_ids = face_id[covered]
    backface_share = float((~facing_tri[front_ids]).mean())
    if backface_share > INSIDE_BACKFACE_FRACTION:
        raise InputError(
            f"the camera is inside the mesh: {backface_share:.0%} of what it sees are the backs of triangles; move the"
            " camera out (or, if it is outside, the mesh's normals point inwards: recalculate them outside)",
            kind="camera_inside")
    report("project", 0.4)

    # ---- texel space: each texel's triangle, barycentrics and surface point. Only triangles that
    # can be seen at all (in front, facing the camera, overlapping the photo) are rasterised: the
    # texels of the others stay unseen, and the work halves.
    t = time.perf_counter()
    lo, hi = np.nanmin(screen_ok, axis=1), np.nanmax(screen_ok, axis=1)
    overlaps = (hi[:, 0] >= -0.5) & (lo[:, 0] <= width - 0.5) & (hi[:, 1] >= -0.5) & (lo[:, 1] <= height - 0.5)
    candidates = np.nonzero(in_front & facing_tri & overlaps)[0]
    texel_face, texel_bary = rasterize_triangles(uv_px[candidates], size, size, dtype=np.float32)
    timings["uv_raster_ms"] = (time.perf_counter() - t) * 1e3
    t = time.perf_counter()
    rows, cols = np.nonzero(texel_face >= 0)
    f = candidates[texel_face[rows, cols]]
    bary = texel_bary[rows, cols]  # N×3 float32
    tri_cam = camera.to_camera(corners.reshape(-1, 3)).reshape(-1, 3, 3).astype(np.float32)  # T×3×3
    cam_pts = np.einsum("nk,nkc->nc", bary, tri_cam[f])  # N×3 camera space
    pz = cam_pts[:, 2]
    K = camera.K.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        own_inv_z = 1.0 / pz
        px = (K[0, 0] * cam_pts[:, 0] + K[0, 1] * cam_pts[:, 1]) * own_inv_z + K[0, 2]
        py = K[1, 1] * cam_pts[:, 1] * own_inv_z + K[1, 2]
    inside = (pz > near) & (px >= 0) & (px <= width - 1) & (py >= 0) & (py <= height - 1)
    ix = np.clip(np.rint(np.nan_to_num(px)), 0, width - 1).astype(np.int64)
    iy = np.clip(np.rint(np.nan_to_num(py)), 0, height - 1).astype(np.int64)
    front = face_id[iy, ix].astype(np.int64)
    planes = _inv_z_planes(screen_ok, inv_z).astype(np.float32)
    fr = np.maximum(front, 0)
    front_inv_z = planes[fr, 0] * px + planes[fr, 1] * py + planes[fr, 2]
    # Seen when the nearest pixel shows the texel's own triangle or a neighbour sharing a vertex (the same
    # surface: extrapolating a neighbour's plane fails where the surface turns edge-on), or a surface
    # not nearer than the tolerance; where the pixel shows no surface (on the silhouette), nothing is in front.
    same = front == f
    near_ids = np.nonzero(~same & (front >= 0))[0]
    shares = (tris[front[near_ids]][:, :, None] == tris[f[near_ids]][:, None, :]).any(axis=(1, 2))
    same[near_ids[shares]] = True
    depth_ok = (front < 0) | same | (own_inv_z >= front_inv_z * np.float32(1.0 - DEPTH_TOLERANCE))
    geometric = inside & depth_ok

    # grazing angle, on the smooth (area-weighted vertex) normal, in camera space (camera at the origin)
    vertex_normals = np.zeros_like(verts)
    for k in range(3):
        for c in range(3):
            vertex_normals[:, c] += np.bincount(tris[:, k], weights=normals[:, c], minlength=len(verts))
    vertex_normals = (vertex_normals @ camera.R.T).astype(np.float32)
    smooth = np.einsum("nk,nkc->nc", bary, vertex_normals[tris[f]])
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = -np.einsum("nc,nc->n", smooth, cam_pts) / np.sqrt(
            np.einsum("nc,nc->n", smooth, smooth) * np.einsum("nc,nc->n", cam_pts, cam_pts))
    not_grazing = np.nan_to_num(cos) >= math.cos(math.radians(float(max_angle_deg)))

    # margins in the photo: silhouette, depth discontinuities, the person mask's outline
    clean = covered & ~_depth_edges(buf)
    if person is not None:
        clean &= person
    clean = _erode(clean, int(erode_px))
    seen = geometric & not_grazing & clean[iy, ix]
    timings["visibility_ms"] = (time.perf_counter() - t) * 1e3
    report("project", 0.8)

    # ---- colours: bilinear in the photo
    t = time.perf_counter()
    visibility = np.zeros((size, size), dtype=np.float32)
    visibility[rows[seen], cols[seen]] = 1.0
    map_x = np.full((size, size), -1.0, dtype=np.float32)
    map_y = np.full((size, size), -1.0, dtype=np.float32)
    map_x[rows[seen], cols[seen]] = px[seen]
    map_y[rows[seen], cols[seen]] = py[seen]
    partial = cv2.remap(photo, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=0)
    partial *= visibility[..., None]
    timings["sample_ms"] = (time.perf_counter() - t) * 1e3
    timings["total_ms"] = (time.perf_counter() - t0) * 1e3
    if not seen.any():
        why = "the person mask excludes it" if person is not None and geometric.any() else (
            "it sees only the backs of triangles or grazing surfaces" if not geometric.any() or not not_grazing.any()
            else "every seen texel lies on the silhouette margin")
        raise InputError(f"no texel of the mesh is visible from the camera: {why}", kind="no_visible_texels")
    report("project", 1.0)

    geometric_map = np.zeros((size, size), dtype=bool)
    geometric_map[rows[geometric], cols[geometric]] = True
    chart_texels = float(uv_area.sum()) / 2  # the UV map's area in texels (overlaps counted twice)
    meta = {
        "source": "projection",
        "size": size,
        "photo_size": [int(width), int(height)],
        "camera": dict(camera.source),
        "erode_px": int(erode_px),
        "max_angle_deg": float(max_angle_deg),
        "depth_tolerance": DEPTH_TOLERANCE,
        "mesh": {"vertices": int(len(verts)), "triangles": int(len(tris)),
                 "triangles_behind_camera": int((~in_front).sum())},
        "uv_area_texels": int(round(chart_texels)),
        "visible_texels": int(seen.sum()),
        "geometric_texels": int(geometric.sum()),
        "coverage": round(int(seen.sum()) / max(chart_texels, 1), 6),
        "person_mask": person is not None,
        "timings_ms": {k: round(v, 2) for k, v in timings.items()},
    }
    return ProjectedTexture(partial=partial.astype(np.float32, copy=False), visibility=visibility, meta=meta,
                            geometric=geometric_map)


# ---------------------------------------------------------------- files


def load_camera(path, image_size: tuple[int, int]) -> Camera:
    """A camera JSON, fitted to an image of (width, height)."""
    return camera_from_dict(read_camera_json(path), image_size)


def project_files(mesh_path, camera_path, photo_path, mask_path=None, size: int = 1024, y_up: bool = False,
                  erode_px: int = DEFAULT_ERODE_PX, max_angle_deg: float = DEFAULT_MAX_ANGLE_DEG,
                  max_pixels=None, progress=None):
    """project() on files. The mask is a grey PNG (white = person); without one, a photo with an
    alpha channel uses its alpha as the person mask. Adds the SMPL-layout check to meta."""
    from .imageio import DEFAULT_MAX_PIXELS, read_gray, read_rgb, read_rgba_alpha

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
    expected = camera_image_size(params)
    report("load", 1.0)
    result = project(mesh, camera, photo, mask=mask, size=size, erode_px=erode_px, max_angle_deg=max_angle_deg,
                     progress=progress)
    meta = result.meta
    iou = smpl_layout_iou(mesh.corner_uvs)
    meta["uv_layout"] = LAYOUT_ID if iou >= SMPL_LAYOUT_MIN_IOU else "mesh"
    if meta["uv_layout"] == "mesh":
        result.chart_mask = uv_chart_mask(mesh.corner_uvs, result.size)
    meta["smpl_layout_iou"] = round(iou, 4)
    meta["photo"] = str(photo_path)
    meta["mesh_file"] = str(mesh_path)
    meta["camera_file"] = str(camera_path)
    meta["mask"] = mask_from
    result.photo = photo
    if tuple(expected) != (width, height):
        same_aspect = abs((width / height) / (expected[0] / expected[1]) - 1) <= ASPECT_RTOL
        meta["photo_fit"] = {
            "camera_size": list(expected), "photo_size": [width, height], "same_aspect": same_aspect,
            "note": "photo scaled to the camera's size" if same_aspect else
            "photo aspect differs from the camera's: fitted as Blender's sensor fit does"
            f" ({camera.source.get('sensor_fit_used', 'n/a')} side keeps its field of view)",
        }
    return result


def write_projection(out_dir, result) -> dict[str, Path]:
    """partial.png, visibility.png, meta.json: the same files `humantex unwrap` writes."""
    from .unwrap import write_partial

    return write_partial(out_dir, result)
