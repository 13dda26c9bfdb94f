"""DensePose in the worker's process (core/densepose/model.py) with a STAND-IN TorchScript model
(core/densepose/standin.py: the export's interface, built from a real DensePose output; it is not
DensePose). load -> run -> IUV.png/INDS.png -> the existing `unwrap` reads them; the model is loaded
once per process; each bad model gets its one line. A last test runs the REAL export when
HUMANTEX_DENSEPOSE_MODEL names it (it cannot be downloaded here) and skips otherwise."""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pytest
from helpers import CASES, compare, read_case, require_torchvision

require_torchvision()

import torch  # noqa: E402

from blender_humantex.core.densepose import extract, model, standin, store  # noqa: E402
from blender_humantex.core.errors import DependencyError, InputError  # noqa: E402
from blender_humantex.core.imageio import read_raw_u8, read_rgb, to_u8  # noqa: E402
from blender_humantex.core.sources.iuv import iuv_channels, unwrap_files  # noqa: E402

PR99, DEMO = CASES[0], CASES[1]
REAL_MODEL = os.environ.get(store.MODEL_ENV)  # read before the fixture below hides it from the other tests


@pytest.fixture(scope="module")
def standins(samples, standin_pr99, tmp_path_factory):
    """STAND-IN model files for pr99 (one person) and demo (13 people)."""
    demo = standin.build_standin(*read_case(samples, DEMO), tmp_path_factory.mktemp("standins") / "demo.pt")
    return {"pr99": standin_pr99, "demo": demo}


@pytest.fixture(autouse=True)
def no_installed_model(tmp_path, monkeypatch):
    """Tests never see a model the machine may have installed, nor the environment's variable."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "env"))
    monkeypatch.delenv(store.MODEL_ENV, raising=False)


def _photo(samples, case):
    return to_u8(read_rgb(samples / case[3]))


def test_standin_to_files_to_unwrap(samples, standins, tmp_path):
    photo = _photo(samples, PR99)
    result, meta = model.densepose(photo, standins["pr99"])
    real, _ = read_case(samples, PR99)
    assert compare(real, result.iuv)["part_agreement"] >= 0.99
    assert meta["persons_found"] == 1 and meta["device"] == "cpu" and meta["licence"] == "CC BY-SA 3.0"
    assert meta["model_sha256"] == store.sha256_of(standins["pr99"]) and meta["model_is_pinned_export"] is False
    assert meta["model_found_by"] == "--densepose-model" and set(meta["timings_s"]) == {"load_s", "model_s", "extract_s"}
    paths = extract.write_files(tmp_path, result)
    # the files are DensePose's own: read as RGB, B = I, G = U, R = V
    raw = read_raw_u8(paths["iuv"])
    assert np.array_equal(raw[..., 2], result.iuv[..., 0]) and np.array_equal(raw[..., 0], result.iuv[..., 2])
    read_back, order = iuv_channels(raw, "auto")
    assert order == "vui" and np.array_equal(read_back, result.iuv)
    assert np.array_equal(read_raw_u8(paths["inds"]), result.inds)
    ours = unwrap_files(samples / PR99[3], paths["iuv"], paths["inds"], size=256)
    theirs = unwrap_files(samples / PR99[3], samples / PR99[1], samples / PR99[2], size=256)
    assert ours.meta["person"] == 1 and ours.meta["iuv_order"] == "vui"
    both = (ours.visibility > 0) & (theirs.visibility > 0)
    iou = both.sum() / ((ours.visibility > 0) | (theirs.visibility > 0)).sum()
    error = np.abs(ours.partial - theirs.partial)[both].mean()
    print(f"partial texture from the stand-in's files vs the real files: visibility IoU {iou:.3f}, colour MAE {error:.4f}")
    assert iou >= 0.95 and error < 0.02


def test_many_people_person_flag(samples, standins, tmp_path):
    result, meta = model.densepose(_photo(samples, DEMO), standins["demo"])
    assert meta["persons_found"] == 13 and [p["index"] for p in meta["persons"]] == list(range(1, 14))
    paths = extract.write_files(tmp_path, result)
    largest = unwrap_files(samples / DEMO[3], paths["iuv"], paths["inds"], size=256)
    assert largest.meta["person"] == 1  # the stand-in returns the largest first; unwrap's default is the largest
    third = unwrap_files(samples / DEMO[3], paths["iuv"], paths["inds"], person=3, size=256)
    assert third.meta["person"] == 3 and third.meta["person_pixels"] == meta["persons"][2]["pixels"]
    with pytest.raises(InputError, match="no person 14"):
        unwrap_files(samples / DEMO[3], paths["iuv"], paths["inds"], person=14, size=256)


def test_loaded_once_per_file(samples, standins, tmp_path):
    photo = _photo(samples, PR99)[::4, ::4].copy()
    path = tmp_path / "standin.pt"
    shutil.copy(standins["pr99"], path)
    model.densepose(photo, path)
    loads = model.load_count()
    for _ in range(2):
        _, meta = model.densepose(photo, path)
    assert model.load_count() == loads == meta["model_loads_in_process"]
    os.utime(path, ns=(1, 1))  # a replaced file is loaded again
    model.densepose(photo, path)
    assert model.load_count() == loads + 1


def test_device_fallback_is_recorded(samples, standins):
    """A device the export cannot run on (here: no GPU at all) falls back to the CPU, and says so."""
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the fallback path needs a device that fails")
    photo = _photo(samples, PR99)[::4, ::4].copy()
    result, meta = model.densepose(photo, standins["pr99"], device="cuda:0")
    assert meta["device"] == "cpu" and meta["device_requested"] == "cuda:0" and "ran on the CPU" in meta["device_fallback"]
    assert result.persons_found == 1


def test_bad_models_one_line(samples, standins, tmp_path):
    photo = np.zeros((64, 48, 3), np.uint8)
    junk = tmp_path / "junk.torchscript"
    junk.write_bytes(b"not a model at all")
    state = tmp_path / "state.pt"
    torch.save({"w": torch.zeros(2)}, state)  # a zip archive, but not TorchScript
    for path in (junk, state):
        with pytest.raises(InputError, match="is not a TorchScript model") as e:
            model.densepose(photo, path)
        assert e.value.kind == "bad_model" and "\n" not in str(e.value)
    # a file in our own folders came through fetch/install: it must be the pinned export
    cached = store.user_cache_dir() / store.DENSEPOSE.file_name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(standins["pr99"].read_bytes())
    with pytest.raises(InputError, match="fails the SHA-256 check") as e:
        model.densepose(photo, None)
    assert "humantex models fetch densepose" in str(e.value)
    cached.unlink()
    with pytest.raises(InputError, match="no DensePose model") as e:
        model.densepose(photo, None)
    assert e.value.kind == "no_model"


def test_no_person(samples, tmp_path):
    empty = standin.build_standin(np.zeros((120, 80, 3), np.uint8), None, tmp_path / "empty.pt")
    with pytest.raises(InputError, match="found no person") as e:
        model.densepose(np.zeros((120, 80, 3), np.uint8), empty)
    assert e.value.kind == "no_person"


def test_torchvision_missing_names_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # as if it were not installed
    with pytest.raises(DependencyError) as e:
        model.import_torchvision()
    message = str(e.value)
    assert "torchvision" in message and "-m pip install" in message and "torchvision==0.29.1" in message
    assert "torch==2.14.1" in message and "\n" not in message


@pytest.mark.parametrize("case", [c for c in CASES if c[3]], ids=[c[0] for c in CASES if c[3]])
def test_real_model_matches_real_files(case, samples, monkeypatch):
    """The REAL export (HUMANTEX_DENSEPOSE_MODEL) against DensePose's own files for the same photos.

    Another DensePose model made those files, so agreement is loose; a wrong input convention or box
    mapping fails it."""
    if not REAL_MODEL:
        pytest.skip("the real DensePose export is not here: set HUMANTEX_DENSEPOSE_MODEL to its file to run this")
    real, _ = read_case(samples, case)
    result, meta = model.densepose(_photo(samples, case), REAL_MODEL)
    stats = compare(real, result.iuv)
    print(case[0], meta["model_sha256"][:12], {k: round(v, 3) for k, v in stats.items()})
    assert stats["body_iou"] >= 0.7 and stats["part_agreement"] >= 0.6, stats
