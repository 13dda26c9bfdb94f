"""Loss terms: finite, correctly weighted, and decreasing when optimised on a tiny batch."""

from __future__ import annotations

import pytest
import torch

from blender_humantex.core.errors import WeightsError
from blender_humantex.core.losses import (
    LossConfig,
    MultiscaleDiscriminator,
    PerceptualLoss,
    RefinerLoss,
    SamplerLoss,
    feature_matching_loss,
    lsgan_loss,
)
from blender_humantex.core.metrics import LPIPS


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
    loss = RefinerLoss(LossConfig(ndf=8), condition_channels=4)
    opt_g = torch.optim.Adam([output], lr=2e-2)
    opt_d = torch.optim.Adam(loss.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    history = []
    for _ in range(12):
        total, terms = loss.generator_loss(output, target, condition)
        assert all(torch.isfinite(v) for v in terms.values())
        opt_g.zero_grad()
        total.backward()
        opt_g.step()
        d_total, d_terms = loss.discriminator_loss(output, target, condition)
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


def test_push_pull_fill_keeps_seen_texels_and_fills_holes():
    from blender_humantex.core.losses import push_pull_fill

    target, _ = _pair(size=32)
    visibility = torch.zeros(2, 1, 32, 32)
    visibility[..., :12, :] = 1  # the bottom 20 rows were never seen
    filled = push_pull_fill(target * visibility, visibility)
    assert torch.allclose(filled[..., :12, :], target[..., :12, :], atol=1e-6)
    assert (filled[..., 12:, :].sum(1) > 0).all()  # every hole texel got a colour


def test_filled_sampling_aid_gives_the_grid_a_gradient_where_the_paper_loss_has_none():
    """With the premultiplied T_sample, an identity grid gets exactly zero gradient (the measured
    reason the sampler did not learn); the filled-sampling aid gives every unseen texel one."""
    from blender_humantex.core.models.networks import identity_grid, sample_texture

    torch.manual_seed(0)
    target = torch.rand(1, 3, 32, 32)
    visibility = torch.zeros(1, 1, 32, 32)
    visibility[..., :, :10] = 1
    partial = target * visibility
    loss = SamplerLoss(LossConfig())
    grid = identity_grid(1, 32, 32).clone().requires_grad_(True)
    paper_total, _ = SamplerLoss(LossConfig(filled_sampling=0))(sample_texture(partial, visibility, grid), target)
    paper_total.backward()
    assert float(grid.grad[:, :, 12:].abs().sum()) == 0.0  # deep in the hole: no signal at all
    grid.grad = None
    total, terms = loss(sample_texture(partial, visibility, grid), target, coarse=(partial, visibility, grid))
    assert "filled" in terms and torch.isfinite(total)
    total.backward()
    assert (grid.grad[0, :, 12:].abs().sum(-1) > 0).float().mean() > 0.9
