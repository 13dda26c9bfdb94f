"""Loss terms: finite, correctly weighted, and decreasing when optimised on a tiny batch."""

from __future__ import annotations

import pytest
import torch

from blender_humantex.core.errors import WeightsError
from blender_humantex.core.losses import (
    LossConfig,
    PerceptualLoss,
    RefinerLoss,
    SamplerLoss,
    feature_matching_loss,
    lsgan_loss,
)
from blender_humantex.core.metrics import LPIPS
from blender_humantex.core.models.discriminators import MultiscaleDiscriminator, define_D


def _pair(seed=0, size=64):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(2, 3, size, size, generator=g)
    noisy = (target + 0.3 * torch.randn(2, 3, size, size, generator=g)).clamp(0, 1)
    return noisy, target


def test_sampler_loss_is_10_l1_plus_lpips():
    pred, target = _pair()
    loss = SamplerLoss()
    total, terms = loss(pred, target)
    expected_lpips = LPIPS("alex")(pred, target).mean()
    assert terms["lpips"] == pytest.approx(float(expected_lpips), rel=1e-5)
    assert float(total) == pytest.approx(10 * float((pred - target).abs().mean()) + float(expected_lpips), rel=1e-5)
    same, same_terms = loss(target, target)
    assert float(same) == pytest.approx(0.0, abs=1e-6)


def test_chart_mask_ignores_background():
    pred, target = _pair()
    chart = torch.zeros(1, 1, 64, 64)
    chart[..., 16:48, 16:48] = 1
    pred_out = target * chart + pred * (1 - chart)  # identical inside the charts, different outside
    _, terms = SamplerLoss()(pred_out, target, chart)
    _, terms_noisy = SamplerLoss()(pred, target, chart)
    assert float(terms["l1"]) < 1e-7 and float(terms_noisy["l1"]) > 0.01


def test_perceptual_loss_zero_on_identity_and_grows_with_noise():
    _, target = _pair()
    loss = PerceptualLoss("alex")
    small = (target + 0.05 * torch.randn_like(target)).clamp(0, 1)
    large = (target + 0.4 * torch.randn_like(target)).clamp(0, 1)
    assert float(loss(target, target)) == pytest.approx(0.0, abs=1e-6)
    assert 0 < float(loss(small, target)) < float(loss(large, target))


def test_vgg19_perceptual_path_loads_torchvision_layout(tmp_path):
    # Random weights, made here only to check the loading path (key layout, weights_only=True);
    # they are never used for training.
    from blender_humantex.core.backbones import VGG19Features

    sd = {f"features.{k}": v for k, v in VGG19Features().features.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(4, 4)  # a full vgg19 state dict also carries the classifier
    path = tmp_path / "vgg19.pth"
    torch.save(sd, path)
    loss = PerceptualLoss("vgg19", path)
    pred, target = _pair(size=32)
    assert torch.isfinite(loss(pred, target))
    with pytest.raises(WeightsError, match="not shipped"):
        PerceptualLoss("vgg19")  # never falls back to random VGG weights


def test_discriminator_shapes_and_gan_terms():
    disc = MultiscaleDiscriminator(in_ch=7, ndf=8, n_layers=3, num_d=2)
    out = disc(torch.rand(2, 7, 64, 64))
    assert len(out) == 2 and len(out[0]) == 5
    assert out[1][-1].shape[-1] < out[0][-1].shape[-1]  # second scale sees a half-size image
    assert float(feature_matching_loss(out, out).detach()) == 0.0
    perfect_real = [[torch.ones(1, 1, 4, 4)]]
    assert float(lsgan_loss(perfect_real, True)) == 0.0 and float(lsgan_loss(perfect_real, False)) == 1.0


def test_refiner_losses_finite_and_decrease_on_a_tiny_batch():
    torch.manual_seed(0)
    noisy, target = _pair(size=64)
    condition = torch.cat([target * 0.5, torch.ones(2, 1, 64, 64)], 1)
    output = torch.nn.Parameter(noisy.clone())  # the "generator" is a free image here
    loss = RefinerLoss(LossConfig(ndf=8))
    disc = define_D(LossConfig(ndf=8), condition_channels=4)  # the trainer's, not the loss's
    opt_g = torch.optim.Adam([output], lr=2e-2)
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    history = []
    for _ in range(12):
        total, terms = loss.generator_loss(output, target, condition, disc)
        assert all(torch.isfinite(v) for v in terms.values())
        opt_g.zero_grad()
        total.backward()
        opt_g.step()
        d_total, d_terms = loss.discriminator_loss(output, target, condition, disc)
        assert torch.isfinite(d_total)
        opt_d.zero_grad()
        d_total.backward()
        opt_d.step()
        history.append({k: float(v) for k, v in terms.items()})
    assert history[-1]["l1"] < 0.9 * history[0]["l1"]
    assert history[-1]["perceptual"] < history[0]["perceptual"]


def test_sampler_loss_decreases_on_a_tiny_batch():
    noisy, target = _pair(size=64)
    output = torch.nn.Parameter(noisy.clone())
    loss = SamplerLoss()
    opt = torch.optim.Adam([output], lr=2e-2)
    first = None
    for _ in range(10):
        total, _ = loss(output, target)
        first = float(total) if first is None else first
        opt.zero_grad()
        total.backward()
        opt.step()
    assert float(total) < 0.7 * first


def test_guide_grid_points_unseen_texels_at_seen_ones():
    from blender_humantex.core.losses import guide_grid
    from blender_humantex.core.uv_layout import get_layout

    size = 64
    layout = get_layout(size)
    visibility = torch.zeros(1, 1, size, size)
    visibility[..., :, : size // 2] = 1  # the left half of the atlas was seen
    grid, weight = guide_grid(visibility)
    cols = ((grid[0, ..., 0] + 1) * size - 1) / 2
    rows = ((grid[0, ..., 1] + 1) * size - 1) / 2
    rows, cols = rows.round().long(), cols.round().long()
    unseen = weight[0, 0] > 0
    assert unseen.sum() > 0 and (visibility[0, 0][rows[unseen], cols[unseen]] == 1).all()
    assert torch.equal(unseen, torch.from_numpy(layout.chart_mask) & (visibility[0, 0] == 0))
    # where the mirror texel was seen, the guide is exactly that texel
    mirror = torch.from_numpy(layout.mirror_yx).long()
    has = (mirror[..., 0] >= 0) & unseen
    mirror_seen = has & (visibility[0, 0][mirror[..., 0].clamp_min(0), mirror[..., 1].clamp_min(0)] == 1)
    assert mirror_seen.sum() > 10
    assert torch.equal(rows[mirror_seen], mirror[..., 0][mirror_seen])
    assert torch.equal(cols[mirror_seen], mirror[..., 1][mirror_seen])


def test_grid_guidance_gives_the_grid_a_gradient_where_the_paper_loss_has_none():
    """With the premultiplied T_sample, an identity grid gets exactly zero gradient deep inside unseen
    regions (the measured reason the sampler did not learn); the guidance aid reaches every unseen texel."""
    from blender_humantex.core.models.networks import identity_grid, sample_texture

    size = 64
    torch.manual_seed(0)
    target = torch.rand(1, 3, size, size)
    visibility = torch.zeros(1, 1, size, size)
    visibility[..., :, :20] = 1
    partial = target * visibility
    grid = identity_grid(1, size, size).clone().requires_grad_(True)
    paper_total, _ = SamplerLoss(LossConfig(grid_guidance=0))(sample_texture(partial, visibility, grid), target)
    paper_total.backward()
    assert float(grid.grad[:, :, 24:].abs().sum()) == 0.0  # deep in the hole: no signal at all
    grid.grad = None
    total, terms = SamplerLoss()(sample_texture(partial, visibility, grid), target,
                                 guidance=(visibility, grid))
    assert "guide" in terms and "miss" in terms and torch.isfinite(total)
    assert 0.5 < float(terms["miss"]) <= 1.0  # identity grid: every unseen texel reads unseen texels
    total.backward()
    from blender_humantex.core.uv_layout import get_layout

    hole = torch.from_numpy(get_layout(size).chart_mask)[:, 24:]
    assert (grid.grad[0, :, 24:].abs().sum(-1) > 0)[hole].all()


def test_landing_term_is_zero_when_every_unseen_texel_samples_a_seen_one():
    from blender_humantex.core.models.networks import identity_grid

    size = 16
    visibility = torch.zeros(1, 1, size, size)
    visibility[..., :, : size // 2] = 1
    grid = identity_grid(1, size, size).clone()
    grid[:, :, size // 2 :, 0] -= 1.0  # the right half reads the left half (half the width to the left)
    assert float(SamplerLoss().grid_landing_loss(visibility, grid)) == pytest.approx(0.0, abs=1e-6)
    assert float(SamplerLoss().grid_landing_loss(visibility, identity_grid(1, size, size))) == pytest.approx(1.0)


def test_ssim_map_matches_the_evaluation_metric():
    """The training term uses the evaluation's SSIM (scikit-image, Wang et al. settings); borders aside,
    where the two pad differently, the maps agree to float precision."""
    import numpy as np
    from skimage.metrics import structural_similarity

    from blender_humantex.core.losses import ssim_map

    pred, target = _pair(size=48)
    smap = ssim_map(pred.double(), target.double())[0, 0].numpy()
    _, ref = structural_similarity(target[0].permute(1, 2, 0).double().numpy(), pred[0].permute(1, 2, 0).double().numpy(),
                                   channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                   use_sample_covariance=False, full=True)
    assert np.abs(smap - ref.mean(2))[5:-5, 5:-5].max() < 1e-9
    assert float(ssim_map(target, target).min()) == pytest.approx(1.0, abs=1e-5)


def test_ssim_term_is_added_with_its_weight_and_off_by_default():
    from blender_humantex.core.losses import TextureLoss, ssim_map

    pred, target = _pair()
    chart = torch.zeros(1, 1, 64, 64)
    chart[..., 8:56, 8:56] = 1
    plain, plain_terms = TextureLoss()(pred, target, chart)
    assert "dssim" not in plain_terms
    total, terms = TextureLoss(LossConfig(ssim=3.0))(pred, target, chart)
    smap = ssim_map(pred * chart, target * chart)
    expected = 1 - float((smap * chart).sum() / (chart.sum() * 2))  # 2 images in the batch
    assert float(terms["dssim"]) == pytest.approx(expected, rel=1e-5)
    assert float(total) == pytest.approx(float(plain) + 3.0 * expected, rel=1e-5)


def test_losses_take_the_lpips_backbones_folder():
    # `train --lpips-backbones DIR` hands the losses a FOLDER; each loss reads its backbone FILE in it.
    from blender_humantex.core.backbones import default_lpips_backbones
    from blender_humantex.core.losses import RefinerLoss, SamplerLoss, TextureLoss

    folder = default_lpips_backbones()
    pred, target = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    assert float(TextureLoss(LossConfig(), lpips_backbones=folder).lpips(pred, target).mean()) > 0
    SamplerLoss(LossConfig(), lpips_backbones=folder)
    RefinerLoss(LossConfig(), lpips_backbones=folder)
    with pytest.raises(WeightsError, match="not found"):
        TextureLoss(LossConfig(), lpips_backbones=folder / "nowhere")
