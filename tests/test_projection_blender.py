"""Camera projection against Blender itself (the real bpy module, headless).

A UV-mapped mesh (two spheres, the small one in front of the big one, each on its own half of the
UV square) wears a known texture on an emission shader. Cycles renders it on the CPU through a
camera with a non-square render and a lens shift, Standard view transform, so each pixel is the
texture's colour there. The add-on's own gathering code (addon/projection.py) writes the evaluated
mesh and the camera; core.sources.projection projects the render back:
- colours: PSNR ≥ 30 dB against the known texture on the seen texels (all ≥ 2 px from a silhouette);
- visibility: the exact (depth + facing) visibility agrees with Blender's scene.ray_cast from the
  camera to every texel's surface point: IoU ≥ 0.95;
- the Blender camera conversion agrees with bpy_extras' world_to_camera_view, and an OpenCV camera
  derived from Blender's own projection matrix gives the same texture.
The scene is rendered once per module (about 10-20 s on a busy 2-core machine).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import bpy  # the real Blender module (BLENDER_USER_RESOURCES is set by conftest)
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Matrix, Vector

from blender_humantex.addon import projection as gather
from blender_humantex.core.imageio import read_rgb, write_png
from blender_humantex.core.sources.cameras import blender_camera, load_camera
from blender_humantex.core.sources.meshes import load_mesh
from blender_humantex.core.sources.projection import project_files
from blender_humantex.core.uv_layout import rasterize_triangles

TEXTURE = 512
RENDER = (512, 384)


def known_texture(size: int) -> np.ndarray:
    """Smooth and colourful, periodic in u (no seam at u = 0/1), no detail finer than a render can keep."""
    c = (np.arange(size) + 0.5) / size
    u, v = np.meshgrid(c, 1.0 - c)  # row 0 is v = 1
    r = 0.5 + 0.35 * np.sin(2 * np.pi * (4 * u + 0.5 * v))
    g = 0.5 + 0.35 * np.cos(2 * np.pi * 3 * v) * np.cos(2 * np.pi * 2 * u)
    b = 0.5 + 0.3 * np.sin(2 * np.pi * (2 * u + 2 * v) + 1.0)
    return np.stack([r, g, b], -1).astype(np.float32)


def add_sphere(bm, radius, centre, u_offset):
    """A UV sphere into bm, its UVs squeezed into half the square (u_offset 0 or 0.5)."""
    import bmesh  # only importable once bpy is

    mesh = bpy.data.meshes.new("part")
    part = bmesh.new()
    uv = part.loops.layers.uv.new("UVMap")  # calc_uvs fills the existing layer
    bmesh.ops.create_uvsphere(part, u_segments=48, v_segments=24, radius=radius, calc_uvs=True,
                              matrix=Matrix.Translation(centre))
    for face in part.faces:
        for loop in face.loops:
            loop[uv].uv = (u_offset + 0.5 * loop[uv].uv[0], loop[uv].uv[1])
    part.to_mesh(mesh)
    part.free()
    bm.from_mesh(mesh)
    bpy.data.meshes.remove(mesh)


def build_scene(texture_path):
    import bmesh

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    bm = bmesh.new()
    add_sphere(bm, 1.0, (0.0, 0.0, 0.0), 0.0)
    add_sphere(bm, 0.35, (0.35, -1.6, 0.25), 0.5)
    # Triangulate here, so Blender renders exactly the triangles the projection gets
    bmesh.ops.triangulate(bm, faces=bm.faces[:])
    mesh = bpy.data.meshes.new("Spheres")
    bm.to_mesh(mesh)
    bm.free()
    obj = bpy.data.objects.new("Spheres", mesh)
    scene.collection.objects.link(obj)
    obj.rotation_euler = (0.0, 0.0, math.radians(20))  # a world matrix that is not the identity
    obj.location = (0.1, 0.0, -0.1)

    image = bpy.data.images.load(str(texture_path))
    image.colorspace_settings.name = "sRGB"
    material = bpy.data.materials.new("Known")
    if material.node_tree is None:  # Blender < 5 makes materials without nodes
        material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.clear()
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = image
    tex.interpolation = "Linear"
    emission = nodes.new("ShaderNodeEmission")
    out = nodes.new("ShaderNodeOutputMaterial")
    links.new(tex.outputs["Color"], emission.inputs["Color"])
    links.new(emission.outputs["Emission"], out.inputs["Surface"])
    mesh.materials.append(material)

    cam_data = bpy.data.cameras.new("Camera")
    cam_data.lens = 50.0
    cam_data.sensor_fit = "AUTO"
    cam_data.shift_x = 0.03
    cam_data.shift_y = -0.02
    cam = bpy.data.objects.new("Camera", cam_data)
    scene.collection.objects.link(cam)
    cam.location = (1.2, -6.5, 1.3)
    direction = Vector((0.1, 0.0, 0.0)) - cam.location
    cam.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
    scene.camera = cam

    render = scene.render
    render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 16
    scene.cycles.use_denoising = False
    scene.cycles.max_bounces = 0
    render.resolution_x, render.resolution_y = RENDER
    render.resolution_percentage = 100
    render.film_transparent = True  # the alpha channel is the silhouette: the projection's person mask
    render.filter_size = 1.0
    render.dither_intensity = 0.0
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    render.image_settings.file_format = "PNG"
    render.image_settings.color_mode = "RGBA"
    render.image_settings.color_depth = "8"
    return scene, obj, cam


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("projection_blender")
    texture = known_texture(TEXTURE)
    write_png(folder / "known.png", texture)
    scene, obj, cam = build_scene(folder / "known.png")
    scene.render.filepath = str(folder / "render.png")
    bpy.ops.render.render(write_still=True)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    mesh_path, camera_path = gather.write_inputs(obj, scene, depsgraph, str(folder))
    result = project_files(mesh_path, camera_path, folder / "render.png", size=TEXTURE)
    return {"folder": folder, "texture": texture, "scene": scene, "obj": obj, "cam": cam, "depsgraph": depsgraph,
            "mesh": mesh_path, "camera": camera_path, "result": result}


def texel_points(mesh, size):
    uv_px = np.stack([mesh.corner_uvs[..., 0] * size, (1 - mesh.corner_uvs[..., 1]) * size], -1)
    face, bary = rasterize_triangles(uv_px, size, size)
    rows, cols = np.nonzero(face >= 0)
    f = face[rows, cols]
    points = np.einsum("nk,nkc->nc", bary[rows, cols].astype(np.float64), mesh.vertices[mesh.triangles][f])
    return rows, cols, points


def test_render_round_trip_colours(round_trip):
    result, texture = round_trip["result"], round_trip["texture"]
    meta = result.meta
    assert meta["mask"] == "photo alpha" and meta["uv_layout"] == "mesh"
    seen = result.visibility > 0
    assert seen.sum() > 20000, meta
    mse = float(((result.partial[seen] - texture[seen]) ** 2).mean())
    psnr = 10 * math.log10(1.0 / mse)
    print(f"round trip: {seen.sum()} texels seen, PSNR {psnr:.2f} dB")
    assert psnr >= 30.0

    # every seen texel is at least 2 px inside the render's silhouette (measured on the render itself)
    import cv2

    alpha = np.asarray(bpy.data.images.load(str(round_trip["folder"] / "render.png")).pixels[:]).reshape(
        RENDER[1], RENDER[0], 4)[::-1, :, 3]
    inside = cv2.distanceTransform((alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    mesh = load_mesh(round_trip["mesh"])
    rows, cols, points = texel_points(mesh, TEXTURE)
    camera = load_camera(round_trip["camera"], RENDER)
    xy, _ = camera.project(points)
    on = seen[rows, cols]
    ix = np.clip(np.rint(xy[on, 0]), 0, RENDER[0] - 1).astype(int)
    iy = np.clip(np.rint(xy[on, 1]), 0, RENDER[1] - 1).astype(int)
    assert (inside[iy, ix] >= 2).mean() > 0.999


def test_visibility_matches_blender_ray_cast(round_trip):
    scene, depsgraph, cam = round_trip["scene"], round_trip["depsgraph"], round_trip["cam"]
    result = round_trip["result"]
    mesh = load_mesh(round_trip["mesh"])
    rows, cols, points = texel_points(mesh, TEXTURE)
    origin = cam.matrix_world.translation.copy()
    camera = load_camera(round_trip["camera"], RENDER)
    xy, z = camera.project(points)
    in_frame = (z > 0) & (xy[:, 0] >= -0.5) & (xy[:, 0] <= RENDER[0] - 0.5) & (xy[:, 1] >= -0.5) & (
        xy[:, 1] <= RENDER[1] - 0.5)
    reference = np.zeros(len(points), dtype=bool)
    for i in np.nonzero(in_frame)[0]:
        target = Vector(points[i])
        ray = target - origin
        distance = ray.length
        hit, location, normal, *_ = scene.ray_cast(depsgraph, origin, ray.normalized(), distance=distance * 1.001)
        reference[i] = hit and (location - target).length < 1e-3 * distance and normal.dot(-ray) > 0
    geometric = result.geometric[rows, cols]
    iou = (geometric & reference).sum() / (geometric | reference).sum()
    seen = result.visibility[rows, cols] > 0
    print(f"visibility vs ray_cast: IoU {iou:.4f} (exact visibility), seen texels {seen.sum()} of {reference.sum()}"
          f" visible; seen ⊂ visible: {(seen & ~reference).sum()} exceptions")
    assert iou >= 0.95
    assert (seen & ~reference).sum() <= 0.002 * seen.sum()  # the final mask never claims hidden texels
    # the small sphere hides part of the big one: those texels are unseen
    on_big = mesh.corner_uvs[..., 0].mean(1) < 0.5
    assert (~reference & in_frame).sum() > 0 and on_big.any()


def test_blender_camera_matches_world_to_camera_view(round_trip):
    scene, cam = round_trip["scene"], round_trip["cam"]
    params = gather.camera_params(scene)
    camera = blender_camera(params)
    rng = np.random.default_rng(0)
    points = rng.uniform(-1.5, 1.5, (200, 3))
    xy, _ = camera.project(points)
    for settings in ({}, {"sensor_fit": "VERTICAL"}, {"resolution": (300, 500)}, {"aspect": (1.0, 1.5)}):
        data = cam.data
        old = (data.sensor_fit, scene.render.resolution_x, scene.render.resolution_y, scene.render.pixel_aspect_y)
        if "sensor_fit" in settings:
            data.sensor_fit = settings["sensor_fit"]
        if "resolution" in settings:
            scene.render.resolution_x, scene.render.resolution_y = settings["resolution"]
        if "aspect" in settings:
            scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = settings["aspect"]
        try:
            camera = blender_camera(gather.camera_params(scene))
            xy, _ = camera.project(points)
            w, h = camera.width, camera.height
            expected = np.array([world_to_camera_view(scene, cam, Vector(p))[:2] for p in points])
            # normalised (0..1, y up, edges) -> OpenCV pixels (centres at integers, y down)
            expected = np.stack([expected[:, 0] * w - 0.5, (1 - expected[:, 1]) * h - 0.5], -1)
            assert np.abs(xy - expected).max() < 1e-3, settings
        finally:
            data.sensor_fit = old[0]
            scene.render.resolution_x, scene.render.resolution_y = old[1], old[2]
            scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = 1.0, old[3]


def test_opencv_camera_path_equals_blender_camera_path(round_trip, tmp_path):
    """K from Blender's own projection matrix (Object.calc_matrix_camera), R and t from the camera's
    world matrix: the OpenCV JSON projects the render into the same texture as the Blender JSON."""
    cam, depsgraph = round_trip["cam"], round_trip["depsgraph"]
    w, h = RENDER
    proj = np.array(cam.calc_matrix_camera(depsgraph, x=w, y=h, scale_x=1.0, scale_y=1.0))
    K = [[w * proj[0, 0] / 2, 0.0, w * (1 - proj[0, 2]) / 2 - 0.5],
         [0.0, h * proj[1, 1] / 2, h * (1 + proj[1, 2]) / 2 - 0.5],
         [0.0, 0.0, 1.0]]
    world_to_cam = np.array(cam.matrix_world.normalized().inverted())
    flip = np.diag([1.0, -1.0, -1.0])
    camera = {"model": "opencv", "K": K, "R": (flip @ world_to_cam[:3, :3]).tolist(),
              "t": (flip @ world_to_cam[:3, 3]).tolist(), "width": w, "height": h}
    (tmp_path / "opencv.json").write_text(json.dumps(camera))
    result = project_files(round_trip["mesh"], tmp_path / "opencv.json", round_trip["folder"] / "render.png",
                           size=TEXTURE)
    blender = round_trip["result"]
    agree = (result.visibility == blender.visibility).mean()
    both = (result.visibility > 0) & (blender.visibility > 0)
    assert agree > 0.9995
    assert np.abs(result.partial[both] - blender.partial[both]).max() < 2 / 255


def test_photo_of_another_aspect_is_fitted_and_recorded(round_trip, tmp_path):
    """A photo cropped to a square (from the render's centre, in a 384² frame): Blender's AUTO fit puts
    the sensor width across the square's side, so the camera JSON still applies and meta.json says so."""
    photo = read_rgb(round_trip["folder"] / "render.png")
    write_png(tmp_path / "square.png", photo[:, 64:448])
    params = json.loads(Path(round_trip["camera"]).read_text())
    params["shift_x"] = params["shift_y"] = 0.0  # the crop is about the optical centre only without shift
    (tmp_path / "camera.json").write_text(json.dumps(params))
    result = project_files(round_trip["mesh"], tmp_path / "camera.json", tmp_path / "square.png", size=256)
    fit = result.meta["photo_fit"]
    assert fit["photo_size"] == [384, 384] and fit["camera_size"] == list(RENDER) and not fit["same_aspect"]
    assert result.meta["camera"]["sensor_fit_used"] == "HORIZONTAL"
