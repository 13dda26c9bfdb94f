"""Visibility masks for training: which texels a single photo would show.

Three sources, mixed by `sample_visibility`:
- **real**: masks unwrapped from real DensePose outputs (every person in every IUV of
  ../shared/data/densepose_samples), shipped as a small bank (`real_visibility_256.npz`, see
  REAL_BANK_NOTE), used with left/right flips (through the layout's mirror map) and jitter;
- **synthetic, view-dependent**: a camera azimuth decides which charts face it; the torso and head
  charts wrap around the body, so the seen part is an interval of the chart's horizontal coordinate;
  limbs have front and back parts and are cut across their chart the same way; photo crops cut legs
  at the knee or thigh; far-side limbs hide behind the body in side views;
- **DensePose misalignment** (applied to both): boundary erosion, a ragged edge and speckle holes.

All masks are float32 H×W in {0, 1}, zero outside the UV charts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from .procedural import ARMS, LEGS, body_geometry, low_freq_noise

REAL_BANK_FILE = Path(__file__).with_name("real_visibility_256.npz")
REAL_BANK_SIZE = 256
REAL_BANK_NOTE = (
    "Derived from DensePose outputs in ../shared/data/densepose_samples (facebookresearch/DensePose demo"
    " and PR #99 files: CC BY-NC 4.0; pose-with-style and SMPLitex IUVs of DeepFashion photos: non-commercial"
    " research). Only the visibility masks are stored (which SMPL-UV texels each person shows), no pixels."
    " Rebuild with: python -m blender_humantex.core.data.visibility --rebuild <densepose_samples dir>"
)
# (IUV file, INDS file or None, channel order when read as RGB) under densepose_samples/.
REAL_SOURCES = (
    ("densepose_demo/demo_im_IUV.png", "densepose_demo/demo_im_INDS.png", "vui"),
    ("densepose_pr99/IUV.png", "densepose_pr99/INDS.png", "vui"),
    ("smplitex_example/MEN-Jackets_Vests-id_00003336-09_1_front_densepose.png", None, "vui"),
    ("pose_with_style/fashionWOMENBlouses_Shirtsid0000635004_1front_iuv.png", None, "iuv"),
    ("pose_with_style/fashionWOMENDressesid0000262902_1front_iuv.png", None, "iuv"),
    ("pose_with_style/fashionWOMENDressesid0000262902_3back_iuv.png", None, "iuv"),
    ("pose_with_style/fashionWOMENSkirtsid0000177102_1front_iuv.png", None, "iuv"),
)
MIN_REAL_COVERAGE = 0.03  # persons showing less than 3% of the chart texels are too small to teach anything

# Limb parts that face the camera in a front view, and those that face away (checked on the real IUVs:
# front photos show parts 9, 10, 13, 14, 15, 16; the back photo shows 7, 8, 17, 18; lower arms as
# uv_layout.PART_NAMES names them).
FRONT_LIMB_PARTS = (9, 10, 13, 14, 15, 16, 19, 20)
BACK_LIMB_PARTS = (7, 8, 11, 12, 17, 18, 21, 22)


# ----------------------------------------------------------------------------------------------
# Real masks


def real_masks_from_samples(samples_dir, size: int = REAL_BANK_SIZE) -> tuple[np.ndarray, list[str]]:
    """Unwrap every person of every IUV in REAL_SOURCES: (bool N×size×size, names)."""
    from ..imageio import read_raw_u8
    from ..sources.iuv import iuv_channels, select_person, visibility_from_iuv
    from ..uv_layout import get_layout

    samples_dir = Path(samples_dir)
    chart = get_layout(size).chart_mask
    masks, names = [], []
    for iuv_name, inds_name, order in REAL_SOURCES:
        iuv, _ = iuv_channels(read_raw_u8(samples_dir / iuv_name), order)
        inds = read_raw_u8(samples_dir / inds_name) if inds_name else None
        _, _, persons = select_person(iuv, inds, None)
        for person in sorted(persons):
            vis = visibility_from_iuv(iuv, inds, person if inds is not None else None, size=size) > 0.5
            if vis.sum() >= MIN_REAL_COVERAGE * chart.sum():
                masks.append(vis & chart)
                names.append(f"{iuv_name}#{person}")
    if not masks:
        raise InputError(f"no usable person in the DensePose samples under {samples_dir}", kind="no_person")
    return np.stack(masks), names


def rebuild_real_bank(samples_dir, path=REAL_BANK_FILE) -> Path:
    masks, names = real_masks_from_samples(samples_dir, REAL_BANK_SIZE)
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez_compressed(tmp, masks=np.packbits(masks, axis=-1), shape=np.array(masks.shape),
                        names=np.array(names), note=np.array(REAL_BANK_NOTE))
    tmp.replace(path)
    return path


@dataclass(frozen=True)
class RealBank:
    masks: np.ndarray  # bool N×size×size
    names: tuple[str, ...]


@lru_cache(maxsize=4)
def load_real_bank(size: int = REAL_BANK_SIZE, path=REAL_BANK_FILE) -> RealBank:
    """The shipped real masks at `size` (resampled from 256² with nearest neighbours, kept inside the charts)."""
    from ..uv_layout import get_layout

    try:
        with np.load(path) as z:
            shape = tuple(int(v) for v in z["shape"])
            masks = np.unpackbits(z["masks"], axis=-1, count=shape[-1]).astype(bool).reshape(shape)
            names = tuple(str(n) for n in z["names"])
    except (OSError, KeyError, ValueError) as e:
        raise InputError(f"the real visibility bank {Path(path).name} is missing or corrupt ({e});"
                         " rebuild it with python -m blender_humantex.core.data.visibility --rebuild DIR",
                         kind="missing_file") from None
    if size != shape[-1]:
        chart = get_layout(size).chart_mask
        masks = np.stack([cv2.resize(m.view(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0
                          for m in masks]) & chart
    masks.setflags(write=False)
    return RealBank(masks=masks, names=names)


def flip_visibility(mask: np.ndarray) -> np.ndarray:
    """The mask of the mirrored photo: each texel takes the visibility of its left/right mirror texel."""
    from ..uv_layout import get_layout, mirror_image

    return mirror_image(np.asarray(mask, np.float32), get_layout(mask.shape[0]), fill=0.0)


# ----------------------------------------------------------------------------------------------
# Synthetic, view-dependent masks


@dataclass(frozen=True)
class _ViewGeometry:
    """Per-texel azimuth around the body (0 = facing the camera of a front photo), per size."""

    azimuth: np.ndarray  # float32 H×W, radians; NaN where a part has no usable orientation
    limb_side: np.ndarray  # int8 H×W: +1 body right limbs, -1 left limbs, 0 elsewhere
    cut_axis: np.ndarray  # float32 H×W in [0,1]: DensePose U on hands and feet, for cut-offs


@lru_cache(maxsize=4)
def _view_geometry(size: int) -> _ViewGeometry:
    from ..uv_layout import get_layout

    geo = body_geometry(size)
    part = geo.part_label
    dp_u = get_layout(size).dp_uv[..., 0]
    azimuth = np.full(part.shape, np.nan, np.float32)
    # Torso and head charts wrap around the body: front at the chart's centre line, the body's right
    # side on the chart's left half (head part 23 = head right lies there), the back at both edges.
    for xy in (geo.torso_xy, geo.head_xy):
        inside = xy[..., 0] >= 0
        azimuth[inside] = (0.5 - xy[..., 0][inside]) * 2 * np.pi
    # Limb parts: DensePose's U runs around the limb (V along it), each part covering half a turn;
    # front and back parts meet at U = 1 / U = 0 on one side.
    front = np.isin(part, FRONT_LIMB_PARTS)
    back = np.isin(part, BACK_LIMB_PARTS)
    azimuth[front] = (dp_u[front] - 0.5) * np.pi
    azimuth[back] = np.pi + (dp_u[back] - 0.5) * np.pi
    limb_side = np.zeros(part.shape, np.int8)
    for side, sign in (("right", 1), ("left", -1)):
        for upper, lower in (ARMS[side], LEGS[side]):
            limb_side[np.isin(part, (*upper, *lower))] = sign
    limb_side[np.isin(part, (3, 6))] = 1
    limb_side[np.isin(part, (4, 5))] = -1
    ends = np.isin(part, (3, 4, 5, 6))
    cut_axis = np.full(part.shape, np.nan, np.float32)
    cut_axis[ends] = dp_u[ends]
    return _ViewGeometry(azimuth=azimuth, limb_side=limb_side, cut_axis=cut_axis)


def synthetic_visibility(rng, size: int = 256, view: float | None = None) -> np.ndarray:
    """A view-dependent mask: `view` is the camera azimuth in degrees (0 front, ±90 sides, 180 back),
    random (front views most often, as in fashion photos) when None."""
    geo = body_geometry(size)
    vg = _view_geometry(size)
    if view is None:
        kind = rng.choice(4, p=[0.5, 0.2, 0.15, 0.15])
        view = [rng.uniform(-25, 25), rng.choice([-1, 1]) * rng.uniform(25, 65),
                rng.choice([-1, 1]) * rng.uniform(65, 115), rng.uniform(150, 210)][kind]
    phi = np.deg2rad(view)
    # Grazing texels are stretched over a few pixels in a photo and DensePose misplaces them: drop them.
    threshold = rng.uniform(0.05, 0.35)
    facing = np.cos(vg.azimuth - phi) > threshold  # NaN compares False
    # Hands and feet: seen in part, cut across at a random place.
    ends = ~np.isnan(vg.cut_axis)
    cut = rng.uniform(0.0, 1.0)
    ends_seen = ends & ((vg.cut_axis > cut) if rng.random() < 0.5 else (vg.cut_axis < cut + 0.3))
    if rng.random() < 0.3:
        ends_seen[:] = False
    visible = facing | ends_seen
    # Side views: the limbs on the far side hide behind the body.
    far = -int(np.sign(np.sin(phi))) if abs(np.sin(phi)) > 0.6 else 0
    if far and rng.random() < 0.8:
        visible &= vg.limb_side != far
    # Photo crops: legs cut at the thigh or knee (upper-body fashion shots), or no legs at all.
    crop = rng.random()
    if crop < 0.25:
        leg_cut = rng.uniform(0.0, 0.6)
        visible &= ~((geo.leg_mask & (geo.limb_s > leg_cut)) | (geo.feet_mask & (leg_cut < 1.0)))
    # Arms in front of the torso, a bag, long hair: a few blobs of occlusion.
    for _ in range(int(rng.integers(0, 3))):
        blob = low_freq_noise(rng, size, int(rng.integers(3, 7))) > rng.uniform(0.5, 0.8)
        visible &= ~blob
    return (visible & geo.chart_mask).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Misalignment, jitter and the mix


def misalign(mask: np.ndarray, rng) -> np.ndarray:
    """Imitate DensePose's errors: eroded boundaries, a ragged edge and speckle holes."""
    size = mask.shape[0]
    unit = max(1, size // 256)
    m = (mask > 0.5).astype(np.uint8)
    erode = int(rng.integers(0, 3)) * unit
    if erode:
        m = cv2.erode(m, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))
    band_px = int(rng.integers(1, 4)) * unit
    inner = cv2.erode(m, np.ones((2 * band_px + 1, 2 * band_px + 1), np.uint8))
    ragged = low_freq_noise(rng, size, int(rng.integers(16, 48))) > rng.uniform(-0.2, 0.4)
    m = np.where((m > 0) & (inner == 0), ragged, m > 0)
    n_holes = int(rng.integers(0, 40) * (size / 256) ** 2)
    if n_holes:
        holes = np.zeros((size, size), np.uint8)
        ys, xs = rng.integers(0, size, (2, n_holes))
        holes[ys, xs] = 1
        holes = cv2.dilate(holes, np.ones((1 + 2 * unit, 1 + 2 * unit), np.uint8))
        m &= holes == 0
    return m.astype(np.float32)


def jitter_real(mask: np.ndarray, rng) -> np.ndarray:
    """A real mask, maybe flipped left/right, shifted by a texel or two, grown or shrunk a little."""
    m = np.asarray(mask, np.float32)
    if rng.random() < 0.5:
        m = flip_visibility(m)
    size = m.shape[0]
    dx, dy = rng.integers(-2, 3, 2) * max(1, size // 256)
    if dx or dy:
        m = cv2.warpAffine(m, np.float32([[1, 0, dx], [0, 1, dy]]), (size, size), flags=cv2.INTER_NEAREST)
    if rng.random() < 0.3:
        m = cv2.dilate(m, np.ones((3, 3), np.uint8))
    return m


def prepare(size: int) -> None:
    """Build the per-size caches now (body geometry, view geometry, real bank), e.g. before DataLoader
    workers fork, so that each worker does not build them again."""
    body_geometry(size)
    _view_geometry(size)
    load_real_bank(size)


# Masks of the real bank that the dev protocol evaluates with (MODEL_CARD.md): never used in training.
DEV_PROTOCOL_MASKS = (3, 6, 10, 11)


def training_real_masks(size: int = REAL_BANK_SIZE) -> tuple[int, ...]:
    """Indices of the real bank's masks that training may use (all but the dev protocol's)."""
    return tuple(i for i in range(len(load_real_bank(size).masks)) if i not in DEV_PROTOCOL_MASKS)


def sample_visibility(rng, size: int = 256, real_fraction: float = 0.5, real_masks=None) -> np.ndarray:
    """One training mask: a jittered real one with probability `real_fraction`, else a synthetic view,
    then DensePose-like misalignment; float32 H×W in {0, 1}, inside the charts, never empty.
    `real_masks`: indices into the real bank to draw from (default: all)."""
    geo = body_geometry(size)
    for _ in range(8):
        if rng.random() < real_fraction:
            bank = load_real_bank(size)
            if real_masks is None:
                index = int(rng.integers(0, len(bank.masks)))
            else:
                index = int(real_masks[int(rng.integers(0, len(real_masks)))])
            m = jitter_real(bank.masks[index], rng)
        else:
            m = synthetic_visibility(rng, size)
        m = misalign(m, rng) * geo.chart_mask
        if m.sum() > 0.02 * geo.chart_mask.sum():
            return m.astype(np.float32)
    return synthetic_visibility(rng, size, view=0.0)  # a plain front view never comes out empty


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Rebuild the shipped real visibility bank from DensePose samples.")
    parser.add_argument("--rebuild", metavar="DENSEPOSE_SAMPLES_DIR", required=True)
    parser.add_argument("--out", default=str(REAL_BANK_FILE))
    args = parser.parse_args(argv)
    path = rebuild_real_bank(args.rebuild, args.out)
    bank = load_real_bank.__wrapped__(REAL_BANK_SIZE, path)
    for name, m in zip(bank.names, bank.masks, strict=True):
        print(f"{m.mean():6.3f} of the square  {name}")
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(bank.names)} masks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
