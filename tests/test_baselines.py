"""The classical baseline: mirror fill, then Telea inpainting inside the SMPL UV charts."""

from __future__ import annotations

import numpy as np
import pytest

from blender_humantex.core.baselines import classical_fill
from blender_humantex.core.data import procedural
from blender_humantex.core.data.datasets import dev_eval_set
from blender_humantex.core.errors import InputError
from blender_humantex.core.uv_layout import get_layout


@pytest.fixture(scope="module")
def layout():
    return get_layout(256)


def _psnr(a, b, mask):
    mse = float(((a - b) ** 2)[mask].mean())
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def test_keeps_seen_texels_and_fills_the_charts(shared_data, layout):
    chart = layout.chart_mask
    for sample in dev_eval_set(shared_data / "dev_textures", size=256)[:6]:
        partial, vis = sample["partial"], sample["visibility"]
        out = classical_fill(partial, vis)
        assert out.shape == (256, 256, 3) and out.dtype == np.float32
        seen = (vis > 0.5) & chart
        assert np.array_equal(out[seen], partial[seen]), "visible texels must stay exactly as they are"
        assert not out[~chart].any()
        unseen = chart & ~seen
        assert (out[unseen].max(axis=1) > 0.01).mean() > 0.99, "every unseen chart texel is filled"
        # better than leaving the holes black, on a real texture with a real DensePose mask
        assert _psnr(out, sample["target"], chart) > _psnr(partial, sample["target"], chart) + 3


def test_mirror_fill_copies_the_seen_side(layout):
    """A right-side-only view of a (left/right symmetric) procedural body: the left limbs come from the mirror."""
    tex = procedural.make_texture(4)
    right = np.isin(layout.part_label, (3, 6, 7, 9, 11, 13, 16, 18, 20, 22))
    vis = right.astype(np.float32)
    out = classical_fill(tex * vis[..., None], vis)
    mirror = layout.mirror_yx
    from_mirror = np.isin(layout.part_label, procedural.LEFT_SIDE_PARTS) & (mirror[..., 0] >= 0)
    from_mirror &= right[np.maximum(mirror[..., 0], 0), np.maximum(mirror[..., 1], 0)]
    rows, cols = np.nonzero(from_mirror)
    assert len(rows) > 1000
    assert np.array_equal(out[rows, cols], tex[mirror[rows, cols, 0], mirror[rows, cols, 1]])
    # and the symmetric texture is recovered there up to the photo light
    assert np.median(np.abs(out[rows, cols] - tex[rows, cols])) < 0.03


def test_inpaints_smooth_regions(layout):
    """Filling a flat-coloured body with a hole gives the flat colour."""
    colour = np.array([0.2, 0.5, 0.7], np.float32)
    tex = np.where(layout.chart_mask[..., None], colour, 0.0).astype(np.float32)
    vis = layout.chart_mask.astype(np.float32)
    # a band across the whole torso: the mirror texels are hidden too, so Telea fills it; the black
    # outside the charts must not bleed in
    vis[150:180][np.isin(layout.part_label[150:180], (1, 2))] = 0.0
    out = classical_fill(tex * vis[..., None], vis)
    hole = layout.chart_mask & (vis < 0.5)
    err = np.abs(out[hole] - colour)
    assert hole.sum() > 2000
    assert err.max() < 6 / 255 and err.mean() < 2 / 255  # 8-bit Telea rounding; black bleeding would be ≥ 0.1


def test_accepts_uint8_and_hw1(layout):
    tex = procedural.make_texture(1)
    vis = (np.isin(layout.part_label, (2, 9, 10))).astype(np.float32)
    u8 = (tex * vis[..., None] * 255 + 0.5).astype(np.uint8)
    a = classical_fill(u8, vis[..., None])
    b = classical_fill(u8.astype(np.float32) / 255, vis)
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "partial, vis, kind",
    [
        (np.zeros((256, 200, 3), np.float32), np.ones((256, 200), np.float32), "bad_partial"),
        (np.zeros((256, 256), np.float32), np.ones((256, 256), np.float32), "bad_partial"),
        (np.zeros((256, 256, 3), np.float32), np.ones((128, 128), np.float32), "size_mismatch"),
        (np.full((256, 256, 3), np.nan, np.float32), np.ones((256, 256), np.float32), "bad_partial"),
        (np.zeros((256, 256, 3), np.float32), np.zeros((256, 256), np.float32), "empty_visibility"),
    ],
)
def test_bad_inputs(partial, vis, kind):
    with pytest.raises(InputError) as e:
        classical_fill(partial, vis)
    assert e.value.kind == kind
    assert "\n" not in str(e.value)
