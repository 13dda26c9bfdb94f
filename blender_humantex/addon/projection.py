"""The Blender side of camera projection: gather arrays into files, set the photo up as the camera's background.

Blender only gathers: the active object's evaluated mesh (modifiers and armature applied) in world
space, its triangles and active UV map as per-corner UVs (mesh.npz), and the scene camera in the
camera JSON format that `humantex project` reads (camera.json). The worker does the projection.
"""

from __future__ import annotations

import json
import os

import bpy
import numpy as np

INPUTS_FOLDER = "inputs"  # inside the object's output folder: what the worker projected from
MESH_FILE = "mesh.npz"
CAMERA_FILE = "camera.json"


def camera_problem(scene) -> str | None:
    """Why the scene's camera cannot be projected from, or None."""
    cam = scene.camera if scene is not None else None
    if cam is None:
        return "the scene has no active camera: add one, look through it and match the photo"
    if cam.type != "CAMERA":
        return f"the scene camera {cam.name} is a {cam.type.lower()}, not a camera"
    if cam.data.type != "PERSP":
        return f"camera {cam.name} is {cam.data.type.lower()}: camera projection needs a perspective camera"
    return None


def camera_params(scene, depsgraph=None) -> dict:
    """The scene camera and render settings as the camera JSON's Blender model (see README)."""
    cam = scene.camera
    if depsgraph is not None:  # animated or constrained cameras: where it is now
        cam = cam.evaluated_get(depsgraph)
    data, render = cam.data, scene.render
    return {
        "model": "blender",
        "type": data.type,
        "matrix_world": [list(row) for row in cam.matrix_world],
        "lens": data.lens,
        "sensor_width": data.sensor_width,
        "sensor_height": data.sensor_height,
        "sensor_fit": data.sensor_fit,
        "shift_x": data.shift_x,
        "shift_y": data.shift_y,
        "resolution_x": render.resolution_x,
        "resolution_y": render.resolution_y,
        "resolution_percentage": render.resolution_percentage,
        "pixel_aspect_x": render.pixel_aspect_x,
        "pixel_aspect_y": render.pixel_aspect_y,
        "camera": cam.name,
    }


def mesh_arrays(obj, depsgraph) -> dict:
    """The evaluated mesh in world space: vertices V×3, triangles T×3, corner_uvs T×3×2 (active UV map)."""
    uv_name = obj.data.uv_layers.active.name if obj.data.uv_layers.active else None
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        layer = mesh.uv_layers.get(uv_name) if uv_name else None
        if layer is None:
            layer = mesh.uv_layers.active
        if layer is None:
            raise ValueError(f"{obj.name} has no UV map after its modifiers")
        mesh.calc_loop_triangles()
        n_verts, n_tris, n_loops = len(mesh.vertices), len(mesh.loop_triangles), len(mesh.loops)
        co = np.empty(n_verts * 3, dtype=np.float32)
        mesh.vertices.foreach_get("co", co)
        tris = np.empty(n_tris * 3, dtype=np.int32)
        mesh.loop_triangles.foreach_get("vertices", tris)
        loops = np.empty(n_tris * 3, dtype=np.int32)
        mesh.loop_triangles.foreach_get("loops", loops)
        uv = np.empty(n_loops * 2, dtype=np.float32)
        layer.data.foreach_get("uv", uv)
        world = np.array(evaluated.matrix_world, dtype=np.float64)
    finally:
        evaluated.to_mesh_clear()
    co = co.reshape(-1, 3).astype(np.float64) @ world[:3, :3].T + world[:3, 3]
    return {
        "vertices": co,
        "triangles": tris.reshape(-1, 3).astype(np.int64),
        "corner_uvs": uv.reshape(-1, 2)[loops].reshape(-1, 3, 2).astype(np.float64),
    }


def _atomic(path: str, write) -> str:
    """`write(f)` into an open binary file that then replaces `path` (core.files.atomic_write)."""
    from ..core.files import atomic_write

    def save(tmp):
        with open(tmp, "wb") as f:
            write(f)

    return str(atomic_write(path, save))


def write_inputs(obj, scene, depsgraph, out_dir: str) -> tuple[str, str]:
    """mesh.npz and camera.json in <out_dir>/inputs/; returns their paths. Milliseconds for a body mesh."""
    folder = os.path.join(out_dir, INPUTS_FOLDER)
    arrays = mesh_arrays(obj, depsgraph)
    params = camera_params(scene, depsgraph)
    mesh_path = _atomic(os.path.join(folder, MESH_FILE), lambda f: np.savez(f, **arrays))
    camera_path = _atomic(os.path.join(folder, CAMERA_FILE),
                          lambda f: f.write((json.dumps(params, indent=2) + "\n").encode("utf-8")))
    return mesh_path, camera_path


def set_background_photo(scene, photo_path: str):
    """Show the photo behind the scene camera's view and make the render the photo's size, so the
    camera frame is the photo and the mesh can be posed onto it. Returns the image."""
    cam = scene.camera
    image = bpy.data.images.load(photo_path, check_existing=True)
    data = cam.data
    data.show_background_images = True
    entry = next((bg for bg in data.background_images if bg.image == image), None)
    if entry is None:
        entry = data.background_images.new()
        entry.image = image
    for other in data.background_images:  # one photo at a time: the others stay but are hidden
        other.show_background_image = other == entry
    entry.alpha = 0.6
    entry.display_depth = "FRONT"  # over the mesh, half transparent: both show while posing
    entry.frame_method = "STRETCH"  # the render has the photo's size, so nothing is stretched
    width, height = image.size
    if width and height:
        scene.render.resolution_x, scene.render.resolution_y = width, height
        scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    return image
