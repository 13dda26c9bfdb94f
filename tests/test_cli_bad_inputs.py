"""Issue 12's bad-input corpus findings, as a user meets them: real `humantex` subprocesses, real files.

Items: 9 (a killed run leaves the previous set of layers whole, and the next run clears its
leftovers), 11 (a texture from almost nothing is refused), 12 (unwritable output folders, huge
--erode: one line, exit 2, before the work), 13 (--erode bounded by the image size), 14 (--out "",
a folder as --photo, an INDS that matches no person), 15 (same-named files that humantex did not
write are never replaced without --overwrite).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import assert_one_line_error, humantex
from PIL import Image

PR99 = ("densepose_pr99/im.jpg", "densepose_pr99/IUV.png", "densepose_pr99/INDS.png")
LAYER_PNGS = ("final.png", "mask.png", "sample.png", "refine.png", "partial.png", "visibility.png", "sheet.png")



@pytest.fixture()
def pr99(samples):
    return [samples / p for p in PR99]


def unwrap_args(pr99, out, *extra):
    photo, iuv, inds = pr99
    return ["unwrap", "--photo", photo, "--iuv", iuv, "--inds", inds, "--size", 256, "--out", out, *extra]


# ------------------------------------------------------------------------------------ item 12 / 14
@pytest.mark.parametrize("command", ["unwrap", "generate"])
def test_unwritable_output_folder_fails_before_the_work(command, pr99, tmp_path):
    photo, iuv, inds = pr99
    afile = tmp_path / "a-file"
    afile.write_text("x")
    for out in ("/proc/humantex-test/out", afile / "sub"):  # not writable even for root; below a file
        r = humantex(command, "--photo", photo, "--iuv", iuv, "--inds", inds, "--size", 256, "--out", out)
        assert_one_line_error(r, "output folder")  # "cannot write to" / "cannot make" it
        assert "[humantex]" not in r.stderr  # refused before any stage ran


def test_empty_out_is_an_error(pr99, tmp_path):
    r = humantex(*unwrap_args(pr99, ""))
    assert_one_line_error(r, "output folder is empty")
    assert not (tmp_path / "partial.png").exists() and not os.path.exists("partial.png")


def test_folder_as_photo_says_folder(pr99, tmp_path):
    _, iuv, inds = pr99
    r = humantex("unwrap", "--photo", tmp_path, "--iuv", iuv, "--out", tmp_path / "out")
    assert_one_line_error(r, "is a folder, not an image file")


def test_inds_matching_no_person_blames_the_inds(pr99, tmp_path):
    photo, iuv, _ = pr99
    size = Image.open(iuv).size
    Image.fromarray(np.zeros(size[::-1], np.uint8)).save(tmp_path / "INDS.png")
    r = humantex("unwrap", "--photo", photo, "--iuv", iuv, "--inds", tmp_path / "INDS.png", "--out", tmp_path / "out")
    assert_one_line_error(r, "INDS map marks no person", "belongs to this IUV")


# ------------------------------------------------------------------------------------ item 12 / 13
@pytest.mark.parametrize("erode", [3000, 100000])
def test_huge_erode_is_refused_quickly(erode, pr99, tmp_path):
    started = time.monotonic()
    r = humantex(*unwrap_args(pr99, tmp_path / "out", "--erode", erode), timeout=120)
    w, h = Image.open(pr99[1]).size
    assert_one_line_error(r, f"--erode {erode} is too much", f"at most {int(min(w, h) * 0.05)} px")
    print(f"refused in {time.monotonic() - started:.1f} s")
    r = humantex(*unwrap_args(pr99, tmp_path / "ok", "--erode", int(min(w, h) * 0.05), "--quiet"))
    assert r.returncode == 0, r.stderr  # the documented maximum itself is accepted


# ------------------------------------------------------------------------------------------- item 11
def tiny_inputs(folder):
    """An 8×8 photo whose IUV has one body pixel: a texture from almost nothing."""
    folder.mkdir()
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(folder / "photo.png")
    iuv = np.zeros((8, 8, 3), np.uint8)
    iuv[4, 4] = (1, 128, 128)  # R = part 1, G = U, B = V
    Image.fromarray(iuv).save(folder / "iuv.png")
    return folder / "photo.png", folder / "iuv.png"


def test_almost_nothing_visible_is_refused(tmp_path):
    photo, iuv = tiny_inputs(tmp_path / "in")
    for command in ("unwrap", "generate"):
        out = tmp_path / command
        r = humantex(command, "--photo", photo, "--iuv", iuv, "--iuv-order", "iuv", "--size", 256, "--out", out)
        assert_one_line_error(r, "too little of the body", "the minimum is 1%")
        assert not out.exists()  # nothing written, not even the folder
    # The minimum is a documented setting, not a hidden failure: 0 lets it through.
    r = humantex("unwrap", "--photo", photo, "--iuv", iuv, "--iuv-order", "iuv", "--size", 256,
                 "--out", tmp_path / "forced", "--min-coverage", 0, "--quiet")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "forced" / "meta.json").read_text())["coverage"] < 0.001


# ------------------------------------------------------------------------------------------- item 15
def test_files_humantex_did_not_write_are_never_replaced(pr99, tmp_path):
    out = tmp_path / "shared-folder"
    out.mkdir()
    (out / "partial.png").write_bytes(b"the user's own picture")
    (out / "notes.txt").write_text("mine")
    r = humantex(*unwrap_args(pr99, out, "--quiet"))
    assert_one_line_error(r, "partial.png", "not written by humantex", "--overwrite")
    assert (out / "partial.png").read_bytes() == b"the user's own picture"
    assert not (out / "visibility.png").exists()

    r = humantex(*unwrap_args(pr99, out, "--quiet", "--overwrite"))
    assert r.returncode == 0, r.stderr
    assert Image.open(out / "partial.png").size == (256, 256)
    # A rerun into a folder humantex wrote replaces its own files without asking; others stay.
    r = humantex(*unwrap_args(pr99, out, "--quiet"))
    assert r.returncode == 0, r.stderr
    assert (out / "notes.txt").read_text() == "mine"
    help_text = " ".join(humantex("generate", "--help").stdout.split())
    assert "--overwrite also replace same-named files that humantex did not write" in help_text


# -------------------------------------------------------------------------------------------- item 9
def test_killed_run_leaves_the_previous_set_whole(pr99, tmp_path):
    photo, iuv, inds = pr99
    out = tmp_path / "out"
    base = ["generate", "--photo", photo, "--iuv", iuv, "--inds", inds, "--out", out, "--device", "cpu"]
    first = humantex(*base, "--size", 256, "--quiet")
    assert first.returncode == 0, first.stderr

    # The second run, at 2048, is killed as soon as it starts writing.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "blender_humantex", *map(str, base), "--size", "2048"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    try:
        for line in proc.stderr:
            if line.startswith("[humantex] write"):
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=600)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed in its write stage"
    sizes = {name: Image.open(out / name).size for name in LAYER_PNGS if name != "sheet.png"}
    assert set(sizes.values()) == {(256, 256)}, sizes  # all from the first run: no mixed set
    assert json.loads((out / "meta.json").read_text())["size"] == 256
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert leftovers and all(name.startswith(".humantex-job-") for name in leftovers), leftovers

    # An older version's orphaned temporary file, and the killed run's staging folder: the next run
    # in the folder removes both.
    (out / ".final.abc123.png.tmp").write_bytes(b"half a png")
    third = humantex(*base, "--size", 256, "--quiet")
    assert third.returncode == 0, third.stderr
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_worker_never_replaces_a_file_the_user_made(tmp_path, pr99):
    """The worker (the add-on's jobs) uses the same folder rules as the CLI."""
    from blender_humantex.worker.client import WorkerClient
    from blender_humantex.worker.protocol import GenerateRequest

    out = tmp_path / "Body"
    out.mkdir()
    (out / "final.png").write_bytes(b"the user's own")
    client = WorkerClient(sys.executable, device="cpu")
    try:
        job = client.submit(GenerateRequest(photo=str(pr99[0]), iuv=str(pr99[1]), size=256, out_dir=str(out)))
        deadline = time.monotonic() + 300
        while not job.done and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.state == "error" and job.error.kind == "would_overwrite", job.error
        assert (out / "final.png").read_bytes() == b"the user's own"
    finally:
        client.close()
