"""SamplerNet / RefinerNet / LazovaNet and their weights files.

No trained weights exist in these tests: every network here has RANDOM weights (PyTorch's init,
with the sampler's last layer re-drawn so its offsets are not zero), and weights files are
written on the fly into tmp dirs from such random networks. The properties tested hold for any
weights: they are properties of the architecture, the sampling and the file format.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from blender_humantex.core.errors import WeightsError
from blender_humantex.core.imageio import read_rgb
from blender_humantex.core.models import (
    LazovaNet,
    ModelConfig,
    RefinerNet,
    SamplerNet,
    count_parameters,
    identity_grid,
    load_model,
    read_metadata,
    sample_texture,
    save_model,
    weights_id,
)
from blender_humantex.core.models.resample import resize, resize_partial
from blender_humantex.core.models.weights import current_layout_id

SMALL = {
    "sampler": ModelConfig(kind="sampler", ngf=8, n_down=2, n_res=1, net_size=64),
    "refiner": ModelConfig(kind="refiner", ngf=8, n_down=2, n_res=2, net_size=64),
    "lazova": ModelConfig(kind="lazova", ngf=8, n_down=2, n_res=2, net_size=64),
}


def random_sampler(config=SMALL["sampler"], std=0.05, seed=0) -> SamplerNet:
    """A SamplerNet with random weights whose offsets are not zero (its init is the identity grid)."""
    torch.manual_seed(seed)
    net = SamplerNet(config).eval()
    torch.nn.init.normal_(net.unet.last.weight, std=std)
    return net


@pytest.fixture(scope="module")
def real_partial(samples):
    """SMPLitex's real 512² partial texture of a DeepFashion photo; visibility = non-black texels."""
    tex = read_rgb(samples / "smplitex_example" / "MEN-Jackets_Vests-id_00003336-09_1_front_texture.png")
    partial = torch.from_numpy(tex).permute(2, 0, 1)[None].contiguous()
    visibility = (partial.amax(1, keepdim=True) > 0).float()
    assert 0.05 < visibility.mean() < 0.6
    return partial * visibility, visibility


# ----------------------------------------------------------------------------- config


def test_config_validation_and_json_round_trip():
    for kind in ("sampler", "refiner", "lazova"):
        config = ModelConfig.default(kind)
        assert ModelConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="kind"):
        ModelConfig(kind="unet")
    with pytest.raises(ValueError, match="bottleneck"):
        ModelConfig(kind="refiner", net_size=64, n_down=5)
    with pytest.raises(ValueError, match="max_offset"):
        ModelConfig(kind="sampler", max_offset=0)
    with pytest.raises(WeightsError, match="unknown fields"):
        ModelConfig.from_dict({**ModelConfig.default("sampler").to_dict(), "dropout": 0.5})
    with pytest.raises(WeightsError, match="JSON"):
        ModelConfig.from_json("{not json")
    with pytest.raises(ValueError, match="kind"):
        RefinerNet(SMALL["sampler"])


def test_refiner_bottleneck_blocks_and_sampler_is_residual_between_first_and_last():
    refiner = RefinerNet()
    # the shipped CPU-sized refiner has 6 bottleneck blocks; the paper's 9 is one config field away
    assert len(refiner.unet.bottleneck) == refiner.config.n_res == 6
    assert len(RefinerNet(ModelConfig(kind="refiner", n_res=9)).unet.bottleneck) == 9
    sampler = SamplerNet()
    inner = [*sampler.unet.downs, *sampler.unet.bottleneck, *sampler.unet.ups]
    assert inner and all(type(m).__name__ in ("Down", "Up", "ResBlock") for m in inner)
    # the baseline is of comparable size to the refiner (same backbone, different head)
    assert 0.9 < count_parameters(LazovaNet()) / count_parameters(refiner) < 1.1


# ----------------------------------------------------------------------------- sampler


def test_identity_grid_sampling_reproduces_the_partial_exactly(real_partial):
    partial, visibility = real_partial
    grid = identity_grid(1, 512, 512)
    assert torch.equal(sample_texture(partial, visibility, grid), partial)
    # a freshly built SamplerNet predicts a zero offset, so T_sample is exactly the partial
    net = SamplerNet(SMALL["sampler"]).eval()
    with torch.no_grad():
        out = net(partial, visibility)
    assert torch.equal(out.sampling_grid, identity_grid(1, 512, 512))
    assert torch.equal(out.t_sample, partial)


def test_sampler_shapes_ranges_and_visible_texels_kept(real_partial):
    partial, visibility = real_partial
    net = random_sampler(std=0.2)
    with torch.no_grad():
        out = net(partial, visibility)
    assert out.t_sample.shape == (1, 3, 512, 512)
    assert out.sampling_grid.shape == (1, 512, 512, 2)
    assert out.t_sample.min() >= 0 and out.t_sample.max() <= 1
    offset = out.sampling_grid - identity_grid(1, 512, 512)
    assert offset.abs().max() <= net.config.max_offset
    assert offset.abs().max() > 0.05  # the random net really moves the grid
    seen = visibility[0, 0] == 1
    assert torch.equal(out.t_sample[0][:, seen], partial[0][:, seen])
    # some invisible texels got colour from observed ones
    unseen = visibility[0, 0] == 0
    assert (out.t_sample[0][:, unseen].amax(0) > 0).sum() > 1000


def test_premultiplied_sampling_never_mixes_in_unseen_black():
    # left half seen (colour 0.8), right half unseen; every texel samples a point right on the border
    partial = torch.zeros(1, 3, 8, 8)
    partial[..., :4] = 0.8
    visibility = torch.zeros(1, 1, 8, 8)
    visibility[..., :4] = 1
    grid = identity_grid(1, 8, 8).clone()
    grid[..., 0] = 0.0  # x = 0 is halfway between column 3 (seen) and column 4 (unseen)
    t_sample = sample_texture(partial, visibility, grid)
    assert torch.allclose(t_sample, torch.full_like(t_sample, 0.8))
    # sampling only unseen texels gives 0, not a division blow-up
    grid[..., 0] = 0.75
    t_sample = sample_texture(partial, visibility, grid)
    assert torch.equal(t_sample[..., 4:], torch.zeros(1, 3, 8, 4))


def test_offsets_can_reach_across_the_whole_atlas():
    net = random_sampler(std=50.0)  # saturate tanh: the largest offsets the net can produce
    partial, visibility = torch.rand(1, 3, 64, 64), torch.zeros(1, 1, 64, 64)
    visibility[..., :8, :8] = 1
    with torch.no_grad():
        offset = net.predict_offset(partial, visibility)
    assert offset.abs().max() > 1.9  # a texel at one edge can reach the opposite edge (span 2)


def test_grid_upsampling_at_1024_matches_the_256_result(real_partial):
    partial, visibility = real_partial
    partial_1024 = F.interpolate(partial, scale_factor=2, mode="nearest")
    visibility_1024 = F.interpolate(visibility, scale_factor=2, mode="nearest")
    partial_256, visibility_256 = resize_partial(partial_1024, visibility_1024, (256, 256))
    net = random_sampler()
    with torch.no_grad():
        big = net(partial_1024, visibility_1024)
        small = net(partial_256, visibility_256)
    grid_big_down = resize(big.sampling_grid.permute(0, 3, 1, 2), (256, 256))
    assert (grid_big_down - small.sampling_grid.permute(0, 3, 1, 2)).abs().max() < 1e-3
    t_sample_down = resize(big.t_sample, (256, 256))
    assert (t_sample_down - small.t_sample).abs().mean() < 0.03
    # and the 1024 result kept the full-resolution observed texels
    seen = visibility_1024[0, 0] == 1
    assert torch.equal(big.t_sample[0][:, seen], partial_1024[0][:, seen])


def test_sampler_batch_equals_single():
    net = random_sampler()
    torch.manual_seed(1)
    partial = torch.rand(2, 3, 96, 96)
    visibility = (torch.rand(2, 1, 96, 96) > 0.6).float()
    with torch.no_grad():
        batched = net(partial, visibility).t_sample
        single = net(partial[1:], visibility[1:]).t_sample
    # batched convolutions round differently (grid ~1e-5 apart); sampling random noise amplifies it a little
    assert torch.allclose(batched[1:], single, atol=2e-3)


# ----------------------------------------------------------------------------- refiner and baseline


def test_refiner_blend_equation_shapes_and_ranges():
    torch.manual_seed(2)
    net = RefinerNet(SMALL["refiner"]).eval()
    t_sample = torch.rand(2, 3, 96, 96)
    visibility = (torch.rand(2, 1, 96, 96) > 0.5).float()
    with torch.no_grad():
        out = net(t_sample, visibility)
    assert out.t_final.shape == (2, 3, 96, 96) and out.t_refine.shape == (2, 3, 96, 96)
    assert out.blend_mask.shape == (2, 1, 96, 96)
    for t in out:
        assert t.min() >= 0 and t.max() <= 1
    expected = t_sample * out.blend_mask + out.t_refine * (1 - out.blend_mask)
    assert torch.allclose(out.t_final, expected, atol=1e-6)
    assert out.blend_mask.std() > 0  # M varies over the texture: it is predicted, not a constant


def test_refiner_gradients_reach_every_parameter():
    net = RefinerNet(SMALL["refiner"]).train()
    out = net(torch.rand(2, 3, 64, 64), torch.ones(2, 1, 64, 64))
    (out.t_final.mean() + out.blend_mask.mean()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_lazova_predicts_a_full_texture_at_input_size():
    torch.manual_seed(3)
    net = LazovaNet(SMALL["lazova"]).eval()
    partial = torch.rand(1, 3, 128, 128)
    visibility = (torch.rand(1, 1, 128, 128) > 0.5).float()
    with torch.no_grad():
        texture = net(partial, visibility)
    assert texture.shape == (1, 3, 128, 128)
    assert texture.min() >= 0 and texture.max() <= 1
    # it is a direct prediction: observed texels are NOT copied through
    assert not torch.allclose(texture * visibility, partial * visibility, atol=0.05)


# ----------------------------------------------------------------------------- weights files


def test_weights_round_trip(tmp_path):
    net = random_sampler(seed=4)  # random weights, saved and reloaded
    path = save_model(net, tmp_path / "sampler.safetensors", data="unit test (random weights)", command="pytest")
    meta = read_metadata(path)
    assert json.loads(meta["config"]) == net.config.to_dict()
    assert meta["kind"] == "sampler" and meta["uv_layout"] == current_layout_id()
    assert meta["data"] == "unit test (random weights)" and meta["command"] == "pytest" and meta["created"]
    loaded = load_model(path, kind="sampler")
    assert loaded.config == net.config and not loaded.training
    for name, tensor in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)
    partial, visibility = torch.rand(1, 3, 64, 64), (torch.rand(1, 1, 64, 64) > 0.5).float()
    with torch.no_grad():
        assert torch.equal(loaded(partial, visibility).t_sample, net(partial, visibility).t_sample)
    wid = weights_id(path)
    assert len(wid) == 16 and wid == weights_id(path)
    other = save_model(random_sampler(seed=5), tmp_path / "other.safetensors", data="x", command="y")
    assert weights_id(other) != wid


@pytest.fixture()
def good_file(tmp_path):
    # random-weight refiner written on the fly
    torch.manual_seed(6)
    return save_model(RefinerNet(SMALL["refiner"]), tmp_path / "refiner.safetensors", data="random", command="pytest")


def test_missing_weights_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_model(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("keep", [0, 5, 100, -100])
def test_truncated_weights_file(good_file, keep):
    data = good_file.read_bytes()
    good_file.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(WeightsError, match="corrupt|truncated|readable"):
        load_model(good_file)


def test_garbage_weights_file(tmp_path):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(WeightsError):
        load_model(path)


def test_wrong_kind(good_file):
    with pytest.raises(WeightsError, match="refiner weights, but sampler"):
        load_model(good_file, kind="sampler")


def _rewrite(path, tensors=None, **metadata_changes):
    meta = read_metadata(path)
    meta.update(metadata_changes)
    meta = {k: v for k, v in meta.items() if v is not None}
    save_file(tensors if tensors is not None else load_file(str(path)), str(path), metadata=meta)


def test_wrong_layout_id(good_file):
    _rewrite(good_file, uv_layout="surreal_v0")
    with pytest.raises(WeightsError, match="UV layout 'surreal_v0'"):
        load_model(good_file)


def test_no_config_in_metadata(good_file):
    _rewrite(good_file, config=None)
    with pytest.raises(WeightsError, match="no model config"):
        load_model(good_file)


def test_wrong_shapes(good_file):
    # tensors of a wider random refiner under the small refiner's config
    wider = RefinerNet(ModelConfig(kind="refiner", ngf=12, n_down=2, n_res=2, net_size=64)).state_dict()
    _rewrite(good_file, tensors={k: v.contiguous() for k, v in wider.items()})
    with pytest.raises(WeightsError, match="wrong shape"):
        load_model(good_file)


def test_missing_tensor(good_file):
    tensors = load_file(str(good_file))
    tensors.pop(sorted(tensors)[0])
    _rewrite(good_file, tensors=tensors)
    with pytest.raises(WeightsError, match="missing tensors"):
        load_model(good_file)


def test_mirror_inputs_read_each_texels_left_right_partner():
    from blender_humantex.core.uv_layout import get_layout

    config = ModelConfig(kind="sampler", ngf=8, n_down=2, n_res=1, net_size=64, mirror=True)
    net = random_sampler(config)
    assert net.config.in_channels == 10
    torch.manual_seed(7)
    texture = torch.rand(1, 3, 64, 64)
    visibility = (torch.rand(1, 1, 64, 64) > 0.5).float()
    mirrored_texture, mirrored_visibility = net.mirrored(texture, visibility)
    mirror = get_layout(64).mirror_yx
    rows, cols = np.nonzero(mirror[..., 0] >= 0)
    assert len(rows) > 1000
    partner_rows, partner_cols = mirror[rows, cols, 0], mirror[rows, cols, 1]
    assert torch.equal(mirrored_visibility[0, 0, rows, cols], visibility[0, 0, partner_rows, partner_cols])
    assert torch.equal(
        mirrored_texture[0][:, rows, cols], (texture * visibility)[0][:, partner_rows, partner_cols]
    )
    no_partner = mirror[..., 0] < 0
    assert not mirrored_visibility[0, 0][torch.from_numpy(no_partner)].any()
    with torch.no_grad():
        out = net(texture * visibility, visibility)
    assert out.t_sample.shape == (1, 3, 64, 64)


def test_seen_grid_prior_fills_from_mirror_partner_or_same_part(real_partial):
    """grid_prior="seen": an untrained sampler (zero learned offset) reads each unseen texel from its
    seen mirror partner, else from the nearest seen texel of the same DensePose part."""
    from blender_humantex.core.models.grid_prior import seen_source
    from blender_humantex.core.uv_layout import get_layout

    partial, visibility = real_partial
    partial, visibility = resize_partial(partial, visibility, (256, 256))
    visibility = (visibility > 0.5).float()
    partial = partial * visibility
    net = SamplerNet(ModelConfig(kind="sampler", ngf=8, n_down=2, n_res=1, net_size=64, grid_prior="seen")).eval()
    with torch.no_grad():
        out = net(partial, visibility)
    layout = get_layout(256)
    seen = visibility[0, 0].numpy() > 0.5
    src_y, src_x = seen_source(seen)
    unseen_chart = layout.chart_mask & ~seen
    # every unseen chart texel reads a seen texel ...
    assert seen[src_y[unseen_chart], src_x[unseen_chart]].all()
    # ... its mirror partner where that was seen ...
    my, mx = layout.mirror_yx[..., 0], layout.mirror_yx[..., 1]
    partner = unseen_chart & (my >= 0)
    partner &= np.where(partner, seen[np.clip(my, 0, None), np.clip(mx, 0, None)], False)
    assert partner.sum() > 1000
    assert (src_y[partner] == my[partner]).all() and (src_x[partner] == mx[partner]).all()
    # ... else a texel of its own part, whenever that part was seen at all
    part = layout.part_label
    same_part_possible = unseen_chart & ~partner & np.isin(part, np.unique(part[seen]))
    assert (part[src_y[same_part_possible], src_x[same_part_possible]] == part[same_part_possible]).all()
    # and T_sample carries exactly those colours (the texel centres are sampled, so no blending)
    expected = partial[0].numpy()[:, src_y, src_x]
    got = out.t_sample[0].numpy()
    assert np.abs(got[:, unseen_chart] - expected[:, unseen_chart]).max() < 1e-4
    assert np.array_equal(got[:, seen], partial[0].numpy()[:, seen])


def test_refiner_above_its_size_gets_t_samples_fine_detail_back():
    """T_refine at 512² = the net's upsampled output + T_sample's detail finer than 256², clipped; at the
    net's own size (training) nothing is added."""
    from blender_humantex.core.models.networks import DETAIL_CLAMP, fine_detail

    torch.manual_seed(0)
    texture = torch.rand(1, 3, 512, 512)
    detail = fine_detail(texture, (256, 256))
    assert detail.abs().max() <= DETAIL_CLAMP + 1e-7 and detail.abs().max() > 0
    wave = 0.5 + 0.4 * torch.sin(torch.arange(512) * (2 * torch.pi / 128))  # a period of 128 texels
    smooth = (wave[:, None] * wave[None, :]).expand(1, 3, 512, 512)
    assert fine_detail(smooth, (256, 256))[..., 8:-8, 8:-8].abs().max() < 2e-3, "a smooth texture has no fine detail"
    assert not fine_detail(texture[..., :256, :256], (256, 256)).any()
