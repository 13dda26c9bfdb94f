"""Camera models for the camera projection: a camera JSON (Blender's model or OpenCV's) -> Camera.

Cameras. One internal model, OpenCV's pinhole: x_cam = R @ x_world + t, camera looking down +z,
x right, y down; pixel = K @ x_cam / z, with pixel centres at integer coordinates (the top-left
pixel's centre is (0, 0)). Blender's camera model (lens in mm, sensor width/height in mm and sensor
fit AUTO/HORIZONTAL/VERTICAL, shift_x/shift_y in units of the fitted sensor side, render resolution
x/y and percentage, pixel aspect x/y, camera looking down its local -z with y up) is converted to
K, R, t in one place, `blender_camera`, following Blender's own view-plane code
(BKE_camera_params_compute_viewplane). A photo whose size differs from the render resolution is
fitted the way Blender fits a render of that size: the camera's fitted sensor side keeps its field
of view (meta.json records it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError

CAMERA_MODELS = ("blender", "opencv")
SENSOR_FITS = ("AUTO", "HORIZONTAL", "VERTICAL")
ASPECT_RTOL = 0.01  # photo and camera image aspects closer than this are the same aspect


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



def load_camera(path, image_size: tuple[int, int]) -> Camera:
    """A camera JSON, fitted to an image of (width, height)."""
    return camera_from_dict(read_camera_json(path), image_size)
