"""`humantex complete` / `humantex generate` as a user runs them: real subprocesses, real files.

The weights are RANDOM: small networks saved as safetensors into a tmp dir by this module (no
trained weights are needed to check flags, files, exit codes and error messages).
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from helpers import assert_one_line_error, humantex
from PIL import Image

from blender_humantex.cli import main
from blender_humantex.core.imageio import read_rgb, write_png


def humantex_in_process(capsys, *args):
    """The same CLI entry point (cli.main) called in this process: saves a torch import per case."""
    returncode = main([str(a) for a in args])
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, returncode, captured.out, captured.err)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, samples):
    """SMPLitex's real partial texture (256², downsampled) and its visibility, as PNG files."""
    folder = tmp_path_factory.mktemp("inputs")
    partial = read_rgb(samples / "smplitex_example" / "MEN-Jackets_Vests-id_00003336-09_1_front_texture.png")
    partial = partial[::2, ::2]
    visibility = (partial.max(axis=2) > 0).astype(np.float32)
    write_png(folder / "partial.png", partial)
    write_png(folder / "visibility.png", visibility)
    write_png(folder / "small_visibility.png", visibility[::2, ::2])
    write_png(folder / "empty.png", np.zeros_like(visibility))
    write_png(folder / "full.png", np.ones_like(visibility))
    return folder


def test_complete_writes_the_contract_files(random_weights, inputs, tmp_path):
    out = tmp_path / "out"
    result = humantex("complete", "--partial", inputs / "partial.png", "--visibility", inputs / "visibility.png",
                      "--size", 128, "--weights", random_weights, "--device", "cpu", "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "wrote 8 files" in result.stdout
    names = {"final", "mask", "sample", "refine", "partial", "visibility"}
    assert {p.name for p in out.iterdir()} == {f"{n}.png" for n in names} | {"meta.json", "sheet.png"}
    for name in names:
        with Image.open(out / f"{name}.png") as img:
            assert img.size == (128, 128)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["method"] == "full" and meta["weights"]["refiner"]["id"]


def test_complete_lazova_default_size(random_weights, inputs, tmp_path, capsys):
    result = humantex_in_process(capsys, "complete", "--partial", inputs / "partial.png", "--visibility", inputs / "visibility.png",
                      "--method", "lazova", "--weights", random_weights, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[humantex] write 100%" in result.stderr  # progress lines on stderr when not quiet
    with Image.open(tmp_path / "final.png") as img:
        assert img.size == (256, 256)
    assert json.loads((tmp_path / "meta.json").read_text())["method"] == "lazova"


def test_generate_from_a_real_photo(random_weights, samples, tmp_path):
    folder = samples / "densepose_pr99"
    result = humantex("generate", "--photo", folder / "im.jpg", "--iuv", folder / "IUV.png", "--inds",
                      folder / "INDS.png", "--size", 128, "--weights", random_weights, "--out", tmp_path, "--quiet")
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "final.png") as img:
        assert img.size == (128, 128)
    assert json.loads((tmp_path / "meta.json").read_text())["unwrap"]["person"] == 1


def test_cli_errors_are_one_line(random_weights, inputs, tmp_path, capsys):
    partial = ["--partial", inputs / "partial.png"]
    common = ["--weights", random_weights, "--out", tmp_path / "o", "--quiet"]

    def run(*args):
        return humantex_in_process(capsys, "complete", *partial, *args, *common)

    assert_one_line_error(run("--visibility", inputs / "small_visibility.png"), "256×256", "128×128", "same size")
    assert_one_line_error(run("--visibility", inputs / "empty.png"), "empty")
    assert_one_line_error(run("--visibility", inputs / "full.png"), "all ones")
    assert_one_line_error(run("--visibility", inputs / "visibility.png", "--size", 8192), "64..4096")
    assert_one_line_error(run("--visibility", inputs / "nope.png"), "not found", "nope.png")
    assert_one_line_error(run("--visibility", inputs / "visibility.png", "--device", "tpu"), "device")
    assert not (tmp_path / "o").exists()  # nothing half-written after an error


def test_missing_weights_in_a_real_process(inputs, tmp_path):
    result = humantex("complete", "--partial", inputs / "partial.png", "--visibility", inputs / "visibility.png",
                      "--weights", tmp_path, "--out", tmp_path / "o")
    assert_one_line_error(result, "no trained sampler weights are installed", "--weights")
    assert not (tmp_path / "o").exists()
