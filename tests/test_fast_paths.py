"""The inference fast paths (issue 22) against the previous release's formulations, kept here as references.

Each fast path computes the same thing as the dense code it replaced, only where it can change something
(unseen texels, outside texels), in place, or with a cheaper operator; the references below are that
previous code. End to end, every layer of a real job at 256² and 512² is the same within 1/255.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from blender_humantex.core import imageio
from blender_humantex.core import pipeline as pipeline_module
from blender_humantex.core.models import correspondence, networks, texture_pca
from blender_humantex.core.models.networks import identity_grid
from blender_humantex.core.models.resample import resize, resize_partial
from blender_humantex.core.padding import pad_charts
from blender_humantex.core.pipeline import Pipeline
from blender_humantex.core.sources import iuv
from blender_humantex.core.sources.iuv import unwrap, unwrap_files
from blender_humantex.core.uv_layout import get_layout

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "densepose_pr99"
PCA_FORWARD = texture_pca.PCAEstimator.forward  # the fast one; the reference calls it at the input's size


@pytest.fixture(scope="module")
def shipped():
    """The shipped networks (prior and PCA attached), loaded once."""
    pipeline = Pipeline(device="cpu")
    pipeline.load("full")
    return pipeline


def example_partial(size: int):
    texture = unwrap_files(EXAMPLE / "im.jpg", EXAMPLE / "IUV.png", inds_path=EXAMPLE / "INDS.png",
                           size=max(size, 256))
    partial = torch.from_numpy(texture.partial).permute(2, 0, 1)[None]
    visibility = torch.from_numpy(texture.visibility)[None, None]
    return resize_partial(partial, visibility, (size, size))


# ----------------------------------------------------------------------------- the previous code, as references


def reference_prior(sampler, partial, visibility, offset):
    """PriorSampler's forward as released: the first pass dense at full size (nearest-upsampled slot maps), the
    learned offset upsampled to the full size first (as SamplerNet did)."""
    n, _, h, w = partial.shape
    offset = resize(offset, (h, w))
    base = identity_grid(n, h, w) + offset.permute(0, 2, 3, 1)
    texture, known, _ = sampler._fill_pass(partial, visibility, base)
    size = (min(h, correspondence.FILL_PASS_SIZE), min(w, correspondence.FILL_PASS_SIZE))
    small, small_known = resize_partial(texture, known, size) if size != (h, w) else (texture, known)
    for _ in range(sampler.passes - 1):
        small, small_known, progressed = sampler._fill_pass(small, small_known, identity_grid(n, *size))
        if not progressed:
            break
    reached = (resize(small_known, (h, w)) > 0.5).float()
    fill = reached * (1 - known)
    return texture * (1 - fill) + resize(small, (h, w)) * fill, torch.maximum(known, reached)


def reference_pca(pca, partial, visibility, size=None):
    estimate = PCA_FORWARD(pca, partial, visibility)  # at the input's size (no size: as released)
    return estimate if size is None else resize(estimate, size)


def reference_to_arrays(tensor, pad, dtype=np.float32):
    """float32 layers as released; uint8 ones as the PNG writer made them from those (imageio.to_u8)."""
    tensor = tensor.float().clamp_(0, 1)
    if tensor.ndim == 4:
        tensor = tensor.permute(0, 2, 3, 1)
    arrays = [np.ascontiguousarray(a) for a in tensor.cpu().numpy()]
    arrays = [pad_charts(a) for a in arrays] if pad else arrays
    return [imageio.to_u8(a) for a in arrays] if np.dtype(dtype) == np.uint8 else arrays


def reference_resize_partial(partial, visibility, size):
    """networks.resize_partial as released: colour and weight resized as one 4-channel tensor."""
    weighted = torch.cat([resize(partial * visibility, size), resize(visibility, size)], dim=1)
    weight = weighted[:, 3:]
    return weighted[:, :3] / weight.clamp_min(networks.SAMPLE_WEIGHT_EPS) * (weight > networks.SAMPLE_WEIGHT_EPS), weight


# ----------------------------------------------------------------------------- piece by piece


@pytest.mark.parametrize("size", [256, 200])  # 200: the prior's 128² cells do not divide the texture
def test_prior_first_pass_and_composite_equal_the_dense_passes(shipped, size):
    sampler = shipped._models["sampler"].prior
    partial, visibility = example_partial(size)
    partial, visibility = torch.cat([partial, partial.flip(-1)]), torch.cat([visibility, visibility.flip(-1)])
    g = torch.Generator().manual_seed(0)
    small_offset = torch.randn(2, 2, 16, 16, generator=g) * 0.02  # a smooth learned offset
    with torch.inference_mode():
        texture, known = sampler(partial, visibility, resize(small_offset, (size, size)))
        from_small, _ = sampler(partial, visibility, small_offset)  # upsampled where it is read
        ref_texture, ref_known = reference_prior(sampler, partial, visibility, resize(small_offset, (size, size)))
    assert (known != visibility).any()  # the prior filled something
    # the later passes' upsampled coverage is thresholded at 0.5: where the two upsamplings' float rounding
    # straddles it (a size the 128² passes do not divide), a texel may flip; nowhere else may anything differ
    flipped = known != ref_known
    assert flipped.float().mean() < 1e-4
    same = ~flipped.expand_as(texture)
    torch.testing.assert_close(texture[same], ref_texture[same], atol=1e-5, rtol=0)  # float rounding only
    torch.testing.assert_close(from_small[same], ref_texture[same], atol=1e-3, rtol=0)
    assert partial.data_ptr() != texture.data_ptr()  # the input is not written


def test_prior_first_pass_passes_gradients_like_the_dense_pass(shipped):
    sampler = shipped._models["sampler"].prior
    partial, visibility = example_partial(64)
    offset = torch.zeros(1, 2, 64, 64, requires_grad=True)
    texture, _ = sampler._first_pass(partial, visibility, offset)
    (grad,) = torch.autograd.grad((texture * torch.linspace(0, 1, 64)).sum(), offset)
    base = identity_grid(1, 64, 64) + offset.permute(0, 2, 3, 1)
    reference, _, _ = sampler._fill_pass(partial, visibility, base)
    (ref_grad,) = torch.autograd.grad((reference * torch.linspace(0, 1, 64)).sum(), offset)
    assert ref_grad.abs().sum() > 0
    torch.testing.assert_close(grad, ref_grad, atol=1e-5, rtol=1e-4)


def test_sparse_sample_texture_equals_the_dense_one():
    g = torch.Generator().manual_seed(1)
    texture = torch.rand(2, 3, 40, 40, generator=g)
    visibility = (torch.rand(2, 1, 40, 40, generator=g) * 1.6 - 0.3).clamp(0, 1)  # soft, with 0s and 1s
    grid = identity_grid(2, 40, 40) + torch.randn(2, 40, 40, 2, generator=g) * 0.1
    dense = networks.sample_texture(texture, visibility, grid)  # autograd on: the dense formula
    with torch.inference_mode():
        sparse = networks.sample_texture(texture, visibility, grid)
    torch.testing.assert_close(sparse, dense, atol=1e-6, rtol=0)


def test_refiner_blend_in_place_equals_the_training_blend(shipped):
    refiner = shipped._models["refiner"]
    t_sample, visibility = example_partial(256)
    training = refiner(t_sample, visibility)
    with torch.inference_mode():
        inference = refiner(t_sample, visibility)
    for a, b in zip(inference, training, strict=True):
        torch.testing.assert_close(a, b.detach(), atol=2e-6, rtol=0)


@pytest.mark.parametrize("size", [512, 300])
def test_pca_at_the_net_size_equals_two_resizes(shipped, size):
    pca = shipped._models["refiner"].pca
    partial, visibility = example_partial(size)
    with torch.inference_mode():
        direct = pca(partial, visibility, size=(256, 256))
        reference = reference_pca(pca, partial, visibility, (256, 256))
    torch.testing.assert_close(direct, reference, atol=2e-6, rtol=0)


def test_layers_padded_after_the_copy_equal_pad_charts():
    g = torch.Generator().manual_seed(2)
    for tensor in (torch.rand(2, 3, 64, 64, generator=g) * 1.2 - 0.1, torch.rand(1, 64, 64, generator=g)):
        for pad in (True, False):
            for dtype in (np.float32, np.uint8):
                before = tensor.clone()
                fast = pipeline_module.to_arrays(tensor, pad, dtype=dtype)
                torch.testing.assert_close(tensor, before, atol=0, rtol=0)  # only read (it may be the input)
                for a, b in zip(fast, reference_to_arrays(tensor.clone(), pad, dtype), strict=True):
                    assert a.dtype == dtype
                    np.testing.assert_array_equal(a, b)
    assert not get_layout(64).chart_mask.all()  # there is an outside to pad


def test_padding_table_equals_the_nearest_chart_texel_index():
    from blender_humantex.core.padding import nearest_chart_texel, outside_sources

    outside, source = outside_sources(200)
    np.testing.assert_array_equal(outside, np.flatnonzero(~get_layout(200).chart_mask))
    np.testing.assert_array_equal(source, nearest_chart_texel(200)[outside])
    assert get_layout(200).chart_mask.reshape(-1)[source].all()


@pytest.mark.parametrize("size", [96, 130])  # 130: a resize that does not divide
def test_resize_partial_equals_the_four_channel_resize_and_owns_its_weight(size):
    g = torch.Generator().manual_seed(4)
    partial = torch.rand(2, 3, 113, 113, generator=g)
    visibility = (torch.rand(2, 1, 113, 113, generator=g) * 1.6 - 0.3).clamp(0, 1)
    reference = reference_resize_partial(partial, visibility, (size, size))
    with torch.inference_mode():
        fast = resize_partial(partial, visibility, (size, size))
    for a, b in zip(fast, reference, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert fast[1].untyped_storage().nbytes() == fast[1].numel() * 4  # not a view of a 4-channel buffer


def test_sparse_passes_in_blocks_of_rows_equal_one_block(shipped, monkeypatch):
    sampler = shipped._models["sampler"].prior
    partial, visibility = example_partial(256)
    grid = identity_grid(1, 256, 256) + torch.randn(1, 256, 256, 2, generator=torch.Generator().manual_seed(5)) * 0.05
    with torch.inference_mode():
        whole = sampler(partial, visibility), networks.sample_unseen(partial, visibility, grid)
        monkeypatch.setattr(correspondence, "BLOCK_TEXELS", 1000)  # 3 rows a block
        monkeypatch.setattr(networks, "SPARSE_BLOCK_TEXELS", 1000)
        blocks = sampler(partial, visibility), networks.sample_unseen(partial, visibility, grid)
    for a, b in zip((*whole[0], whole[1]), (*blocks[0], blocks[1]), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_check_inputs_returns_valid_inputs_themselves_and_never_writes_them():
    from blender_humantex.core.pipeline import check_inputs

    g = np.random.default_rng(6)
    visibility = (g.random((64, 64)) > 0.5).astype(np.float32)
    partial = g.random((64, 64, 3)).astype(np.float32) * visibility[..., None]
    out_partial, out_visibility = check_inputs(partial, visibility)
    assert out_partial is partial and out_visibility is visibility  # already the contract: no copy
    dirty = partial + 0.5  # colour under unseen texels and values above 1
    kept = dirty.copy()
    cleaned, _ = check_inputs(dirty, visibility)
    np.testing.assert_array_equal(dirty, kept)
    np.testing.assert_array_equal(cleaned, np.clip(dirty, 0, 1) * (visibility[..., None] > 0))
    frozen = partial.copy()
    frozen.flags.writeable = False
    assert check_inputs(frozen, visibility)[0] is not frozen  # read-only: the layers get an array of their own


def test_png_encoder_round_trips_and_to_u8_rounds_as_before():
    rng = np.random.default_rng(3)
    for shape in ((1, 1), (5, 7), (5, 7, 3), (64, 33, 3)):
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(imageio.encode_png(image)))), image)
    values = np.concatenate([rng.random(1000), [-1, 0, 0.5 / 255, 1.5 / 255, 1, 2, 254.5 / 255]]).astype(np.float32)
    np.testing.assert_array_equal(imageio.to_u8(values), (np.clip(values, 0, 1) * 255.0 + 0.5).astype(np.uint8))
    with pytest.raises(ValueError):
        imageio.encode_png(np.zeros((4, 4, 2), np.uint8))


def test_prior_and_pca_are_modules_whose_tensors_stay_out_of_the_weights(shipped):
    sampler, refiner = shipped._models["sampler"], shipped._models["refiner"]
    assert isinstance(sampler.prior, torch.nn.Module) and isinstance(refiner.pca, torch.nn.Module)
    assert not any(k.startswith(("prior.", "pca.")) for k in (*sampler.state_dict(), *refiner.state_dict()))
    assert {name for name, _ in sampler.prior.named_buffers()} == {"sources", "cost", "chart", "texel_yx"}
    assert "PriorSampler(size=128" in repr(sampler) and "PCAEstimator(size=" in repr(refiner)
    half = correspondence.PriorSampler(sampler.prior.prior, slots=2, passes=1).half()
    assert half.cost.dtype == torch.float16 and half.sources.dtype == torch.int64


def test_unwrap_mapping_is_remembered_per_iuv_and_equals_a_fresh_one():
    photo = np.asarray(Image.open(EXAMPLE / "im.jpg").convert("RGB"))
    raw = np.asarray(Image.open(EXAMPLE / "IUV.png").convert("RGB"))
    iuv_image, _ = iuv.iuv_channels(raw)
    iuv._mapping_cache.clear()
    first = unwrap(photo, iuv_image, size=256)
    assert len(iuv._mapping_cache) == 1
    darker = unwrap(photo // 2, iuv_image, size=256)  # same IUV, other colours: the mapping is reused
    assert len(iuv._mapping_cache) == 1
    np.testing.assert_array_equal(darker.visibility, first.visibility)
    iuv._mapping_cache.clear()
    np.testing.assert_array_equal(unwrap(photo // 2, iuv_image, size=256).partial, darker.partial)
    moved = np.roll(iuv_image, 5, axis=1)  # another IUV (the body 5 px to the right): a new mapping
    assert not np.array_equal(unwrap(photo, moved, size=256).partial, first.partial)
    assert len(iuv._mapping_cache) == 2
    unwrap(photo, iuv_image, size=512)
    assert len(iuv._mapping_cache) == iuv.MAPPING_CACHE_SIZE  # the oldest went
    xy, visible = next(iter(iuv._mapping_cache.values()))
    assert not xy.flags.writeable and not visible.flags.writeable


# ----------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("size", [256, 512])
def test_every_layer_equals_the_previous_code_within_one_step(shipped, size, monkeypatch):
    texture = unwrap_files(EXAMPLE / "im.jpg", EXAMPLE / "IUV.png", inds_path=EXAMPLE / "INDS.png", size=size)
    fast = shipped.complete(texture.partial, texture.visibility, size=size)
    with monkeypatch.context() as m:
        m.setattr(correspondence.PriorSampler, "forward", reference_prior)
        m.setattr(texture_pca.PCAEstimator, "forward", reference_pca)
        m.setattr(pipeline_module, "to_arrays", reference_to_arrays)
        m.setattr(torch, "is_grad_enabled", lambda: True)  # the dense blend and sampling formulas
        reference = shipped.complete(texture.partial, texture.visibility, size=size)
    for name, layer in fast.as_dict().items():
        steps = np.abs(imageio.to_u8(layer).astype(int) - imageio.to_u8(getattr(reference, name)))
        assert steps.max() <= 1, name
        assert (steps > 0).mean() < 1e-3, name


def test_uint8_layers_are_the_float_layers_as_the_pngs_round_them(shipped):
    texture = unwrap_files(EXAMPLE / "im.jpg", EXAMPLE / "IUV.png", inds_path=EXAMPLE / "INDS.png", size=256)
    (as_float,), _ = shipped.run([texture.partial], [texture.visibility], size=256)
    (as_u8,), _ = shipped.run([texture.partial], [texture.visibility], size=256, dtype=np.uint8)
    for name, layer in as_u8.as_dict().items():
        assert layer.dtype == np.uint8, name
        np.testing.assert_array_equal(layer, imageio.to_u8(getattr(as_float, name)), err_msg=name)
