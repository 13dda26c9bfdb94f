"""core.pipeline (Pipeline.complete / complete_batch) and core.job (files in, files out) on real DensePose data.

The weights used here are RANDOM: small SamplerNet / RefinerNet / LazovaNet instances are built
and saved as safetensors into a tmp dir at the start of the module. Everything checked (shapes,
value ranges, kept texels, the blend equation, files, errors, progress) holds for any weights.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import write_random_weights
from PIL import Image

from blender_humantex.core import job
from blender_humantex.core import pipeline as pl
from blender_humantex.core.errors import CancelledError, DependencyError, InputError, WeightsError
from blender_humantex.core.imageio import read_rgb, write_png
from blender_humantex.core.layers import LAYER_NAMES
from blender_humantex.core.request import GenerateRequest
from blender_humantex.core.uv_layout import get_layout


@pytest.fixture(scope="module")
def pipeline(random_weights):
    return pl.Pipeline(weights_dir=random_weights, device="cpu")


@pytest.fixture(scope="module")
def real_partial(samples):
    """SMPLitex's real 512² partial texture (unwrapped from a DeepFashion photo) and its visibility."""
    partial = read_rgb(samples / "smplitex_example" / "MEN-Jackets_Vests-id_00003336-09_1_front_texture.png")
    visibility = (partial.max(axis=2) > 0).astype(np.float32)
    return partial * visibility[..., None], visibility


@pytest.fixture(scope="module")
def partial_files(tmp_path_factory, real_partial):
    folder = tmp_path_factory.mktemp("partial")
    write_png(folder / "partial.png", real_partial[0])
    write_png(folder / "visibility.png", real_partial[1])
    return folder / "partial.png", folder / "visibility.png"


def test_complete_layers_shapes_ranges_and_equations(pipeline, real_partial):
    partial, visibility = real_partial
    layers = pipeline.complete(partial, visibility)
    assert isinstance(layers, pl.Layers) and set(layers.as_dict()) == set(LAYER_NAMES)
    for name in ("final", "sample", "refine", "partial"):
        assert getattr(layers, name).shape == (512, 512, 3) and getattr(layers, name).dtype == np.float32
    for name in ("mask", "visibility"):
        assert getattr(layers, name).shape == (512, 512) and getattr(layers, name).dtype == np.float32
    for array in layers.as_dict().values():
        assert array.min() >= 0 and array.max() <= 1
    chart = get_layout(512).chart_mask
    seen = (visibility == 1) & chart  # outside the charts every layer is padded (test_outside_the_charts_...)
    assert np.array_equal(layers.sample[seen], partial[seen])
    assert np.array_equal(layers.partial, partial)
    m = layers.mask[..., None]
    np.testing.assert_allclose(layers.final, layers.sample * m + layers.refine * (1 - m), atol=1e-5)
    assert (layers.sample[~seen].max(axis=1) > 0).sum() > 1000  # the sampler filled unseen texels


@pytest.mark.parametrize("size", [128, 1024])
def test_complete_at_other_sizes(pipeline, real_partial, size):
    layers = pipeline.complete(*real_partial, size=size)
    assert layers.final.shape == (size, size, 3) and layers.mask.shape == (size, size)
    m = layers.mask[..., None]
    np.testing.assert_allclose(layers.final, layers.sample * m + layers.refine * (1 - m), atol=1e-5)


def test_uint8_inputs_are_accepted(pipeline, real_partial):
    partial, visibility = real_partial
    as_float = pipeline.complete(partial, visibility, size=128)
    as_u8 = pipeline.complete((partial * 255).round().astype(np.uint8), (visibility * 255).astype(np.uint8), size=128)
    np.testing.assert_allclose(as_u8.final, as_float.final, atol=2e-3)


def test_lazova_method(pipeline, real_partial):
    layers = pipeline.complete(*real_partial, size=256, method="lazova")
    assert np.array_equal(layers.final, layers.refine)
    assert not layers.mask.any()
    chart = get_layout(256).chart_mask
    assert np.array_equal(layers.sample[chart], layers.partial[chart])


def test_outside_the_charts_layers_are_padded_with_chart_colours(pipeline, real_partial):
    """No black or noise outside the UV charts: each texel there repeats its nearest chart texel, so
    filtering and mipmaps in Blender show no dark seams."""
    from blender_humantex.core.padding import nearest_chart_texel

    layers = pipeline.complete(*real_partial, size=256)
    chart = get_layout(256).chart_mask
    nearest = nearest_chart_texel(256)
    assert chart[np.unravel_index(nearest, chart.shape)].all()
    for name in ("final", "sample", "refine", "mask"):
        flat = getattr(layers, name).reshape(256 * 256, -1)
        np.testing.assert_array_equal(flat, flat[nearest])
    assert (layers.final[~chart].max(axis=-1) > 0.02).mean() > 0.99  # not black


def test_weights_are_loaded_once_and_described(random_weights, real_partial):
    pipeline = pl.Pipeline(weights_dir=random_weights, device="auto")
    assert pipeline.device in ("cpu", "mps") or pipeline.device.startswith("cuda:")
    info = pipeline.weights_info()
    assert info["dir"] == str(random_weights.resolve())
    assert all(info[k]["loaded"] is False and len(info[k]["id"]) == 16 for k in pl.WEIGHT_FILES)
    assert pipeline.load_count == 0
    pipeline.load("full")
    pipeline.load("full")
    assert pipeline.load_count == 2
    pipeline.complete(*real_partial, size=128)
    pipeline.complete(*real_partial, size=128, method="lazova")
    assert pipeline.load_count == 3
    info = pipeline.weights_info()
    assert info["sampler"]["loaded"] and info["sampler"]["data"] == "random weights (test)"
    json.dumps(info)  # plain data


def test_complete_batch_matches_single(pipeline, real_partial):
    partial, visibility = real_partial[0][::2, ::2], real_partial[1][::2, ::2]
    small = (partial[::2, ::2], visibility[::2, ::2])
    flipped = (partial[:, ::-1].copy(), visibility[:, ::-1].copy())
    batch = pipeline.complete_batch([partial, small[0], flipped[0]], [visibility, small[1], flipped[1]])
    assert [r.final.shape[0] for r in batch] == [256, 128, 256]
    for result, (p, v) in zip(batch, [(partial, visibility), small, flipped], strict=True):
        single = pipeline.complete(p, v)
        np.testing.assert_allclose(result.final, single.final, atol=2e-3)
    assert pipeline.complete_batch([], []) == []


def test_missing_weights_say_what_to_do(tmp_path, real_partial):
    pipeline = pl.Pipeline(weights_dir=tmp_path, device="cpu")
    with pytest.raises(WeightsError, match="no trained sampler weights are installed.*--weights"):
        pipeline.complete(*real_partial)
    info = pipeline.weights_info()
    assert info["sampler"]["missing"] is True
    # a lazova-only folder serves the baseline but not the full method
    write_random_weights(tmp_path, kinds=("lazova",))
    assert pipeline.complete(*real_partial, size=64, method="lazova").final.shape == (64, 64, 3)
    with pytest.raises(WeightsError, match="sampler"):
        pipeline.load("full")


def test_wrong_weights_file_in_place(tmp_path, real_partial):
    write_random_weights(tmp_path, kinds=("refiner",))
    (tmp_path / "refiner.safetensors").rename(tmp_path / "sampler.safetensors")
    write_random_weights(tmp_path, kinds=("refiner",))
    with pytest.raises(WeightsError, match="holds refiner weights, but sampler"):
        pl.Pipeline(weights_dir=tmp_path, device="cpu").complete(*real_partial)


@pytest.mark.parametrize(
    "change, kind",
    [
        (lambda p, v: (p, v[:256, :256]), "size_mismatch"),
        (lambda p, v: (p, np.zeros_like(v)), "empty_visibility"),
        (lambda p, v: (p, np.ones_like(v)), "full_visibility"),
        (lambda p, v: (p[..., :2], v), "bad_shape"),
        (lambda p, v: (p[:, :300], v[:, :300]), "not_square"),
        (lambda p, v: (np.full_like(p, np.nan), v), "bad_values"),
    ],
)
def test_bad_inputs(pipeline, real_partial, change, kind):
    partial, visibility = change(*real_partial)
    with pytest.raises(InputError) as info:
        pipeline.complete(partial, visibility)
    assert info.value.kind == kind
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("size", [32, 63, 4097, 10**6, 1.5, "512"])
def test_bad_sizes(pipeline, real_partial, size):
    with pytest.raises(InputError, match="64..4096"):
        pipeline.complete(*real_partial, size=size)


def test_bad_method_and_device(pipeline, real_partial):
    with pytest.raises(InputError, match="unknown method"):
        pipeline.complete(*real_partial, method="magic")
    with pytest.raises(InputError, match="unknown device|unsupported device"):
        pl.Pipeline(device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DependencyError, match="no usable CUDA"):
            pl.Pipeline(device="cuda")


def test_one_device_resolver_for_inference_and_training():
    from blender_humantex.core.device import resolve_device

    assert resolve_device("cpu") == resolve_device(" CPU ") == "cpu"
    assert resolve_device("auto", index=1, mps=False) in ("cpu", "cuda:1")  # training: a rank's own GPU, never mps
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DependencyError, match="no usable CUDA"):
            resolve_device("cuda", index=1)


# ----------------------------------------------------------------------------- generate


def generate(pipeline, progress=None, **fields) -> dict:
    """The generate job on a request made of these fields (as the CLI and the worker make it)."""
    return job.generate(pipeline, GenerateRequest.from_fields(fields), progress=progress)


def check_output_folder(out, size):
    for name in LAYER_NAMES:
        with Image.open(out / f"{name}.png") as img:
            assert img.format == "PNG" and img.size == (size, size)
            assert img.mode == ("L" if name in ("mask", "visibility") else "RGB")
    with Image.open(out / "sheet.png") as img:
        assert img.mode == "RGB" and img.width > 5 * img.height // 2
    meta = json.loads((out / "meta.json").read_text())
    assert meta["size"] == size and meta["device"] == "cpu"
    assert set(meta["timings"]) == {"load", "unwrap", "sample", "refine", "write"}
    return meta


def test_generate_from_partial_files(pipeline, partial_files, tmp_path):
    stages = []
    report = generate(
        pipeline, out_dir=tmp_path / "out", partial=partial_files[0], visibility=partial_files[1], size=256,
        progress=lambda stage, fraction: stages.append((stage, fraction)),
    )
    meta = check_output_folder(tmp_path / "out", 256)
    assert set(report["outputs"]) == set(job.OUTPUT_FILES)
    assert all(p.startswith(str(tmp_path)) for p in report["outputs"].values())
    assert meta["weights"]["sampler"]["id"] == pipeline.weights_info()["sampler"]["id"]
    assert meta["input_size"] == 512 and meta["method"] == "full"
    json.dumps(report)
    order = [s for s, _ in stages]
    assert sorted(set(order), key=order.index) == ["load", "unwrap", "sample", "refine", "write"]
    assert stages[-1] == ("write", 1.0) and all(0 <= f <= 1 for _, f in stages)


def test_generate_from_photo_and_densepose(pipeline, samples, tmp_path):
    folder = samples / "densepose_pr99"
    stages = []
    report = generate(
        pipeline, out_dir=tmp_path / "out", photo=folder / "im.jpg", iuv=folder / "IUV.png", inds=folder / "INDS.png",
        size=256, progress=lambda stage, fraction: stages.append(stage),
    )
    meta = check_output_folder(tmp_path / "out", 256)
    assert meta["unwrap"]["visible_texels"] > 1000 and meta["inputs"]["photo"].endswith("im.jpg")
    assert sorted(set(stages), key=stages.index) == ["load", "unwrap", "sample", "refine", "write"]
    visibility = np.asarray(Image.open(report["outputs"]["visibility"]))
    assert 0.05 < (visibility > 0).mean() < 0.9


def test_generate_lazova_writes_the_same_files(pipeline, partial_files, tmp_path):
    generate(pipeline, out_dir=tmp_path, partial=partial_files[0], visibility=partial_files[1], size=128,
                     method="lazova")
    meta = check_output_folder(tmp_path, 128)
    assert meta["method"] == "lazova" and "lazova" in meta["weights"] and "note" in meta


def test_cancel_before_writing(pipeline, partial_files, tmp_path):
    def progress(stage, fraction):
        if stage == "refine":
            raise CancelledError("cancelled by the user")

    with pytest.raises(CancelledError):
        generate(pipeline, out_dir=tmp_path / "out", partial=partial_files[0], visibility=partial_files[1],
                         progress=progress)
    assert not (tmp_path / "out").exists()


def test_generate_bad_requests(pipeline, partial_files, samples, tmp_path):
    with pytest.raises(InputError, match="exactly one of"):
        generate(pipeline, out_dir=tmp_path, photo=samples / "densepose_pr99" / "im.jpg",
                     partial=partial_files[0], visibility=partial_files[1])
    with pytest.raises(InputError, match="exactly one of"):
        generate(pipeline, out_dir=tmp_path, partial=partial_files[0])
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        generate(pipeline, out_dir=tmp_path / "file", partial=partial_files[0], visibility=partial_files[1])
    with pytest.raises(InputError, match="not found"):
        generate(pipeline, out_dir=tmp_path / "o", partial=tmp_path / "nope.png", visibility=partial_files[1])
