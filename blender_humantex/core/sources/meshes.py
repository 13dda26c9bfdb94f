"""Meshes for the camera projection: MeshData (world-space triangles with a UV map), its files, a
procedural test sphere, and whether a UV map is SMPL's layout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..uv_layout import get_layout, rasterize_triangles, uv_to_pixels

SMPL_LAYOUT_MIN_IOU = 0.97  # chart-mask IoU at 256² above which a UV map is SMPL's layout


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
        from ..errors import DependencyError

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
    return rasterize_triangles(uv_to_pixels(corner_uvs, size), size, size, dtype=np.float32)[0] >= 0


def smpl_layout_iou(corner_uvs: np.ndarray, size: int = 256) -> float:
    """How well a UV map covers the SMPL UV layout's charts: IoU of the two chart masks at size².

    The networks are trained on SMPL's layout; a UV map above SMPL_LAYOUT_MIN_IOU is that layout
    (whatever the mesh's topology, e.g. a subdivided SMPL), anything else is not.
    """
    mine = uv_chart_mask(corner_uvs, size)
    smpl = get_layout(size).chart_mask
    union = int((mine | smpl).sum())
    return float((mine & smpl).sum()) / union if union else 0.0

