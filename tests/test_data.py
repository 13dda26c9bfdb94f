"""Training data: procedural textures, visibility masks (real DensePose bank + synthetic), datasets."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from blender_humantex.core.data import procedural, visibility
from blender_humantex.core.data.datasets import (
    FolderTextureDataset,
    ProceduralTextureDataset,
    dev_eval_set,
    load_texture,
)
from blender_humantex.core.errors import InputError
from blender_humantex.core.imageio import write_png
from blender_humantex.core.uv_layout import get_layout, mirror_image

REPEATED = ("stripes", "checks", "plaid", "dots", "print")


@pytest.fixture(scope="module")
def layout():
    return get_layout(256)


@pytest.fixture(scope="module")
def textures():
    return {seed: procedural.make_texture_with_outfit(seed) for seed in range(24)}


# ---------------------------------------------------------------------------------------- textures


def test_texture_deterministic_by_seed(textures):
    again = procedural.make_texture(5)
    assert np.array_equal(again, textures[5][0])
    assert not np.allclose(textures[5][0], textures[6][0])


def test_texture_range_dtype_and_chart(textures, layout):
    for tex, _ in textures.values():
        assert tex.shape == (256, 256, 3) and tex.dtype == np.float32
        assert tex.min() >= 0.0 and tex.max() <= 1.0
        assert not tex[~layout.chart_mask].any(), "texels outside the UV charts must be 0"
        assert (tex[layout.chart_mask].max(axis=1) > 0.02).mean() > 0.97, "the charts are painted"
    small = procedural.make_texture(3, size=128)
    assert small.shape == (128, 128, 3) and not small[~get_layout(128).chart_mask].any()


def test_outfits_vary(textures):
    outfits = [o for _, o in textures.values()]
    assert len({o.top_pattern for o in outfits}) >= 5
    assert len({round(o.sleeve_end, 1) for o in outfits}) >= 3
    assert any(o.dress for o in procedural_outfits(200)) and any(o.logo for o in outfits)


def procedural_outfits(n):
    return [procedural.sample_outfit(np.random.default_rng(s)) for s in range(n)]


def test_repeated_patterns_dominate():
    tops = [o.top_pattern for o in procedural_outfits(400)]
    assert np.mean([t in REPEATED for t in tops]) > 0.6


def _garment_interior(geo, outfit, region="front"):
    """Torso texels well inside the top garment: front centre or the back (chart edges)."""
    tx, ty = geo.torso_xy[..., 0], geo.torso_xy[..., 1]
    band = (ty > 0.45) & (ty < outfit.hem - 0.08)  # below the neckline and any logo, above the hem
    sel = (np.abs(tx - 0.5) < 0.12) if region == "front" else (tx < 0.16) & (tx >= 0)
    return band & sel


def test_garments_carry_high_frequency_patterns(textures):
    """Repeated cloth patterns have far more fine detail than plain fabric on the same body region."""
    geo = procedural.body_geometry(256)
    energy = {}
    for seed in range(120):
        tex, outfit = procedural.make_texture_with_outfit(seed)
        if outfit.top_pattern not in REPEATED + ("solid",):
            continue
        grey = cv2.cvtColor(tex, cv2.COLOR_RGB2GRAY)
        lap = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
        region = _garment_interior(geo, outfit)
        energy.setdefault(outfit.top_pattern == "solid", []).append(float(lap[region].mean()))
    assert len(energy[True]) >= 3 and len(energy[False]) >= 20
    assert np.median(energy[False]) > 4 * np.median(energy[True])


def test_front_pattern_reappears_on_the_back():
    """The paper's premise: a patch of the shirt front is found again on the back of the same shirt."""
    geo = procedural.body_geometry(256)
    scores = []
    for seed in range(80):
        tex, outfit = procedural.make_texture_with_outfit(seed)
        if outfit.top_pattern not in ("stripes", "checks", "plaid", "dots"):
            continue
        grey = cv2.cvtColor(tex, cv2.COLOR_RGB2GRAY)
        front = _garment_interior(geo, outfit, "front")
        ys, xs = np.nonzero(front)
        cy, cx = int(np.median(ys)), int(np.median(xs))
        patch = grey[cy - 8:cy + 8, cx - 8:cx + 8]
        if patch.std() < 1e-3:
            continue
        # search the back of the shirt: the chart's left edge (the body's right back), front excluded
        x0, _, x1, _ = geo.torso_box
        band = np.nonzero(_garment_interior(geo, outfit, "back").any(axis=1))[0]
        area = grey[band.min():band.max() + 1, x0:x0 + int(0.3 * (x1 - x0))] if len(band) else grey[:0]
        if min(area.shape) < 24:  # a cropped top leaves too little back to search
            continue
        scores.append(float(cv2.matchTemplate(area, patch, cv2.TM_CCOEFF_NORMED).max()))
    assert len(scores) >= 10
    assert np.median(scores) > 0.9, scores  # non-repeating fabrics (camo, knit, denim) score ~0.6


def test_left_right_consistency(textures, layout):
    """Limbs and head: each left-side texel shows what its mirror texel on the right side shows."""
    geo = procedural.body_geometry(256)
    left = np.isin(layout.part_label, procedural.LEFT_SIDE_PARTS) & (layout.mirror_yx[..., 0] >= 0)
    rows, cols = np.nonzero(left)
    mr, mc = layout.mirror_yx[rows, cols, 0], layout.mirror_yx[rows, cols, 1]
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(len(rows))
    for tex, _ in textures.values():
        diff = np.abs(tex[rows, cols] - tex[mr, mc]).max(axis=1)
        unrelated = np.abs(tex[rows, cols] - tex[mr[shuffled], mc[shuffled]]).max(axis=1)
        assert np.median(diff) < 0.03 and np.quantile(diff, 0.9) < 0.08  # only the photo light differs
        assert np.median(unrelated) > 3 * np.median(diff) + 0.01
    assert left.sum() > 0.3 * np.isin(geo.part_label, procedural.LEFT_SIDE_PARTS).sum()


# ---------------------------------------------------------------------------------------- visibility


@pytest.fixture(scope="module")
def bank():
    return visibility.load_real_bank(256)


def _part_coverage(mask, layout, part):
    sel = layout.part_label == part
    return float(mask[sel].mean())


def test_real_bank_masks_are_plausible(bank, layout):
    chart = layout.chart_mask
    assert len(bank.masks) >= 8 and len(bank.names) == len(bank.masks)
    assert {n.split("/")[0] for n in bank.names} >= {"densepose_demo", "densepose_pr99", "pose_with_style",
                                                      "smplitex_example"}
    for m, name in zip(bank.masks, bank.names, strict=True):
        coverage = m.sum() / chart.sum()
        assert 0.03 <= coverage <= 0.5, (name, coverage)
        assert not (m & ~chart).any()
    by_name = dict(zip(bank.names, bank.masks, strict=True))
    front = by_name["pose_with_style/fashionWOMENDressesid0000262902_1front_iuv.png#1"]
    back = by_name["pose_with_style/fashionWOMENDressesid0000262902_3back_iuv.png#1"]
    assert _part_coverage(front, layout, 2) > 0.3 > _part_coverage(front, layout, 1)  # torso front seen
    assert _part_coverage(back, layout, 1) > 0.3 > _part_coverage(back, layout, 2)  # torso back seen


def test_real_bank_matches_a_rebuild_from_the_samples(bank, samples):
    masks, names = visibility.real_masks_from_samples(samples, 256)
    assert list(names) == list(bank.names)
    for new, old, name in zip(masks, bank.masks, names, strict=True):
        iou = (new & old).sum() / max((new | old).sum(), 1)
        assert iou > 0.9, (name, iou)


def test_real_bank_at_other_sizes(bank):
    small = visibility.load_real_bank(128)
    assert small.masks.shape == (len(bank.masks), 128, 128)
    assert not (small.masks & ~get_layout(128).chart_mask).any()


def test_flip_swaps_body_sides(bank, layout):
    m = bank.masks[bank.names.index("pose_with_style/fashionWOMENDressesid0000262902_1front_iuv.png#1")]
    flipped = visibility.flip_visibility(m)
    for right, left in ((9, 10), (16, 15), (23, 24)):
        assert abs(_part_coverage(flipped, layout, right) - _part_coverage(m, layout, left)) < 0.08
    assert abs(flipped.sum() - m.sum()) < 0.1 * m.sum()


def test_synthetic_views(layout):
    rng = np.random.default_rng(1)
    front = visibility.synthetic_visibility(rng, 256, view=0.0)
    back = visibility.synthetic_visibility(rng, 256, view=180.0)
    for m in (front, back):
        assert m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}
        assert not m[~layout.chart_mask].any()
    assert _part_coverage(front, layout, 2) > 0.4 > _part_coverage(front, layout, 1)
    assert _part_coverage(back, layout, 1) > 0.4 > _part_coverage(back, layout, 2)
    assert _part_coverage(front, layout, 9) > _part_coverage(front, layout, 7)  # upper leg front vs back
    geo = procedural.body_geometry(256)
    face = geo.face["face"]
    assert front[face].mean() > 0.5 and back[face].mean() < 0.2


def test_sample_visibility_deterministic_and_sane(layout):
    chart = layout.chart_mask
    coverages = []
    for seed in range(30):
        a = visibility.sample_visibility(np.random.default_rng(seed), 256)
        b = visibility.sample_visibility(np.random.default_rng(seed), 256)
        assert np.array_equal(a, b)
        assert not a[~chart].any()
        coverages.append(a.sum() / chart.sum())
    assert min(coverages) > 0.02 and max(coverages) < 0.7
    assert np.std(coverages) > 0.03  # views differ


def test_misalign_erodes_and_stays_inside():
    rng = np.random.default_rng(0)
    m = visibility.synthetic_visibility(rng, 256, view=0.0)
    out = visibility.misalign(m, rng)
    assert out.sum() < m.sum() and out.sum() > 0.5 * m.sum()
    assert not (out > m).any()


# ---------------------------------------------------------------------------------------- datasets


def test_procedural_dataset_items():
    ds = ProceduralTextureDataset("train", size=256, length=10, seed=3)
    item = ds[2]
    assert set(item) == {"target", "partial", "visibility"}
    assert item["target"].shape == (3, 256, 256) and item["visibility"].shape == (1, 256, 256)
    for v in item.values():
        assert str(v.dtype) == "torch.float32" and float(v.min()) >= 0 and float(v.max()) <= 1
    assert (item["partial"] == item["target"] * item["visibility"]).all()
    again = ProceduralTextureDataset("train", size=256, length=10, seed=3)[2]
    assert all((again[k] == item[k]).all() for k in item)
    assert not (ds[3]["target"] == item["target"]).all()
    assert len(ds) == 10 and (ds[-1]["target"] == ds[9]["target"]).all()
    with pytest.raises(IndexError):
        ds[10]


def test_train_and_test_splits_are_disjoint():
    train = ProceduralTextureDataset("train", length=10_000, seed=0)
    test = ProceduralTextureDataset("test", length=10_000, seed=0)
    train_seeds = {train.texture_seed(i) for i in range(2000)}
    test_seeds = {test.texture_seed(i) for i in range(2000)}
    assert not train_seeds & test_seeds
    assert not np.allclose(train.numpy_item(0)[0], test.numpy_item(0)[0])
    with pytest.raises(InputError) as e:
        ProceduralTextureDataset("validation")
    assert e.value.kind == "bad_argument"


def test_dataloader_workers_give_the_same_items():
    import torch

    ds = ProceduralTextureDataset("test", size=128, length=4, seed=1)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1)
    batch = next(iter(loader))
    assert batch["target"].shape == (2, 3, 128, 128)
    assert torch.equal(batch["target"][1], ds[1]["target"])
    assert torch.equal(batch["visibility"][0], ds[0]["visibility"])


def test_folder_dataset(tmp_path):
    layout = get_layout(256)
    for seed, name in ((11, "a.png"), (12, "b.jpg")):
        tex = procedural.make_texture(seed, 512)
        if name.endswith(".png"):
            write_png(tmp_path / name, tex)
        else:
            cv2.imwrite(str(tmp_path / name), (tex[..., ::-1] * 255).astype(np.uint8))
    (tmp_path / "notes.txt").write_text("not a texture")
    ds = FolderTextureDataset(tmp_path, size=256, length=4, seed=0)
    assert [p.name for p in ds.files] == ["a.png", "b.jpg"]
    item = ds[0]
    assert item["target"].shape == (3, 256, 256) and item["visibility"].shape == (1, 256, 256)
    target = item["target"].permute(1, 2, 0).numpy()
    expected = procedural.make_texture(11, 512)
    expected = cv2.resize(expected, (256, 256), interpolation=cv2.INTER_AREA) * layout.chart_mask[..., None]
    assert np.abs(target - expected).max() < 2 / 255 + 1e-6
    # the second round shows the same texture mirrored left/right
    mirrored = ds[2]["target"].permute(1, 2, 0).numpy()
    assert np.allclose(mirrored, mirror_image(target, layout, fill=target), atol=1e-6)
    assert (item["partial"] == item["target"] * item["visibility"]).all()


def test_folder_dataset_errors(tmp_path):
    with pytest.raises(InputError) as e:
        FolderTextureDataset(tmp_path / "nope")
    assert e.value.kind == "missing_file"
    with pytest.raises(InputError) as e:
        FolderTextureDataset(tmp_path)
    assert e.value.kind == "empty_folder"
    write_png(tmp_path / "wide.png", np.zeros((64, 128, 3), np.float32))
    with pytest.raises(InputError) as e:
        FolderTextureDataset(tmp_path)
    assert e.value.kind == "not_square" and "wide.png" in str(e.value)
    (tmp_path / "wide.png").unlink()
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(InputError) as e:
        FolderTextureDataset(tmp_path)
    assert e.value.kind == "unreadable"


def test_dev_eval_set(shared_data, bank):
    dev = shared_data / "dev_textures"
    samples = dev_eval_set(dev, size=256)
    n_files = len(list(dev.glob("*.png")))
    assert len(samples) == 3 * n_files
    assert len({s["mask_name"] for s in samples}) == min(len(samples), len(bank.masks))
    for s in samples:
        assert s["target"].shape == (256, 256, 3) and s["visibility"].shape == (256, 256)
        assert np.array_equal(s["partial"], s["target"] * s["visibility"][..., None])
        assert s["visibility"].sum() > 0
    first = load_texture(sorted(dev.glob("*.png"))[0], 256)
    assert np.array_equal(samples[0]["target"], first)
    again = dev_eval_set(dev, size=256)
    assert all(np.array_equal(a["partial"], b["partial"]) for a, b in zip(samples, again, strict=True))
    with pytest.raises(InputError):
        dev_eval_set(shared_data / "no_such_dir")


# ---------------------------------------------------------------------------------------- photometric augmentation


def test_photometric_augmentation_degrades_the_partial_only(layout):
    from blender_humantex.core.data import photometric

    target = procedural.make_texture(7)
    rng = np.random.default_rng(0)
    seen = visibility.sample_visibility(rng, 256)
    always = photometric.PhotometricConfig(p_any=1.0, p_colour=0.0, p_shading=1.0, p_folds=1.0, p_blur=1.0,
                                           p_noise=1.0, p_jpeg=1.0, p_occluder=1.0)
    out_target, partial = photometric.augment(np.random.default_rng(5), target, seen, always)
    assert out_target is target or np.array_equal(out_target, target), "without colour the target stays clean"
    assert partial.dtype == np.float32 and partial.min() >= 0 and partial.max() <= 1
    assert not partial[seen < 0.5].any(), "unseen texels stay 0"
    clean = target * seen[..., None]
    diff = np.abs(partial - clean)[seen > 0.5]
    assert diff.mean() > 0.02, "the seen texels are degraded"
    again = photometric.augment(np.random.default_rng(5), target, seen, always)
    assert np.array_equal(again[1], partial), "a function of the seed alone"
    other = photometric.augment(np.random.default_rng(6), target, seen, always)[1]
    assert not np.array_equal(other, partial)


def test_photometric_colour_goes_to_target_and_partial_alike(layout):
    from blender_humantex.core.data import photometric

    target = procedural.make_texture(3)
    seen = (layout.chart_mask & (np.arange(256)[None, :] < 128)).astype(np.float32)
    colour_only = photometric.PhotometricConfig(p_any=1.0, p_colour=1.0, p_shading=0.0, p_folds=0.0, p_blur=0.0,
                                                p_noise=0.0, p_jpeg=0.0, p_occluder=0.0)
    out_target, partial = photometric.augment(np.random.default_rng(1), target, seen, colour_only)
    assert not np.allclose(out_target, target, atol=0.01), "the camera's colour changed the texture"
    assert np.allclose(partial, out_target * seen[..., None], atol=1e-6), "the fill must continue the photo's colour"
    assert not out_target[~layout.chart_mask].any(), "outside the charts stays black"
    none = photometric.PhotometricConfig(p_any=0.0)
    same_target, same_partial = photometric.augment(np.random.default_rng(1), target, seen, none)
    assert np.array_equal(same_target, target) and np.array_equal(same_partial, target * seen[..., None])


def test_blur_of_the_seen_texels_keeps_their_level():
    from blender_humantex.core.data import photometric

    flat = np.full((64, 64, 3), 0.6, np.float32)
    seen = np.zeros((64, 64), np.float32)
    seen[16:48, 16:48] = 1
    blurred = photometric.blur_seen(flat * seen[..., None], seen, 2.0)
    assert np.allclose(blurred[seen > 0.5], 0.6, atol=1e-4), "no dark rim from the unseen zeros"


def test_real_dataset_photometric_items(shared_data):
    from blender_humantex.core.data import RealTextureDataset

    plain = RealTextureDataset(size=128, length=40, seed=2)
    augmented = RealTextureDataset(size=128, length=40, seed=2, photometric=True)
    changed = 0
    for i in range(0, 40, 4):
        a, b = plain[i], augmented[i]
        assert torch_equal(a["visibility"], b["visibility"]) and torch_equal(a["valid"], b["valid"])
        assert torch_equal(b["partial"] * (1 - b["visibility"]), 0 * b["partial"]), "unseen texels stay 0"
        assert torch_equal(augmented[i]["partial"], b["partial"]), "deterministic"
        changed += not torch_equal(a["partial"], b["partial"])
    assert changed >= 5, "most items are augmented"


def torch_equal(a, b) -> bool:
    return bool((a == b).all())
