"""Make the camera-projection example: a small mesh, a camera JSON and a photo rendered by Blender.

    .venv/bin/python examples/projection/make_example.py      (needs the bpy module: pip install bpy==5.0.1)

Writes, next to this script:
  mesh.obj      two UV spheres (the small one in front of the big one), in Blender's Z-up world
  camera.json   the scene camera in the camera JSON's Blender model (as the add-on writes it)
  camera_opencv.json   the same camera as OpenCV K, R, t
  photo.png     a Cycles render of the textured mesh through that camera (RGBA: alpha is the silhouette)
Everything here is made by this script (GPL-3.0-or-later with the code); no third-party data.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

import bpy
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from blender_humantex.addon.projection import camera_params, mesh_arrays  # noqa: E402
from blender_humantex.core.imageio import write_png  # noqa: E402
from blender_humantex.core.sources.cameras import blender_camera  # noqa: E402


def texture(size: int = 512) -> np.ndarray:
    c = (np.arange(size) + 0.5) / size
    u, v = np.meshgrid(c, 1.0 - c)
    stripes = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * 12 * u)) * np.sign(np.sin(2 * np.pi * 6 * v))
    r = 0.55 + 0.35 * np.sin(2 * np.pi * (2 * u + v))
    g = 0.45 + 0.25 * stripes
    b = 0.5 + 0.3 * np.cos(2 * np.pi * 3 * v)
    return np.stack([r, g, b], -1).astype(np.float32)


def sphere(bm, radius, centre, u_offset):
    import bmesh
    from mathutils import Matrix

    part = bmesh.new()
    uv = part.loops.layers.uv.new("UVMap")
    bmesh.ops.create_uvsphere(part, u_segments=32, v_segments=16, radius=radius, calc_uvs=True,
                              matrix=Matrix.Translation(centre))
    for face in part.faces:
        for loop in face.loops:
            loop[uv].uv = (u_offset + 0.5 * loop[uv].uv[0], loop[uv].uv[1])
    mesh = bpy.data.meshes.new("part")
    part.to_mesh(mesh)
    part.free()
    bm.from_mesh(mesh)
    bpy.data.meshes.remove(mesh)


def main():
    import bmesh
    from mathutils import Vector

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    bm = bmesh.new()
    sphere(bm, 1.0, (0.0, 0.0, 0.0), 0.0)
    sphere(bm, 0.4, (0.4, -1.5, 0.3), 0.5)
    bmesh.ops.triangulate(bm, faces=bm.faces[:])
    mesh = bpy.data.meshes.new("Example")
    bm.to_mesh(mesh)
    bm.free()
    obj = bpy.data.objects.new("Example", mesh)
    scene.collection.objects.link(obj)

    with tempfile.TemporaryDirectory() as tmp:
        write_png(Path(tmp) / "texture.png", texture())
        image = bpy.data.images.load(str(Path(tmp) / "texture.png"))
        image.pack()
    material = bpy.data.materials.new("Example")
    if material.node_tree is None:
        material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.clear()
    tex, emission, out = (nodes.new(kind) for kind in
                          ("ShaderNodeTexImage", "ShaderNodeEmission", "ShaderNodeOutputMaterial"))
    tex.image = image
    links.new(tex.outputs["Color"], emission.inputs["Color"])
    links.new(emission.outputs["Emission"], out.inputs["Surface"])
    mesh.materials.append(material)

    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(cam)
    cam.location = (1.5, -6.0, 1.5)
    cam.rotation_euler = (Vector((0.0, 0.0, 0.0)) - cam.location).to_track_quat("-Z", "Y").to_euler()
    cam.data.lens = 50.0
    scene.camera = cam

    render = scene.render
    render.engine = "CYCLES"
    scene.cycles.device, scene.cycles.samples, scene.cycles.use_denoising = "CPU", 16, False
    render.resolution_x, render.resolution_y, render.resolution_percentage = 512, 384, 100
    render.film_transparent = True
    render.dither_intensity = 0.0
    scene.view_settings.view_transform = "Standard"
    render.image_settings.file_format, render.image_settings.color_mode = "PNG", "RGBA"
    render.filepath = str(HERE / "photo.png")
    bpy.ops.render.render(write_still=True)

    arrays = mesh_arrays(obj, bpy.context.evaluated_depsgraph_get())
    lines = ["# made by examples/projection/make_example.py: Blender world coordinates (Z up)"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in arrays["vertices"]]
    lines += [f"vt {u:.6f} {v:.6f}" for u, v in arrays["corner_uvs"].reshape(-1, 2)]
    lines += [f"f {a + 1}/{3 * i + 1} {b + 1}/{3 * i + 2} {c + 1}/{3 * i + 3}"
              for i, (a, b, c) in enumerate(arrays["triangles"])]
    (HERE / "mesh.obj").write_text("\n".join(lines) + "\n")
    params = camera_params(scene)
    params["matrix_world"] = [[round(x, 9) for x in row] for row in params["matrix_world"]]
    (HERE / "camera.json").write_text(json.dumps(params, indent=2) + "\n")
    opencv = blender_camera(params).to_json()
    opencv = {k: (np.round(np.asarray(v), 9).tolist() if isinstance(v, list) else v) for k, v in opencv.items()}
    (HERE / "camera_opencv.json").write_text(json.dumps(opencv, indent=2) + "\n")
    print(f"wrote {HERE}/mesh.obj, camera.json, camera_opencv.json, photo.png"
          f" ({len(arrays['triangles'])} triangles, camera at {tuple(round(c, 2) for c in cam.location)},"
          f" {math.degrees(cam.data.angle):.1f}° field of view)")


if __name__ == "__main__":
    main()
