"""The Blender batch's assign-only job, {"object": ..., "textures": "DIR/<id>"}: textures made elsewhere
(`humantex generate` / `humantex batch`, e.g. on GPU nodes) are only put on the object's material.

Real bpy module, a real `humantex generate` output (the shipped weights, the bundled example at 256²),
and `python -m blender_humantex.batch` as a user runs it. The worker Python given does not exist: an
assign-only job never starts a worker.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import bpy  # the real Blender module (BLENDER_USER_RESOURCES is set by conftest)
import numpy as np
from helpers import humantex
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "densepose_pr99"


def run(*args, cwd):
    """`python -m blender_humantex.batch ...` (the checkout's Blender batch, with the bpy module)."""
    return subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def test_textures_job_only_assigns_a_whole_output(tmp_path):
    made = humantex("generate", "--photo", EXAMPLE / "im.jpg", "--iuv", EXAMPLE / "IUV.png", "--inds", EXAMPLE / "INDS.png",
                    "--size", 256, "--out", tmp_path / "farm" / "alice", "--quiet")
    assert made.returncode == 0, made.stderr
    shutil.copytree(tmp_path / "farm" / "alice", tmp_path / "farm" / "half")
    (tmp_path / "farm" / "half" / "mask.png").unlink()  # as if the copy from the farm stopped part way

    bpy.ops.wm.read_homefile(use_empty=True)
    for name in ("Body", "Other"):
        bpy.ops.mesh.primitive_grid_add(x_subdivisions=8, y_subdivisions=8, calc_uvs=True)
        bpy.context.active_object.name = name
    blend = tmp_path / "crowd.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    (tmp_path / "jobs.json").write_text(json.dumps({"jobs": [
        {"object": "Body", "textures": "farm/alice"},
        {"object": "Other", "textures": "farm/half"},
        {"object": "Other", "textures": "farm/alice", "size": 512},
    ]}))  # fmt: skip
    batch = ("blender_humantex.batch", "--blend", blend, "--manifest", "jobs.json", "--python", tmp_path / "no-worker")

    first = run(*batch, cwd=tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "1 done, 0 skipped, 2 failed" in first.stdout
    assert "is not a whole humantex output: mask.png missing" in first.stdout
    assert "a textures job takes only object and textures, not size" in first.stdout

    bpy.ops.wm.open_mainfile(filepath=str(blend))
    assert bpy.data.materials.get("HumanTex_Other") is None
    nodes = bpy.data.materials["HumanTex_Body"].node_tree.nodes
    images = {Path(bpy.path.abspath(n.image.filepath)).resolve() for n in nodes if n.type == "TEX_IMAGE" and n.image}
    assert images == {(tmp_path / "farm" / "alice" / f"{layer}.png").resolve()
                      for layer in ("final", "sample", "refine", "mask", "partial", "visibility")}
    final = next(n.image for n in nodes if n.type == "TEX_IMAGE" and n.image and n.image.filepath.endswith("final.png"))
    pixels = np.empty(len(final.pixels), dtype=np.float32)
    final.pixels.foreach_get(pixels)
    expected = np.asarray(Image.open(tmp_path / "farm" / "alice" / "final.png").convert("RGB"))[::-1] / 255.0
    assert np.abs(pixels.reshape(256, 256, 4)[..., :3] - expected).max() < 1e-3  # sRGB bytes as stored

    again = run(*batch, cwd=tmp_path)
    assert "0 done, 1 skipped, 2 failed" in again.stdout, again.stdout + again.stderr
    shutil.copy(tmp_path / "farm" / "alice" / "mask.png", tmp_path / "farm" / "half" / "mask.png")  # now whole
    fixed = run(*batch, cwd=tmp_path)
    assert "1 done, 1 skipped, 1 failed" in fixed.stdout, fixed.stdout + fixed.stderr
