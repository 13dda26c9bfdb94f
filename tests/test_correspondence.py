"""The data-driven parts of the method: the correspondence prior, the texture PCA and the real-texture split.

Built here from constructed textures whose answer is known, and from the real training textures.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blender_humantex.core.data.textures import load_textures, texture_files
from blender_humantex.core.errors import WeightsError
from blender_humantex.core.models.correspondence import (
    PriorSampler,
    build_prior,
    load_prior,
    save_prior,
    select_sources,
)
from blender_humantex.core.models.texture_pca import PCAEstimator, fit_pca, load_pca, save_pca
from blender_humantex.core.uv_layout import LAYOUT_ID, get_layout

SIZE = 64


@pytest.fixture(scope="module")
def twins():
    """Random textures in which every chart texel of the left half repeats at a fixed partner texel."""
    rng = np.random.default_rng(0)
    chart = get_layout(SIZE).chart_mask
    textures = rng.random((12, SIZE, SIZE, 3)).astype(np.float32) * chart[..., None]
    ys, xs = np.nonzero(chart)
    partner = {}
    order = rng.permutation(len(ys))
    for a, b in zip(order[::2], order[1::2], strict=False):  # pair chart texels at random
        textures[:, ys[b], xs[b]] = textures[:, ys[a], xs[a]]
        partner[(ys[a], xs[a])] = (ys[b], xs[b])
        partner[(ys[b], xs[b])] = (ys[a], xs[a])
    return textures, chart, partner


def test_build_prior_finds_the_texel_that_always_agrees(twins):
    textures, chart, partner = twins
    sources, cost = build_prior(textures, np.ones(textures.shape[:3], bool), chart, k=4, chunk=500)
    checked = 0
    for (y, x), (py, px) in list(partner.items())[:200]:
        assert sources[y * SIZE + x, 0] == py * SIZE + px
        assert cost[y * SIZE + x, 0] == pytest.approx(0.0, abs=1e-5)
        assert np.all(np.diff(cost[y * SIZE + x]) >= -1e-6)  # best first
        checked += 1
    assert checked == 200
    assert np.isinf(cost[~chart.reshape(-1)]).all()  # no sources outside the charts


def test_select_sources_takes_seen_sources_in_rank_order():
    sources = torch.tensor([[1, 2, 3, 0], [0, 2, 3, 1]])  # T=2 texels, K=4
    cost = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.0, 0.05, 0.5, 0.9]])
    seen = torch.tensor([[False, False, True, True]])  # texels 2 and 3 are seen
    index, weight = select_sources(sources, cost, seen, slots=2, temperature=0.1)
    assert index[0, 0].tolist() == [2, 3] and index[0, 1].tolist() == [2, 3]
    assert weight[0, 0, 0] == pytest.approx(1.0) and weight[0, 0, 1] == pytest.approx(np.exp(-1.0), rel=1e-5)
    none_seen = torch.zeros(1, 4, dtype=torch.bool)
    _, weight = select_sources(sources, cost, none_seen, slots=2, temperature=0.1)
    assert not weight.any() and torch.isfinite(weight).all()


def test_prior_file_round_trip_and_bad_files(twins, tmp_path):
    textures, chart, _ = twins
    sources, cost = build_prior(textures, np.ones(textures.shape[:3], bool), chart, k=4)
    path = save_prior(tmp_path / "prior.safetensors", sources, cost, SIZE, {"uv_layout": LAYOUT_ID})
    prior = load_prior(path)
    inside = chart.reshape(-1)
    assert prior.size == SIZE and prior.k == 4
    np.testing.assert_array_equal(prior.sources[inside], sources[inside])
    np.testing.assert_allclose(prior.cost[inside], cost[inside], rtol=1e-3, atol=1e-4)  # stored as float16
    (tmp_path / "cut.safetensors").write_bytes(path.read_bytes()[:200])
    with pytest.raises(WeightsError, match="cannot read"):
        load_prior(tmp_path / "cut.safetensors")
    other = save_prior(tmp_path / "other.safetensors", sources, cost, SIZE, {"uv_layout": "some_other_layout"})
    with pytest.raises(WeightsError, match="UV layout"):
        load_prior(other)
    with pytest.raises(WeightsError, match="not found"):
        load_prior(tmp_path / "missing.safetensors")


def test_prior_sampler_copies_the_partner_and_keeps_what_was_seen(twins, tmp_path):
    textures, chart, partner = twins
    sources, cost = build_prior(textures, np.ones(textures.shape[:3], bool), chart, k=4)
    prior = load_prior(save_prior(tmp_path / "p.safetensors", sources, cost, SIZE, {"uv_layout": LAYOUT_ID}))
    sampler = PriorSampler(prior, slots=2, temperature=0.001, passes=1)
    target = textures[0]
    rng = np.random.default_rng(1)
    seen = chart & (rng.random(chart.shape) < 0.5)
    partial = torch.from_numpy(target * seen[..., None]).permute(2, 0, 1)[None]
    visibility = torch.from_numpy(seen.astype(np.float32))[None, None]
    filled, reached = sampler(partial, visibility)
    filled = filled[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(filled[seen], target[seen])
    hits = [(y, x) for (y, x), (py, px) in partner.items() if not seen[y, x] and seen[py, px]]
    assert len(hits) > 100
    for y, x in hits:  # an unseen texel whose always-equal partner was seen gets exactly its colour
        np.testing.assert_allclose(filled[y, x], target[y, x], atol=1e-5)
        assert reached[0, 0, y, x] == 1


def test_pca_conditional_mean_recovers_a_texture_in_its_span(tmp_path):
    rng = np.random.default_rng(2)
    chart = get_layout(SIZE).chart_mask
    textures = (0.5 + 0.1 * rng.standard_normal((40, SIZE, SIZE, 3))).clip(0, 1).astype(np.float32) * chart[..., None]
    mean, basis = fit_pca(textures, k=8)
    pca = load_pca(save_pca(tmp_path / "pca.safetensors", mean, basis, {"uv_layout": LAYOUT_ID, "ridge": "1e-4"}))
    # the file holds what was fitted (float16), chart texels only
    np.testing.assert_allclose(pca.basis, basis * chart[..., None], atol=2e-3)
    np.testing.assert_allclose(pca.mean, mean * chart[..., None], atol=2e-3)
    z = rng.standard_normal(8).astype(np.float32)
    texture = np.clip(pca.mean + np.tensordot(z, pca.basis, axes=1), 0, 1) * chart[..., None]
    seen = chart & (rng.random(chart.shape) < 0.4)
    estimate = PCAEstimator(pca, ridge=1e-4)(
        torch.from_numpy(texture * seen[..., None]).permute(2, 0, 1)[None],
        torch.from_numpy(seen.astype(np.float32))[None, None],
    )[0].permute(1, 2, 0).numpy()
    unseen = chart & ~seen
    assert np.abs(estimate[unseen] - texture[unseen]).mean() < 0.01
    # far from the data: the mean alone would be much worse
    assert np.abs(pca.mean[unseen] - texture[unseen]).mean() > 5 * np.abs(estimate[unseen] - texture[unseen]).mean()


def test_real_texture_split_is_fixed_and_disjoint():
    validation = texture_files("validation")
    train = texture_files("train")
    assert len(validation) == 14 and len(train) == 84 + 9
    assert not {p.name for p in validation} & {p.name for p in train}
    assert all("dev_textures" not in str(p) for p in train + validation)
    # TexDreamer's alpha marks valid texels; SMPLitex textures are valid on the whole chart
    textures, valid, names = load_textures("train", 64)
    chart = get_layout(64).chart_mask
    smplitex = [i for i, n in enumerate(names) if n.startswith("SMPLitex")]
    assert all(np.array_equal(valid[i], chart) for i in smplitex)
    t2uv = [i for i, n in enumerate(names) if n.startswith("t2uv")]
    assert t2uv and all(valid[i].sum() <= chart.sum() for i in t2uv)
    assert not textures[:, ~chart].any()


def test_sparse_slot_sampling_equals_the_dense_sum_and_passes_gradients():
    """_sample_slots evaluates Σ_j w_j · grid_sample(·, base + offset_j) only where some w_j > 0; the
    dense sum over every texel is the reference (also for an output size the slot maps don't divide)."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    n, slots, r = 2, 5, 8
    for h, w in ((32, 32), (20, 28)):
        premultiplied = torch.rand(n, 4, h, w, generator=g)
        base = (torch.rand(n, h, w, 2, generator=g) * 2 - 1).requires_grad_()
        offset = torch.randn(n, slots, 2, r, r, generator=g) * 0.2
        weight = torch.rand(n, slots, 1, r, r, generator=g) * (torch.rand(n, slots, 1, r, r, generator=g) > 0.6)
        weight[1] = 0  # an item with nothing to fill
        dense = torch.zeros(n, 4, h, w)
        for j in range(slots):
            off = F.interpolate(offset[:, j], size=(h, w), mode="nearest").permute(0, 2, 3, 1)
            wj = F.interpolate(weight[:, j], size=(h, w), mode="nearest")
            dense = dense + wj * F.grid_sample(premultiplied, base + off, mode="bilinear", padding_mode="zeros",
                                               align_corners=False)
        sparse = PriorSampler._sample_slots(premultiplied, base, offset, weight, max_texels=64)
        torch.testing.assert_close(sparse, dense, atol=1e-6, rtol=1e-5)
        assert sparse[1].abs().max() == 0
        (grad_sparse,) = torch.autograd.grad(sparse.sum(), base)
        (grad_dense,) = torch.autograd.grad(dense.sum(), base)
        torch.testing.assert_close(grad_sparse, grad_dense, atol=1e-5, rtol=1e-4)


# ----------------------------------------------------------------------------- what the prior does not reach


def test_push_pull_keeps_known_colours_and_interpolates_smoothly_between_them():
    from blender_humantex.core.models.grid_prior import push_pull

    weight = torch.zeros(1, 1, 32, 32)
    colour = torch.zeros(1, 3, 32, 32)
    weight[..., :, :4] = 1
    colour[:, :, :, :4] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    weight[..., :, -4:] = 1
    colour[:, :, :, -4:] = torch.tensor([0.0, 0.0, 1.0])[:, None, None]
    fill, has = push_pull(colour * weight, weight)
    assert has.tolist() == [True]
    assert torch.allclose(fill[..., :4], colour[..., :4]) and torch.allclose(fill[..., -4:], colour[..., -4:])
    red = fill[0, 0, 16]  # across the gap: from red to blue, monotonically, never out of range
    assert (red[4:-4].diff() <= 1e-6).all() and red.min() >= 0 and red.max() <= 1
    assert torch.allclose(fill.sum(1), torch.ones(1, 32, 32), atol=1e-5), "a mix of the two colours only"
    nothing, has = push_pull(torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8))
    assert has.tolist() == [False] and not nothing.any()


def test_smooth_fill_stays_in_the_part_and_uses_the_mirror_part_when_a_part_has_nothing():
    from blender_humantex.core.models.grid_prior import smooth_fill
    from blender_humantex.core.uv_layout import PART_MIRROR

    size = 128
    layout = get_layout(size)
    part = torch.from_numpy(layout.part_label.astype(np.int64))
    colours = torch.rand(25, 3, generator=torch.Generator().manual_seed(0))
    texture = colours[part].permute(2, 0, 1)[None]  # 1×3×H×W: each part one colour
    known = torch.from_numpy(((np.arange(size)[None, :] % 3 == 0) & layout.chart_mask).astype(np.float32))[None, None]
    right_hand, left_hand = 3, 4
    known[0, 0][part == right_hand] = 0  # one hand unseen: it takes the other hand's colour
    both_feet = (part == 5) | (part == 6)
    known[0, 0][both_feet] = 0  # both feet unseen: a fill from everything known, still in range
    filled = smooth_fill(texture * known, known)
    assert torch.equal(filled * known, texture * known), "known texels keep their colour"
    chart = torch.from_numpy(layout.chart_mask)
    for p in range(1, 25):
        inside = (part == p) & chart & ~both_feet
        if p == right_hand:
            assert PART_MIRROR[p] == left_hand
            expected = colours[left_hand]
        else:
            expected = colours[p]
        assert torch.allclose(filled[0][:, inside], expected[:, None], atol=1e-4), f"part {p}"
    assert filled[0][:, both_feet].min() >= 0 and filled[0][:, both_feet].max() <= 1


def test_sampler_fill_is_smooth_where_the_prior_reaches_nothing():
    """The shipped sampler at 1024² on the bundled example: the texels its prior does not reach (the
    unseen hands, the chart borders its 128² cells leave out) vary smoothly (no streaks), unlike the
    "nearest seen texel" grid's."""
    import dataclasses
    from pathlib import Path

    from blender_humantex.core.models import load_model
    from blender_humantex.core.sources.iuv import unwrap_files

    example = Path(__file__).resolve().parents[1] / "examples" / "densepose_pr99"
    unwrapped = unwrap_files(example / "im.jpg", example / "IUV.png", example / "INDS.png", size=1024)
    partial = torch.from_numpy(np.ascontiguousarray(unwrapped.partial)).permute(2, 0, 1)[None].float()
    visibility = torch.from_numpy(np.ascontiguousarray(unwrapped.visibility, dtype=np.float32))[None, None]
    sampler = load_model(Path(__file__).resolve().parents[1] / "blender_humantex" / "weights" / "sampler.safetensors")
    assert sampler.config.prior_fill == "smooth"
    hands = torch.from_numpy(np.isin(get_layout(1024).part_label, (3, 4)))
    roughness = {}
    for fill in ("smooth", "nearest"):
        sampler.config = dataclasses.replace(sampler.config, prior_fill=fill)
        with torch.no_grad():
            texture = sampler(partial, visibility).t_sample[0]
        step = (texture[:, 1:, :] - texture[:, :-1, :]).abs().sum(0)  # 1023×1024 vertical differences
        roughness[fill] = float(step[hands[1:] & hands[:-1]].mean())
    assert roughness["smooth"] < 0.2 * roughness["nearest"], roughness
