"""`humantex unwrap` end to end, as a subprocess, on every sample in densepose_samples."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import humantex
from PIL import Image

# (photo, iuv, inds) relative to densepose_samples/; every sample that has its photo
SAMPLES = {
    "smplitex": ("smplitex_example/MEN-Jackets_Vests-id_00003336-09_1_front.jpg",
                 "smplitex_example/MEN-Jackets_Vests-id_00003336-09_1_front_densepose.png", None),
    "pr99": ("densepose_pr99/im.jpg", "densepose_pr99/IUV.png", "densepose_pr99/INDS.png"),
    "demo": ("densepose_demo/demo_im.jpg", "densepose_demo/demo_im_IUV.png", "densepose_demo/demo_im_INDS.png"),
    "pws_blouse": ("pose_with_style/fashionWOMENBlouses_Shirtsid0000635004_1front.png",
                   "pose_with_style/fashionWOMENBlouses_Shirtsid0000635004_1front_iuv.png", None),
    "pws_dress_back": ("pose_with_style/fashionWOMENDressesid0000262902_3back.png",
                       "pose_with_style/fashionWOMENDressesid0000262902_3back_iuv.png", None),
    "pws_skirt": ("pose_with_style/fashionWOMENSkirtsid0000177102_1front.png",
                  "pose_with_style/fashionWOMENSkirtsid0000177102_1front_iuv.png", None),
}



@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_unwrap_every_sample(name, samples, tmp_path):
    photo, iuv, inds = SAMPLES[name]
    args = ["unwrap", "--photo", samples / photo, "--iuv", samples / iuv, "--size", 256, "--out", tmp_path]
    if inds:
        args += ["--inds", samples / inds]
    r = humantex(*args)
    assert r.returncode == 0, r.stderr
    assert "[humantex] unwrap" in r.stderr  # progress on stderr (not a TTY: plain lines)
    assert "coverage" in r.stdout
    partial = np.asarray(Image.open(tmp_path / "partial.png"))
    visibility = np.asarray(Image.open(tmp_path / "visibility.png"))
    assert partial.shape == (256, 256, 3) and visibility.shape == (256, 256)
    assert set(np.unique(visibility)) == {0, 255}
    assert np.all(partial[visibility == 0] == 0)
    assert partial[visibility == 255].mean() > 10  # real colours, not black
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["size"] == 256 and meta["coverage"] > 0.05
    assert meta["iuv_order"] == ("iuv" if name.startswith("pws") else "vui")


def test_person_and_order_flags(samples, tmp_path):
    photo, iuv, inds = SAMPLES["demo"]
    r = humantex("unwrap", "--photo", samples / photo, "--iuv", samples / iuv, "--inds", samples / inds,
                 "--person", 7, "--iuv-order", "vui", "--erode", 2, "--size", 256, "--out", tmp_path, "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # --quiet: no progress
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["person"] == 7 and meta["erode_px"] == 2


def _one_line_error(r, *words):
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) >= 1 and "Traceback" not in r.stderr
    last = lines[-1]
    assert last.startswith("humantex: error:") or last.startswith("usage:") or "error:" in last, last
    for w in words:
        assert w in r.stderr, r.stderr


def test_cli_errors(samples, tmp_path):
    pr_photo, pr_iuv, _ = SAMPLES["pr99"]
    demo_photo, demo_iuv, demo_inds = SAMPLES["demo"]
    out = tmp_path / "out"
    # the photo given as the IUV
    _one_line_error(humantex("unwrap", "--photo", samples / pr_photo, "--iuv", samples / pr_photo, "--out", out),
                    "not a DensePose IUV")
    # photo and IUV of different sizes
    _one_line_error(humantex("unwrap", "--photo", samples / pr_photo, "--iuv", samples / demo_iuv, "--out", out),
                    "--on-size-mismatch resize")
    # an unknown person
    _one_line_error(humantex("unwrap", "--photo", samples / demo_photo, "--iuv", samples / demo_iuv,
                             "--inds", samples / demo_inds, "--person", 42, "--size", 256, "--out", out),
                    "no person 42")
    # texture size out of range, pixel limit, missing file
    _one_line_error(humantex("unwrap", "--photo", samples / pr_photo, "--iuv", samples / pr_iuv, "--size", 100,
                             "--out", out), "256..2048")
    _one_line_error(humantex("unwrap", "--photo", samples / pr_photo, "--iuv", samples / pr_iuv,
                             "--max-pixels", 1000, "--out", out), "--max-pixels")
    _one_line_error(humantex("unwrap", "--photo", tmp_path / "nope.jpg", "--iuv", samples / pr_iuv, "--out", out),
                    "file not found")
    # argparse: a missing required flag
    _one_line_error(humantex("unwrap", "--photo", samples / pr_photo, "--out", out), "--iuv")
    assert not out.exists()  # nothing half-written on failure
