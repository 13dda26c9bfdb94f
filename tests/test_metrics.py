"""LPIPS / PSNR / SSIM against published reference values (../shared/data/metric_check)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from blender_humantex.core import metrics
from blender_humantex.core.backbones import default_lpips_backbones, load_backbone
from blender_humantex.core.errors import InputError, WeightsError
from blender_humantex.core.imageio import read_rgb

PAIRS = ["I03.bmp", "I04.bmp", "I06.bmp", "I08.bmp", "I19.bmp"]


@pytest.fixture(scope="module")
def check_dir(shared_data):
    return shared_data / "metric_check"


@pytest.fixture(scope="module")
def examples(check_dir):
    return {n: read_rgb(check_dir / f"ex_{n}.png") for n in ("ref", "p0", "p1")}


@pytest.fixture(scope="module")
def official(check_dir):
    with open(check_dir / "pyiqa_calib" / "results_official.csv") as f:
        return {row["Method"]: row for row in csv.DictReader(f)}


def test_lpips_alex_matches_published(examples):
    # richzhang/PerceptualSimilarity issue #120: 0.722 and 0.138 (printed to 3 decimals); refined values 0.7219 / 0.1376
    assert metrics.lpips(examples["p0"], examples["ref"]) == pytest.approx(0.7219, abs=1e-3)
    assert metrics.lpips(examples["p1"], examples["ref"]) == pytest.approx(0.1376, abs=1e-3)


def test_lpips_squeeze_matches_onnx_reference(examples):
    assert metrics.lpips(examples["p0"], examples["ref"], net="squeeze") == pytest.approx(0.7110476, abs=1e-3)
    assert metrics.lpips(examples["p1"], examples["ref"], net="squeeze") == pytest.approx(0.1479016, abs=1e-3)
    assert metrics.lpips(examples["p0"], examples["p1"], net="squeeze") == pytest.approx(0.7277766, abs=1e-3)


def test_tid2013_pairs_match_iqa_pytorch(check_dir, official):
    for name in PAIRS:
        dist = read_rgb(check_dir / "pyiqa_calib" / "dist_dir" / name)
        ref = read_rgb(check_dir / "pyiqa_calib" / "ref_dir" / name)
        assert metrics.lpips(dist, ref) == pytest.approx(float(official["lpips"][name]), abs=1e-3), name
        # IQA-PyTorch's psnr row is on RGB, printed to 2 decimals
        assert metrics.psnr(dist, ref) == pytest.approx(float(official["psnr"][name]), abs=6e-3), name
        # its ssim row is on the YIQ luma with 'valid' windows; skimage pads, hence a looser bound
        luma = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        assert metrics.ssim(dist @ luma, ref @ luma) == pytest.approx(float(official["ssim"][name]), abs=5e-3), name


def test_spatial_map_mean_equals_lpips(examples):
    import torch

    model = metrics.get_lpips("alex")
    a, b = metrics._to_tensor(examples["p0"]), metrics._to_tensor(examples["ref"])
    with torch.no_grad():
        assert float(model.distance_map(a, b).mean()) == pytest.approx(float(model(a, b)[0]), abs=2e-3)


def test_mask_restricts_the_comparison(examples):
    ref = examples["ref"]
    damaged = ref.copy()
    damaged[:, : ref.shape[1] // 2] = 1.0 - damaged[:, : ref.shape[1] // 2]  # left half inverted
    right = np.zeros(ref.shape[:2], bool)
    right[:, ref.shape[1] // 2 + 16 :] = True  # well clear of the damage (LPIPS has wide footprints)
    assert metrics.psnr(damaged, ref, right) == float("inf")
    assert metrics.ssim(damaged, ref, right) == pytest.approx(1.0, abs=1e-6)
    assert metrics.lpips(damaged, ref, right) < 0.1 * metrics.lpips(damaged, ref, ~right)
    assert metrics.psnr(damaged, ref, ~right) < 20


def test_bad_inputs_are_clear_errors(examples, tmp_path):
    ref = examples["ref"]
    with pytest.raises(InputError, match="shape"):
        metrics.psnr(ref, ref[:10])
    with pytest.raises(InputError, match="empty"):
        metrics.ssim(ref, ref, np.zeros(ref.shape[:2]))
    with pytest.raises(WeightsError, match="not found"):
        load_backbone("alex", tmp_path / "nope.npz")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        load_backbone("squeeze", junk)
    with pytest.raises(WeightsError, match="not a alex"):
        # the squeezenet file is a valid state dict, but for the wrong network
        load_backbone("alex", default_lpips_backbones() / "squeezenet1_1_features_torchvision.pth")


def test_backbone_folder_is_configurable(monkeypatch, tmp_path):
    monkeypatch.setenv("HUMANTEX_LPIPS_BACKBONES", str(tmp_path))
    with pytest.raises(WeightsError, match=str(tmp_path)):
        load_backbone("alex")
