"""DensePose R-CNN's raw outputs -> a full-frame IUV image and instance map at the photo's own resolution.

The TorchScript export (see store.DENSEPOSE) is called as its users call it: one CHW uint8 RGB
tensor, the photo resized so its short side is INPUT_SHORT_SIDE and padded right/bottom to a
multiple of INPUT_MULTIPLE (`preprocess`). It returns, best box first,
    boxes [N, 4] XYXY in the input's pixels, coarse [N, 2, S, S], fine [N, 25, S, S], u, v [N, 25, S, S]
(S = 112). Per box, as detectron2's DensePose does (`resample_fine_and_coarse_segm_tensors_to_bbox`,
`resample_uv_tensors_to_bbox`): the maps are resized bilinearly (align_corners=False) onto the box,
I = argmax(fine) where argmax(coarse) > 0, else 0, and U, V are channel I of the resized u, v,
clamped to [0, 1] (raw U can be negative). Here the boxes are first mapped back through the
resize to the photo's pixels, and the maps are resampled straight into that box at the photo's
resolution (sub-pixel box edges kept; no second resize of a low-resolution IUV).

Overlaps: the boxes are pasted best first and a later box only takes the pixels no earlier box
claimed as body, so the more confident person wins where two overlap.

Files (`write_files`): IUV.png and INDS.png exactly as DensePose writes them and `humantex unwrap`
reads them: IUV stored B = I, G = U·255, R = V·255 (OpenCV's order; "vui" as read in RGB), INDS a grey
image with 0 = background and k = the k-th box in the model's order (1 = the best). Person
selection then works as for any DensePose output (`unwrap --person K`; by default the largest).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError

INPUT_SHORT_SIDE = 512
INPUT_MULTIPLE = 64
# A photo so elongated that its long side would exceed this in the model input is refused: no
# person photo is, and the input would be gigabytes.
MAX_INPUT_SIDE = 8 * INPUT_SHORT_SIDE
N_PARTS = 24
MAX_PERSONS = 255  # INDS is 8-bit
IUV_FILE, INDS_FILE = "IUV.png", "INDS.png"
# Resampling a box's 25-channel maps goes in row bands of about this many values (bounded memory
# at any photo size).
BAND_VALUES = 1 << 23


@dataclass(frozen=True)
class Frame:
    """How the photo sits in the model's input: resized (to `resized`) at the top left, then padded."""

    photo: tuple[int, int]  # (width, height) of the photo
    resized: tuple[int, int]  # (width, height) of the photo inside the input
    padded: tuple[int, int]  # (width, height) of the input

    def boxes_to_photo(self, boxes: np.ndarray) -> np.ndarray:
        """N×4 XYXY in the input's pixels -> the photo's pixels (continuous: pixel k spans [k, k+1])."""
        sx, sy = self.photo[0] / self.resized[0], self.photo[1] / self.resized[1]
        return np.asarray(boxes, dtype=np.float64) * np.array([sx, sy, sx, sy])

    def boxes_to_input(self, boxes: np.ndarray) -> np.ndarray:
        sx, sy = self.resized[0] / self.photo[0], self.resized[1] / self.photo[1]
        return np.asarray(boxes, dtype=np.float64) * np.array([sx, sy, sx, sy])


def input_frame(width: int, height: int) -> Frame:
    """The short side to INPUT_SHORT_SIDE (each side rounded up), padded to a multiple of INPUT_MULTIPLE."""
    if width < 1 or height < 1:
        raise InputError(f"photo is {width}×{height}: nothing to look at", kind="bad_photo")
    k = INPUT_SHORT_SIDE / min(width, height)
    resized = (math.ceil(width * k - 1e-9), math.ceil(height * k - 1e-9))
    if max(resized) > MAX_INPUT_SIDE:
        raise InputError(f"photo is {width}×{height}: too elongated for DensePose (at most"
                         f" {MAX_INPUT_SIDE // INPUT_SHORT_SIDE}:1)", kind="bad_photo")
    padded = tuple(-(-side // INPUT_MULTIPLE) * INPUT_MULTIPLE for side in resized)
    return Frame(photo=(width, height), resized=resized, padded=padded)


def preprocess(photo: np.ndarray) -> tuple[np.ndarray, Frame]:
    """A photo (uint8 H×W×3 RGB) -> the model's input (uint8 3×h×w, zero padded) and its Frame."""
    import cv2

    photo = np.asarray(photo)
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise InputError(f"DensePose needs an 8-bit RGB photo, got {photo.dtype} {photo.shape}", kind="bad_photo")
    frame = input_frame(photo.shape[1], photo.shape[0])
    # bicubic up, area down: what the export's callers (imaginAIry, controlnet_aux) use
    upscaling = frame.resized[0] > frame.photo[0]
    resized = cv2.resize(photo, frame.resized, interpolation=cv2.INTER_CUBIC if upscaling else cv2.INTER_AREA)
    chw = np.zeros((3, frame.padded[1], frame.padded[0]), dtype=np.uint8)
    chw[:, : frame.resized[1], : frame.resized[0]] = resized.transpose(2, 0, 1)
    return chw, frame


@dataclass
class DensePoseResult:
    """A photo's DensePose output at the photo's resolution."""

    iuv: np.ndarray  # uint8 H×W×3 in I, U·255, V·255 order (core.sources.iuv's array order)
    inds: np.ndarray  # uint8 H×W: 0 = background, k = the k-th box of the model (1 = best)
    persons: list = field(default_factory=list)  # per box: {"index", "box" (photo px XYXY), "pixels"}

    @property
    def persons_found(self) -> int:
        return sum(1 for p in self.persons if p["pixels"] > 0)


def check_outputs(outputs) -> tuple[np.ndarray, ...]:
    """The model's 5-tuple as float32 arrays, or InputError(kind bad_model) saying what is wrong."""
    if not isinstance(outputs, (tuple, list)) or len(outputs) != 5:
        raise InputError("the DensePose model must return (boxes, coarse_segm, fine_segm, u, v);"
                         f" it returned {type(outputs).__name__}", kind="bad_model")
    arrays = tuple(_as_array(x) for x in outputs)
    boxes, coarse, fine, u, v = arrays
    n = boxes.shape[0] if boxes.ndim == 2 else -1
    ok = (boxes.ndim == 2 and boxes.shape[1] == 4 and coarse.ndim == 4 and coarse.shape[:2] == (n, 2)
          and fine.shape[:2] == (n, N_PARTS + 1) and fine.ndim == 4 and u.shape == fine.shape == v.shape)
    if not ok:
        shapes = ", ".join(str(tuple(a.shape)) for a in arrays)
        raise InputError(f"the DensePose model returned shapes {shapes}; expected [N,4], [N,2,S,S], and"
                         f" [N,{N_PARTS + 1},S,S] for fine, u and v", kind="bad_model")
    if not all(np.isfinite(a).all() for a in arrays):
        raise InputError("the DensePose model returned NaN or infinite values", kind="bad_model")
    return arrays


def _as_array(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, on any device
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def extract(outputs, frame: Frame) -> DensePoseResult:
    """The model's outputs for the input described by `frame` -> IUV and INDS at the photo's size."""
    boxes, coarse, fine, u, v = check_outputs(outputs)
    width, height = frame.photo
    iuv = np.zeros((height, width, 3), dtype=np.uint8)
    inds = np.zeros((height, width), dtype=np.uint8)
    persons = []
    for k, box in enumerate(frame.boxes_to_photo(boxes)[:MAX_PERSONS]):
        pixels = 0
        patch = _box_patch(box, coarse[k], fine[k], u[k], v[k], (width, height))
        if patch is not None:
            rows, cols, part, uu, vv = patch
            free = (part > 0) & (iuv[rows, cols, 0] == 0)  # the better boxes keep what they claimed
            for channel, values in enumerate((part, _to_u8(uu), _to_u8(vv))):
                iuv[rows, cols, channel][free] = values[free]
            inds[rows, cols][free] = k + 1
            pixels = int(free.sum())
        persons.append({"index": k + 1, "box": [round(float(c), 2) for c in box], "pixels": pixels})
    return DensePoseResult(iuv=iuv, inds=inds, persons=persons)


def _to_u8(values: np.ndarray) -> np.ndarray:
    """U or V in [0, 1] (already clamped) -> 0..255, rounded (DensePose's own files truncate)."""
    return np.rint(values * 255.0).astype(np.uint8)


def axis_weights(start: float, end: float, n_pixels: int, n_src: int):
    """Bilinear resampling (align_corners=False) of n_src cells spanning [start, end) onto the pixels
    whose centres lie inside it, clipped to 0..n_pixels: (first pixel, i0, i1, weight of i1) or None."""
    if not end - start > 0:
        return None
    first, stop = max(math.ceil(start - 0.5), 0), min(math.ceil(end - 0.5), n_pixels)
    if stop <= first:
        return None
    centres = np.arange(first, stop, dtype=np.float64) + 0.5
    src = np.clip((centres - start) / (end - start) * n_src - 0.5, 0.0, n_src - 1)
    i0 = np.floor(src).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_src - 1)
    return first, i0, i1, (src - i0).astype(np.float32)


def _box_patch(box, coarse, fine, u, v, photo_size):
    """One box's part labels and U, V on the photo pixels it covers: (rows, cols, I, U, V) or None."""
    width, height = photo_size
    along_x = axis_weights(box[0], box[2], width, fine.shape[2])
    along_y = axis_weights(box[1], box[3], height, fine.shape[1])
    if along_x is None or along_y is None:
        return None
    x0, ix0, ix1, wx = along_x
    y0, iy0, iy1, wy = along_y
    h, w = len(iy0), len(ix0)
    part = np.zeros((h, w), dtype=np.uint8)
    uu = np.zeros((h, w), dtype=np.float32)
    vv = np.zeros((h, w), dtype=np.float32)
    band = max(1, BAND_VALUES // (fine.shape[0] * w))
    for r in range(0, h, band):
        rs = slice(r, min(r + band, h))
        ry = (iy0[rs], iy1[rs], wy[rs])
        body = np.argmax(_resample(coarse, ry, (ix0, ix1, wx)), axis=0) > 0
        labels = np.argmax(_resample(fine, ry, (ix0, ix1, wx)), axis=0) * body
        part[rs] = labels
        uu[rs] = _pick(u, labels, ry, (ix0, ix1, wx))
        vv[rs] = _pick(v, labels, ry, (ix0, ix1, wx))
    uu[part == 0] = 0.0
    vv[part == 0] = 0.0
    return slice(y0, y0 + h), slice(x0, x0 + w), part, uu, vv


def _resample(maps: np.ndarray, along_y, along_x) -> np.ndarray:
    """C×S×S maps -> C×h×w, bilinear (separable: rows, then columns)."""
    iy0, iy1, wy = along_y
    ix0, ix1, wx = along_x
    rows = maps[:, iy0, :] * (1.0 - wy)[None, :, None] + maps[:, iy1, :] * wy[None, :, None]  # C×h×S
    return rows[:, :, ix0] * (1.0 - wx) + rows[:, :, ix1] * wx  # C×h×w


def _pick(maps: np.ndarray, labels: np.ndarray, along_y, along_x) -> np.ndarray:
    """Channel labels[y, x] of the bilinearly resampled maps at each pixel, clamped to [0, 1]."""
    iy0, iy1, wy = along_y
    ix0, ix1, wx = along_x
    rows = maps[:, iy0, :] * (1.0 - wy)[None, :, None] + maps[:, iy1, :] * wy[None, :, None]  # C×h×S
    r = np.arange(labels.shape[0])[:, None]
    picked = rows[labels, r, ix0[None, :]] * (1.0 - wx) + rows[labels, r, ix1[None, :]] * wx  # h×w
    return np.clip(picked, 0.0, 1.0)


# ---------------------------------------------------------------- files


def stored_iuv(iuv: np.ndarray) -> np.ndarray:
    """I,U,V-ordered array -> the RGB array whose PNG holds B = I, G = U, R = V (DensePose's files)."""
    return np.ascontiguousarray(np.asarray(iuv)[..., ::-1])


def write_files(out_dir, result: DensePoseResult) -> dict[str, Path]:
    """IUV.png and INDS.png into out_dir (atomic writes), in DensePose's own convention."""
    from ..imageio import write_png

    out_dir = Path(out_dir)
    return {"iuv": write_png(out_dir / IUV_FILE, stored_iuv(result.iuv)),
            "inds": write_png(out_dir / INDS_FILE, np.ascontiguousarray(result.inds))}
