"""Procedural SMPL-UV textures: clothed bodies painted part by part, deterministic by seed.

No scans can be had, so the training targets are painted: a skin tone, a face and hair on the head
chart, an upper garment (sleeveless / short / elbow / 3-4 / long sleeves, with a neckline), a lower
garment (trousers, capris, shorts, skirts) or a dress, and shoes or boots. Garments carry *repeated*
cloth patterns (stripes at several angles, checks, gingham, plaid, dots, tiled prints, denim twill,
knit, camouflage) because the paper's claim is that sampling reproduces such patterns in unseen parts.

Consistency:
- left/right: limbs and head are painted once and then gathered through `BodyGeometry` (each texel of
  the body's left side reads its mirror texel on the right side, from the layout's `mirror_yx`), so
  both sides carry the same garment with the pattern aligned across symmetric parts;
- front/back: the front and back of the torso and of each limb lie side by side in one chart, and a
  pattern is painted continuously across the chart, so it runs around the body;
- some asymmetry stays on purpose: front-only prints (logos) and a very low-frequency light.

How it stays fast (a few ms per 256² texture, see benchmarks/bench_data.py): every cloth pattern is a
small periodic tile drawn once, repeated with np.tile and turned with one cv2.warpAffine; noisy
fabrics are 1-channel fields mapped to colour through a 256-entry look-up table; the body-dependent
masks (face, hair, limb coordinates, mirror gather) are computed once per size in `body_geometry`.
Images are built in uint8 and turned into float32 once, at the end, together with the shading.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

# DensePose part indices (1..24), as `UVLayout.part_label` stores them.
TORSO = (1, 2)
TORSO_FRONT = 2
HEAD = (23, 24)
FEET = (5, 6)
# Limb segments per body side: (upper parts, lower parts).
ARMS = {"right": ((16, 18), (20, 22)), "left": ((15, 17), (19, 21))}
LEGS = {"right": ((7, 9), (11, 13)), "left": ((8, 10), (12, 14))}
# Parts of the body's left side: they copy their mirror texel on the right side. (The torso is left
# alone: its one chart wraps around the body, so a pattern painted across it is already continuous.)
LEFT_SIDE_PARTS = (4, 5, 8, 10, 12, 14, 15, 17, 19, 21, 24)
HAIR_LENGTHS = {"short": 0.5, "medium": 0.7, "long": 0.98}


# ----------------------------------------------------------------------------------------------
# Per-size body geometry


@dataclass(frozen=True)
class BodyGeometry:
    """Per-texel body coordinates and fixed masks at one texture size, computed once from the UV layout.

    torso_xy / head_xy: position inside the torso / head chart's bounding box in [0,1] (x = 0.5 is the
    body's front centre line; both charts wrap around the body with the back at the left and right
    edges; y = 0 at the top), -1 outside. limb_s: along arms and legs, 0 at the shoulder or hip, 0.5 at
    the elbow or knee, 1 at the wrist or ankle; -1 elsewhere. gather_x / gather_y: the cv2.remap maps
    that make the body's left side repeat its right side.
    """

    size: int
    chart_mask: np.ndarray
    part_label: np.ndarray
    torso_xy: np.ndarray
    head_xy: np.ndarray
    limb_s: np.ndarray
    arm_mask: np.ndarray
    leg_mask: np.ndarray
    feet_mask: np.ndarray
    torso_front: np.ndarray
    gather_x: np.ndarray
    gather_y: np.ndarray
    face: dict  # name -> bool mask: face, eyes, brows, lips, nose
    hair: dict  # hair length name -> bool mask
    hair_strands: np.ndarray  # uint8 look-up index (0..255) for hair shading
    torso_box: tuple  # x0, y0, x1, y1 in texels


def _box_coordinates(region: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    ys, xs = np.nonzero(region)
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    h, w = region.shape
    gx = (np.arange(w, dtype=np.float32) - x0) / max(x1 - x0, 1)
    gy = (np.arange(h, dtype=np.float32) - y0) / max(y1 - y0, 1)
    xy = np.stack(np.broadcast_arrays(gx[None, :], gy[:, None]), axis=-1).astype(np.float32)
    xy[~region] = -1.0
    return xy, (int(x0), int(y0), int(x1), int(y1))


def _main_component(mask: np.ndarray) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(_main_component(mask))
    return np.array([xs.mean(), ys.mean()])


def _segment_axis(segment: np.ndarray, neighbour: np.ndarray, towards_neighbour: bool) -> np.ndarray:
    """t in [0,1] along the segment's principal axis; t = 1 at the end next to `neighbour` if
    `towards_neighbour`, else t = 0 there. (Upper and lower limb segments touch at the elbow / knee
    inside one chart, which tells the ends apart.)

    Texels of the segment outside its main chart piece (the buttock pieces of the upper legs sit inside
    the torso chart) get t = 0: they belong to the proximal end.
    """
    main = _main_component(segment)
    ys, xs = np.nonzero(main)
    pts = np.stack([xs, ys], 1).astype(np.float64)
    centre = pts.mean(0)
    _, _, vt = np.linalg.svd(pts - centre, full_matrices=False)
    axis = vt[0]
    if (np.dot(_centroid(neighbour) - centre, axis) < 0) == towards_neighbour:
        axis = -axis
    proj = (pts - centre) @ axis
    lo, hi = np.percentile(proj, [1, 99])
    t = np.full(segment.shape, -1.0, np.float32)
    t[segment] = 0.0
    t[ys, xs] = np.clip((proj - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    return t


def _gather_maps(layout, chart: np.ndarray, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps: left-side texels read their mirror texel; every other texel reads itself.

    Where the layout has no mirror for a left-side texel (a few texels along chart borders), the nearest
    left-side texel that has one lends its mirror, so the copy has no holes.
    """
    from scipy import ndimage

    h, w = part.shape
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    mirror = np.asarray(layout.mirror_yx)
    left = np.isin(part, LEFT_SIDE_PARTS) & chart
    has = left & (mirror[..., 0] >= 0)
    if not has.any():
        return gx, gy
    _, (nr, nc) = ndimage.distance_transform_edt(~has, return_indices=True)
    src_r, src_c = mirror[nr, nc, 0], mirror[nr, nc, 1]
    gx[left] = src_c[left]
    gy[left] = src_r[left]
    return gx, gy


def _ellipse(xy: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    x, y = xy[..., 0], xy[..., 1]
    return (x >= 0) & (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1.0)


def _limb_coordinate(part: np.ndarray) -> np.ndarray:
    """Per texel, where it lies along its arm or leg: 0 at the shoulder/hip .. 1 at the hand/foot; -1 elsewhere."""
    limb_s = np.full(part.shape, -1.0, np.float32)
    for upper_parts, lower_parts in (*ARMS.values(), *LEGS.values()):
        upper, lower = np.isin(part, upper_parts), np.isin(part, lower_parts)
        upper_t = _segment_axis(upper, lower, towards_neighbour=True)
        lower_t = _segment_axis(lower, upper, towards_neighbour=False)
        limb_s[upper] = 0.5 * upper_t[upper]
        limb_s[lower] = 0.5 + 0.5 * lower_t[lower]
    return limb_s


def _face_and_hair(head_xy: np.ndarray, size: int):
    """The head chart's face masks, hair masks by length, and the hair strands' stripe pattern."""
    # The face: an oval on the head chart's front line, with eyes, brows, lips and a nose shadow at
    # fixed places (measured on SMPL-UV textures: eyes at 47% of the head chart's height).
    face = {
        "face": _ellipse(head_xy, 0.5, 0.6, 0.26, 0.42),
        "eyes": _ellipse(head_xy, 0.4, 0.47, 0.045, 0.02) | _ellipse(head_xy, 0.6, 0.47, 0.045, 0.02),
        "brows": _ellipse(head_xy, 0.4, 0.41, 0.06, 0.012) | _ellipse(head_xy, 0.6, 0.41, 0.06, 0.012),
        "lips": _ellipse(head_xy, 0.5, 0.76, 0.07, 0.022),
        "nose": (head_xy[..., 0] >= 0) & (np.abs(head_xy[..., 0] - 0.5) < 0.02)
        & (head_xy[..., 1] > 0.5) & (head_xy[..., 1] < 0.66),
    }
    hx, hy = head_xy[..., 0], head_xy[..., 1]
    head = hx >= 0
    hairline = 0.28 + 0.05 * np.cos((hx - 0.5) * 2 * np.pi)
    hair = {}
    for name, length in HAIR_LENGTHS.items():
        back = np.abs(hx - 0.5) > (0.24 if name == "long" else 0.3)
        hair[name] = head & ((hy < hairline) | (back & (hy < length)) | (~face["face"] & (hy < 0.4)))
    # Strands: thin vertical waves, wobbling a little.
    wobble = cv2.resize(np.random.default_rng(7).uniform(-1, 1, (13, 13)).astype(np.float32), (size, size),
                        interpolation=cv2.INTER_CUBIC)
    x256 = np.arange(size, dtype=np.float32)[None, :] * (256.0 / size) + 3.0 * wobble
    hair_strands = (np.mod(x256, 3.0) * (255.0 / 3.0)).astype(np.uint8)
    return face, hair, hair_strands


@lru_cache(maxsize=8)
def body_geometry(size: int) -> BodyGeometry:
    from ..uv_layout import get_layout

    layout = get_layout(size)
    part = np.asarray(layout.part_label)
    chart = np.asarray(layout.chart_mask, dtype=bool)
    torso_xy, torso_box = _box_coordinates(np.isin(part, TORSO))
    head_xy, _ = _box_coordinates(np.isin(part, HEAD))

    limb_s = _limb_coordinate(part)
    arm_parts = [p for segs in ARMS.values() for seg in segs for p in seg]
    leg_parts = [p for segs in LEGS.values() for seg in segs for p in seg]
    face, hair, hair_strands = _face_and_hair(head_xy, size)

    gather_x, gather_y = _gather_maps(layout, chart, part)
    return BodyGeometry(
        size=size,
        chart_mask=chart,
        part_label=part,
        torso_xy=torso_xy,
        head_xy=head_xy,
        limb_s=limb_s,
        arm_mask=np.isin(part, arm_parts),
        leg_mask=np.isin(part, leg_parts),
        feet_mask=np.isin(part, FEET),
        torso_front=part == TORSO_FRONT,
        gather_x=gather_x,
        gather_y=gather_y,
        face=face,
        hair=hair,
        hair_strands=hair_strands,
        torso_box=torso_box,
    )


# ----------------------------------------------------------------------------------------------
# Colours, look-up tables and noise


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    rgb = cv2.cvtColor(np.array([[[(h % 1.0) * 360.0, np.clip(s, 0, 1), np.clip(v, 0, 1)]]], np.float32),
                       cv2.COLOR_HSV2RGB)
    return rgb[0, 0]


def _skin_tone(rng) -> np.ndarray:
    # From deep brown to pale: one darkness parameter, warm hue, less saturation when lighter.
    d = rng.uniform(0.0, 1.0)
    return _hsv(rng.uniform(0.03, 0.08), 0.25 + 0.35 * d + rng.uniform(-0.05, 0.05), 0.95 - 0.6 * d)


def _hair_colour(rng) -> np.ndarray:
    kind = rng.choice(6, p=[0.35, 0.3, 0.15, 0.07, 0.08, 0.05])
    if kind == 0:  # black
        return _hsv(rng.uniform(0.0, 0.1), 0.3, rng.uniform(0.05, 0.15))
    if kind == 1:  # brown
        return _hsv(rng.uniform(0.05, 0.09), rng.uniform(0.4, 0.7), rng.uniform(0.2, 0.45))
    if kind == 2:  # blond
        return _hsv(rng.uniform(0.1, 0.14), rng.uniform(0.3, 0.6), rng.uniform(0.6, 0.9))
    if kind == 3:  # red
        return _hsv(rng.uniform(0.02, 0.05), rng.uniform(0.6, 0.85), rng.uniform(0.4, 0.7))
    if kind == 4:  # grey
        return _hsv(0.0, 0.0, rng.uniform(0.5, 0.85))
    return _hsv(rng.uniform(0, 1), rng.uniform(0.5, 0.9), rng.uniform(0.4, 0.9))  # dyed


def _cloth_colour(rng) -> np.ndarray:
    kind = rng.choice(5, p=[0.25, 0.2, 0.25, 0.2, 0.1])
    if kind == 0:  # neutral: white, grey, black
        return _hsv(rng.uniform(0, 1), rng.uniform(0, 0.1), rng.uniform(0.1, 0.95))
    if kind == 1:  # dark
        return _hsv(rng.uniform(0, 1), rng.uniform(0.2, 0.7), rng.uniform(0.08, 0.3))
    if kind == 2:  # muted
        return _hsv(rng.uniform(0, 1), rng.uniform(0.2, 0.5), rng.uniform(0.3, 0.75))
    if kind == 3:  # vivid
        return _hsv(rng.uniform(0, 1), rng.uniform(0.6, 1.0), rng.uniform(0.5, 1.0))
    return _hsv(rng.uniform(0, 1), rng.uniform(0.15, 0.35), rng.uniform(0.8, 1.0))  # pastel


def _palette(rng, n: int) -> list[np.ndarray]:
    """n cloth colours different enough that the pattern stays visible."""
    colours = [_cloth_colour(rng)]
    for _ in range(50):
        if len(colours) == n:
            break
        c = _cloth_colour(rng)
        if min(np.abs(c - o).sum() for o in colours) > 0.3:
            colours.append(c)
    while len(colours) < n:
        colours.append(1.0 - colours[0])
    return colours


def _u8(colour) -> np.ndarray:
    return np.clip(np.asarray(colour) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _ramp_lut(*stops) -> np.ndarray:
    """256×1×3 uint8 colour look-up table through equally spaced colour stops."""
    stops = np.asarray(stops, np.float32)
    t = np.linspace(0.0, len(stops) - 1, 256, dtype=np.float32)
    i = np.minimum(t.astype(np.int32), len(stops) - 2)
    f = (t - i)[:, None]
    return _u8(stops[i] * (1 - f) + stops[i + 1] * f).reshape(256, 1, 3)


def _apply_lut(index_u8: np.ndarray, lut: np.ndarray) -> np.ndarray:
    return cv2.LUT(cv2.merge([index_u8, index_u8, index_u8]), lut)


def _to_index(field: np.ndarray, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """A float field on [lo, hi] as a uint8 look-up index."""
    return cv2.convertScaleAbs(field, alpha=255.0 / (hi - lo), beta=-lo * 255.0 / (hi - lo))


def low_freq_noise(rng, size: int, cells: int) -> np.ndarray:
    """Smooth noise in about [-1, 1]: a coarse random grid upsampled bicubically."""
    coarse = rng.uniform(-1.0, 1.0, (cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


# ----------------------------------------------------------------------------------------------
# Cloth patterns: each returns uint8 size×size×3 over the whole square; the caller masks it.
# Periods are in texels of a 256² texture, so a pattern keeps its look at any size.


def _repeat(tile: np.ndarray, size: int, angle: float, rng) -> np.ndarray:
    """Repeat a periodic tile over the square, turned by `angle` degrees, at a random phase."""
    th, tw = tile.shape[:2]
    span = int(np.ceil(size * (1.5 if angle % 90 else 1.0))) + max(th, tw)
    canvas = np.tile(tile, (span // th + 2, span // tw + 2, 1))
    oy, ox = int(rng.integers(0, th)), int(rng.integers(0, tw))
    if angle % 180 == 0:
        return np.ascontiguousarray(canvas[oy:oy + size, ox:ox + size])
    if angle % 180 == 90:
        return np.ascontiguousarray(np.rot90(canvas)[oy:oy + size, ox:ox + size])
    centre = (ox + span / 2.0, oy + span / 2.0)
    m = cv2.getRotationMatrix2D(centre, float(angle), 1.0)
    m[:, 2] += np.array([size / 2.0, size / 2.0]) - centre
    return cv2.warpAffine(canvas, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _period(rng, lo: float, hi: float, size: int) -> int:
    return max(2, int(round(rng.uniform(lo, hi) * size / 256.0)))


def _band(n: int, start: float, width: float) -> np.ndarray:
    """Anti-aliased 0..1 band profile over n texels: [start, start + width) as fractions of n."""
    x = (np.arange(n, dtype=np.float32) + 0.5) / n
    d = np.mod(x - start, 1.0)
    edge = 0.5 / n
    return np.clip(np.minimum(d + edge, width + edge - d) * n, 0.0, 1.0)


def _blend(base: np.ndarray, colour: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return base + (colour - base) * weight[..., None]


def _pattern_solid(rng, size):
    return np.broadcast_to(_u8(_cloth_colour(rng)), (size, size, 3)).copy()


def _pattern_stripes(rng, size):
    period = _period(rng, 4.0, 26.0, size)
    base, stripe, accent = _palette(rng, 3)
    row = np.broadcast_to(base, (period, 3)).astype(np.float32)
    row = _blend(row, stripe, _band(period, 0.0, rng.uniform(0.2, 0.6)))
    if rng.random() < 0.4:  # a thin accent stripe inside each period
        row = _blend(row, accent, _band(period, 0.75, 0.1))
    angle = [0.0, 90.0, 45.0, 135.0, rng.uniform(0, 180)][int(rng.integers(0, 5))]
    return _repeat(_u8(row)[:, None, :], size, angle, rng)


def _pattern_checks(rng, size):
    period = _period(rng, 5.0, 22.0, size)
    base, check = _palette(rng, 2)
    a = _band(period, 0.0, 0.5)
    weight = 0.5 * (a[:, None] + a[None, :]) if rng.random() < 0.5 else np.abs(a[:, None] - a[None, :])
    tile = _blend(np.broadcast_to(base, (period, period, 3)), check, weight)  # gingham or checkerboard
    return _repeat(_u8(tile), size, [0.0, 45.0][int(rng.integers(0, 2))], rng)


def _pattern_plaid(rng, size):
    period = _period(rng, 16.0, 44.0, size)
    base, c1, c2 = _palette(rng, 3)
    tile = np.broadcast_to(base, (period, period, 3)).astype(np.float32)
    for colour, start, width, strength in ((c1, 0.0, 0.35, 0.55), (c2, 0.5, 0.08, 0.85), (c1, 0.62, 0.05, 0.7)):
        band = _band(period, start, width)
        for weight in (band[:, None] * np.ones(period), np.ones(period)[:, None] * band[None, :]):
            tile = _blend(tile, colour, strength * weight)
    return _repeat(_u8(tile), size, [0.0, 0.0, 45.0][int(rng.integers(0, 3))], rng)


def _pattern_dots(rng, size):
    period = _period(rng, 6.0, 18.0, size)
    base, dot = _palette(rng, 2)
    radius = period * rng.uniform(0.15, 0.35)
    stagger = rng.random() < 0.5
    n = 2 * period if stagger else period
    yy, xx = np.mgrid[0:n, 0:period].astype(np.float32) + 0.5
    centres = [(period / 2, period / 2)] + ([(0.0, 1.5 * period), (period, 1.5 * period)] if stagger else [])
    weight = np.zeros((n, period), np.float32)
    for cx, cy in centres + [(cx, cy - n) for cx, cy in centres] + [(cx, cy + n) for cx, cy in centres]:
        d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        weight = np.maximum(weight, np.clip(radius - d + 0.5, 0.0, 1.0))
    tile = _blend(np.broadcast_to(base, (n, period, 3)), dot, weight)
    return _repeat(_u8(tile), size, [0.0, 0.0, 30.0][int(rng.integers(0, 3))], rng)


def _pattern_print(rng, size):
    """A small motif (flower, star, diamond, ring, leaf) on a lattice, sometimes as a half-drop repeat."""
    p = _period(rng, 10.0, 30.0, size)
    base, c1, c2 = (_u8(c).tolist() for c in _palette(rng, 3))
    half_drop = rng.random() < 0.5
    tile = np.empty((p, 2 * p if half_drop else p, 3), np.uint8)
    tile[:] = base
    r = p * rng.uniform(0.2, 0.38)
    motif = int(rng.integers(0, 5))
    leaf_angle = float(rng.uniform(0, 180))
    for cx, cy in [(p / 2, p / 2)] + ([(1.5 * p, 0.0), (1.5 * p, p)] if half_drop else []):
        shift = 4  # sub-texel precision for cv2 drawing
        ctr = (int(cx * 16), int(cy * 16))
        if motif == 0:  # flower
            for k in range(5):
                a = 2 * np.pi * k / 5
                cv2.circle(tile, (int((cx + 0.6 * r * np.cos(a)) * 16), int((cy + 0.6 * r * np.sin(a)) * 16)),
                           int(0.45 * r * 16), c1, -1, cv2.LINE_AA, shift)
            cv2.circle(tile, ctr, int(0.3 * r * 16), c2, -1, cv2.LINE_AA, shift)
        elif motif == 1:  # star
            k = np.arange(10)
            rad = np.where(k % 2 == 0, r, 0.45 * r)
            pts = np.stack([cx + rad * np.cos(np.pi * k / 5 - np.pi / 2), cy + rad * np.sin(np.pi * k / 5 - np.pi / 2)], 1)
            cv2.fillPoly(tile, [np.round(pts * 16).astype(np.int32)], c1, cv2.LINE_AA, shift)
        elif motif == 2:  # diamond with a dot
            pts = np.array([(cx, cy - r), (cx + 0.7 * r, cy), (cx, cy + r), (cx - 0.7 * r, cy)])
            cv2.fillPoly(tile, [np.round(pts * 16).astype(np.int32)], c1, cv2.LINE_AA, shift)
            cv2.circle(tile, ctr, int(0.25 * r * 16), c2, -1, cv2.LINE_AA, shift)
        elif motif == 3:  # ring
            cv2.circle(tile, ctr, int(r * 16), c1, max(1, int(0.3 * r)), cv2.LINE_AA, shift)
        else:  # leaf
            cv2.ellipse(tile, ctr, (int(r * 16), int(0.4 * r * 16)), leaf_angle, 0, 360, c1, -1, cv2.LINE_AA, shift)
    return _repeat(tile, size, 0.0, rng)


@lru_cache(maxsize=4)
def _white_noise(size: int) -> np.ndarray:
    """A fixed 2size×2size field of unit Gaussian noise; textures take random windows of it, which is
    much cheaper than drawing size² fresh normals for every texture."""
    return np.random.default_rng(12345).standard_normal((2 * size, 2 * size), dtype=np.float32)


def _gaussian_window(rng, size: int, rows: int) -> np.ndarray:
    noise = _white_noise(size)
    oy, ox = rng.integers(0, size, 2)
    return noise[oy:oy + rows, ox:ox + size]


def _noise_field(rng, size: int, twill_deg: float | None, streaks: float, speckle: float) -> np.ndarray:
    """Fabric grain in about [-1, 1]: diagonal twill ribs, vertical thread streaks and speckle."""
    field = speckle * _gaussian_window(rng, size, size)
    if streaks:
        field += streaks * _gaussian_window(rng, size, 1)
    if twill_deg is not None:
        period = max(2, int(round(3 * size / 256)))
        rib = np.sin(np.arange(period, dtype=np.float32) * (2 * np.pi / period))[:, None, None]
        field += 0.6 * _repeat(rib, size, twill_deg, rng)[..., 0]
    return field


def _pattern_denim(rng, size):
    """Blue (or black) denim: twill, thread streaks and faded patches."""
    dark = rng.random() < 0.2
    base = _hsv(0.6, 0.1, rng.uniform(0.1, 0.25)) if dark else _hsv(
        rng.uniform(0.57, 0.63), rng.uniform(0.35, 0.7), rng.uniform(0.25, 0.6))
    grain = _apply_lut(_to_index(_noise_field(rng, size, 63.0, 0.35, 0.35)), _ramp_lut(base * 0.8, base * 1.2))
    faded = np.minimum(base * 1.7 + 0.1, 1.0)
    fade = np.clip(low_freq_noise(rng, size, 6), 0.0, 1.0) * 0.45
    return _mix_u8(grain, _u8(faded), fade)


def _mix_u8(image: np.ndarray, colour: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """image + (colour - image) · weight, uint8 in and out."""
    w3 = cv2.merge([weight, weight, weight])
    flat = np.broadcast_to(colour.astype(np.float32), image.shape)
    return cv2.convertScaleAbs(image * (1.0 - w3) + flat * w3)


def _pattern_knit(rng, size):
    """Heather / knit: a base colour with fine per-texel noise and a faint rib."""
    c = _cloth_colour(rng)
    field = _noise_field(rng, size, float(rng.choice([0.0, 90.0])), 0.0, 0.4)
    return _apply_lut(_to_index(field), _ramp_lut(c * 0.85, c * 1.15))


def _pattern_camo(rng, size):
    colours = _palette(rng, 3)
    blobs = (low_freq_noise(rng, size, int(rng.integers(8, 16))), low_freq_noise(rng, size, int(rng.integers(8, 16))))
    # One index: 0..127 from the first blob field (colour 0 -> 1), 128..255 where the second field wins (colour 2).
    index = _to_index(np.clip((blobs[0] - 0.2) * 8.0, 0.0, 1.0), 0.0, 2.0)
    index[blobs[1] > 0.3] = 255
    lut = np.concatenate([_ramp_lut(colours[0], colours[1])[::2], np.broadcast_to(_u8(colours[2]), (128, 1, 3))])
    return _apply_lut(index, np.ascontiguousarray(lut))


PATTERNS = {
    "solid": _pattern_solid,
    "stripes": _pattern_stripes,
    "checks": _pattern_checks,
    "plaid": _pattern_plaid,
    "dots": _pattern_dots,
    "print": _pattern_print,
    "denim": _pattern_denim,
    "knit": _pattern_knit,
    "camo": _pattern_camo,
}
# Repeated patterns dominate on purpose: they are what sampling can copy into unseen parts.
_TOP_WEIGHTS = {"solid": 0.1, "stripes": 0.22, "checks": 0.13, "plaid": 0.12, "dots": 0.12, "print": 0.16,
                "denim": 0.03, "knit": 0.07, "camo": 0.05}
_BOTTOM_WEIGHTS = {"solid": 0.14, "stripes": 0.1, "checks": 0.1, "plaid": 0.1, "dots": 0.06, "print": 0.08,
                   "denim": 0.3, "knit": 0.06, "camo": 0.06}


def _choose(rng, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


# ----------------------------------------------------------------------------------------------
# The outfit


@dataclass(frozen=True)
class Outfit:
    """What one seed dresses the body in (kept for tests and for looking at the data)."""

    top_pattern: str
    bottom_pattern: str
    sleeve_end: float  # limb_s where sleeves end: 0 sleeveless ... 1 long sleeves
    leg_end: float  # limb_s where trousers / shorts / skirt end
    dress: bool
    hem: float  # torso y where the top ends (tucked in: at the waist)
    waist: float  # torso y where the bottom garment starts
    neckline: str
    shoes: str
    hair: str
    logo: bool


def sample_outfit(rng) -> Outfit:
    sleeve = int(rng.choice(5, p=[0.12, 0.33, 0.1, 0.1, 0.35]))
    sleeve_end = [0.0, rng.uniform(0.15, 0.35), rng.uniform(0.45, 0.55), rng.uniform(0.65, 0.8),
                  rng.uniform(0.95, 1.01)][sleeve]
    bottom = int(rng.choice(5, p=[0.45, 0.1, 0.2, 0.1, 0.15]))  # trousers, capri, shorts, short / knee skirt
    leg_end = [rng.uniform(0.95, 1.01), rng.uniform(0.7, 0.82), rng.uniform(0.15, 0.35), rng.uniform(0.2, 0.35),
               rng.uniform(0.45, 0.6)][bottom]
    dress = bool(bottom >= 3 and rng.random() < 0.4)
    top_pattern = _choose(rng, _TOP_WEIGHTS)
    bottom_pattern = top_pattern if dress else _choose(rng, _BOTTOM_WEIGHTS)
    waist = float(rng.uniform(0.8, 0.9))
    hem = waist if dress or rng.random() < 0.8 else float(rng.uniform(0.62, waist))
    return Outfit(
        top_pattern=top_pattern,
        bottom_pattern=bottom_pattern,
        sleeve_end=float(sleeve_end),
        leg_end=float(leg_end),
        dress=dress,
        hem=hem,
        waist=waist,
        neckline=("crew", "vee", "scoop", "high")[int(rng.choice(4, p=[0.45, 0.2, 0.25, 0.1]))],
        shoes=("shoes", "boots", "sneakers", "barefoot")[int(rng.choice(4, p=[0.45, 0.15, 0.35, 0.05]))],
        hair=("short", "medium", "long", "bald")[int(rng.choice(4, p=[0.4, 0.25, 0.3, 0.05]))],
        logo=bool(rng.random() < 0.35),
    )


def _neckline(geo: BodyGeometry, outfit: Outfit, rng) -> np.ndarray:
    """The skin left bare by the neckline, at the top centre of the torso chart (the chest front)."""
    tx, ty = geo.torso_xy[..., 0], geo.torso_xy[..., 1]
    dx = np.abs(tx - 0.5)
    if outfit.neckline == "high":
        return np.zeros_like(geo.chart_mask)
    if outfit.neckline == "crew":
        bare = (dx / 0.09) ** 2 + (ty / 0.07) ** 2 < 1.0
    elif outfit.neckline == "scoop":
        bare = (dx / 0.13) ** 2 + (ty / rng.uniform(0.12, 0.2)) ** 2 < 1.0
    else:  # vee
        depth = rng.uniform(0.12, 0.25)
        bare = (ty < depth) & (dx < 0.09 * (1.0 - ty / depth))
    return bare & (ty >= 0)


def _paint_logo(tex: np.ndarray, top: np.ndarray, geo: BodyGeometry, rng) -> None:
    """A front-only print on the chest: letters, a badge or a band. Not mirrored, not repeated."""
    x0, y0, x1, y1 = geo.torso_box
    w, h = x1 - x0, y1 - y0
    canvas = np.zeros(tex.shape[:2], np.float32)
    cx = int(x0 + w * rng.uniform(0.45, 0.55))
    cy = int(y0 + h * rng.uniform(0.22, 0.4))
    kind = int(rng.integers(0, 3))
    if kind == 0:
        letters = "".join(rng.choice(list("ABCDEFGHKLMNOPRSTUVXYZ0123456789"), int(rng.integers(2, 6))))
        scale = w / 256.0 * rng.uniform(0.4, 0.9)
        thick = max(1, int(round(2 * scale)))
        (tw, th), _ = cv2.getTextSize(letters, cv2.FONT_HERSHEY_DUPLEX, scale, thick)
        cv2.putText(canvas, letters, (cx - tw // 2, cy + th // 2), cv2.FONT_HERSHEY_DUPLEX, scale, 1.0, thick,
                    cv2.LINE_AA)
    elif kind == 1:
        r = max(1, int(w * rng.uniform(0.04, 0.09)))
        cv2.circle(canvas, (cx, cy), r, 1.0, -1, cv2.LINE_AA)
        cv2.circle(canvas, (cx, cy), max(r // 2, 1), 0.0, -1, cv2.LINE_AA)
    else:
        band = max(1, int(h * rng.uniform(0.03, 0.08)))
        cv2.rectangle(canvas, (int(x0 + 0.3 * w), cy - band), (int(x0 + 0.7 * w), cy + band), 1.0, -1)
    canvas *= top & geo.torso_front
    tex[:] = _mix_u8(tex, _u8(_cloth_colour(rng)), canvas)


def make_texture(seed: int, size: int = 256) -> np.ndarray:
    """A complete SMPL-UV texture, float32 H×W×3 in [0,1], zero outside the UV charts. Same seed, same texture."""
    texture, _ = make_texture_with_outfit(seed, size)
    return texture


def make_texture_with_outfit(seed: int, size: int = 256) -> tuple[np.ndarray, Outfit]:
    geo = body_geometry(size)
    rng = np.random.default_rng(seed)
    outfit = sample_outfit(rng)
    skin = _skin_tone(rng)
    hair_colour = _hair_colour(rng)

    tex = np.empty((size, size, 3), np.uint8)
    tex[:] = _u8(skin)

    # Head: face features, then hair.
    eye = _hsv(rng.uniform(0.05, 0.6), rng.uniform(0.2, 0.6), rng.uniform(0.1, 0.35))
    lips = _hsv(rng.uniform(-0.03, 0.0), rng.uniform(0.3, 0.55), rng.uniform(0.45, 0.75))
    for name, colour in (("nose", skin * 0.85), ("brows", hair_colour * 0.8), ("eyes", eye), ("lips", lips)):
        tex[geo.face[name]] = _u8(colour)
    if outfit.hair != "bald":
        hair = geo.hair[outfit.hair]
        strands = _apply_lut(geo.hair_strands, _ramp_lut(hair_colour * 0.85, hair_colour * 1.15, hair_colour * 0.85))
        cv2.copyTo(strands, hair.view(np.uint8), tex)

    # Garments: bottom first, the top over it (a shirt worn over the waistband).
    tx, ty = geo.torso_xy[..., 0], geo.torso_xy[..., 1]
    torso = tx >= 0
    s = geo.limb_s
    bottom = (torso & (ty >= outfit.waist)) | (geo.leg_mask & (s <= outfit.leg_end))
    top = (torso & ((ty < outfit.hem) | outfit.dress)) | (geo.arm_mask & (s < outfit.sleeve_end))
    top &= ~_neckline(geo, outfit, rng)
    bottom_tex = PATTERNS[outfit.bottom_pattern](rng, size)
    cv2.copyTo(bottom_tex, bottom.view(np.uint8), tex)
    top_tex = bottom_tex if outfit.dress else PATTERNS[outfit.top_pattern](rng, size)
    cv2.copyTo(top_tex, top.view(np.uint8), tex)
    if not outfit.dress and rng.random() < 0.5:  # a belt or waistband
        tex[torso & (np.abs(ty - outfit.waist) < 0.02)] = _u8(_cloth_colour(rng) * 0.6)

    if outfit.shoes != "barefoot":
        covered = geo.feet_mask | (geo.leg_mask & (s > 0.85)) if outfit.shoes == "boots" else geo.feet_mask
        shoe = _cloth_colour(rng) * (0.5 if outfit.shoes == "boots" else 1.0)
        if outfit.shoes == "sneakers":  # a contrasting stripe
            period = _period(rng, 8.0, 16.0, size)
            row = _blend(np.broadcast_to(shoe, (period, 3)), _cloth_colour(rng), _band(period, 0.0, 0.25))
            shoe_tex = _repeat(_u8(row)[:, None, :], size, 30.0, rng)
        else:
            shoe_tex = _apply_lut(_to_index(_noise_field(rng, size, None, 0.0, 0.5)), _ramp_lut(shoe * 0.9, shoe * 1.1))
        cv2.copyTo(shoe_tex, covered.view(np.uint8), tex)

    # Folds and baked light that belong to the body (the same on both sides) ...
    shade = 1.0 + 0.12 * low_freq_noise(rng, size, 10)
    # ... then the left side repeats the right side, texel for texel ...
    tex = cv2.remap(tex, geo.gather_x, geo.gather_y, cv2.INTER_NEAREST)
    shade = cv2.remap(shade, geo.gather_x, geo.gather_y, cv2.INTER_NEAREST)
    # ... and what is not symmetric: a print on the chest front, the light of one photo.
    if outfit.logo:
        _paint_logo(tex, top, geo, rng)
    shade *= 1.0 + 0.06 * low_freq_noise(rng, size, 3)
    shade *= geo.chart_mask * np.float32(1.0 / 255.0)
    out = cv2.multiply(tex.astype(np.float32), cv2.merge([shade, shade, shade]))
    np.clip(out, 0.0, 1.0, out=out)
    return out, outfit
