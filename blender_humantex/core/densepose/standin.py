"""A STAND-IN for the DensePose TorchScript export, built from a real DensePose IUV (+ INDS) image.

The real export (store.DENSEPOSE) cannot be downloaded here or in CI, so tests and benchmarks use
this stand-in. It is NOT DensePose: it does not look at the photo. It has exactly the export's
interface (one CHW uint8 RGB input, the photo resized and padded as extract.preprocess does; returns
boxes [N,4] XYXY in the input's pixels, coarse [N,2,112,112], fine [N,25,112,112], u, v
[N,25,112,112], best box first; it calls torchvision::nms, so like the real file it loads only
after `import torchvision`), and its tensors encode the given real IUV so that the real extractor
(extract.extract) gives that IUV back, up to what a 112² grid per box can hold.

Encoding, per person (tight box around its pixels): over the box's 112² cells, fine = the area
fraction of each part (channel 0: not this person), coarse = (background, body) fractions, u and v =
each part's mean U, V over its pixels in the cell, extended to the cells without that part by the
nearest cell that has it (so resampling near a part's edge reads no zeros).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch

from .extract import N_PARTS, input_frame

GRID = 112


def area_weights(start: float, end: float, n_pixels: int, n_cells: int) -> tuple[int, np.ndarray]:
    """n_cells equal cells over [start, end) × pixels [first, first + count): each cell's share of each pixel."""
    first, stop = max(math.floor(start), 0), min(math.ceil(end), n_pixels)
    edges = start + (end - start) * np.arange(n_cells + 1) / n_cells
    lo = np.maximum(edges[:-1, None], np.arange(first, stop)[None, :])
    hi = np.minimum(edges[1:, None], np.arange(first, stop)[None, :] + 1)
    weights = np.clip(hi - lo, 0.0, None) / ((end - start) / n_cells)
    return first, weights.astype(np.float32)  # n_cells × count


def _nearest_fill(values: np.ndarray, has: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    if has.all() or not has.any():
        return values
    index = ndimage.distance_transform_edt(~has, return_distances=False, return_indices=True)
    return values[index[0], index[1]]


def encode_person(iuv: np.ndarray, person: np.ndarray, grid: int = GRID):
    """One person's pixels (bool H×W) of an I,U,V uint8 image -> (box XYXY in photo px, coarse, fine, u, v)."""
    rows, cols = np.nonzero(person)
    box = (float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))
    x0, mx = area_weights(box[0], box[2], iuv.shape[1], grid)
    y0, my = area_weights(box[1], box[3], iuv.shape[0], grid)
    crop = (slice(y0, y0 + my.shape[1]), slice(x0, x0 + mx.shape[1]))
    labels = np.where(person[crop], iuv[crop][..., 0], 0)
    uv = iuv[crop][..., 1:].astype(np.float32) / 255.0

    def pool(image):  # h×w -> grid×grid area average over each cell
        return my @ image.astype(np.float32) @ mx.T

    fine = np.zeros((N_PARTS + 1, grid, grid), dtype=np.float32)
    u = np.zeros_like(fine)
    v = np.zeros_like(fine)
    for part in range(N_PARTS + 1):
        on = labels == part
        if not on.any():
            continue
        fine[part] = pool(on)
        if part:
            has = fine[part] > 1e-6
            share = np.maximum(fine[part], 1e-6)
            u[part] = _nearest_fill(np.where(has, pool(uv[..., 0] * on) / share, 0.0), has)
            v[part] = _nearest_fill(np.where(has, pool(uv[..., 1] * on) / share, 0.0), has)
    coarse = np.stack([fine[0], 1.0 - fine[0]])
    return box, coarse, fine, u, v


def persons_of(iuv: np.ndarray, inds: np.ndarray | None) -> list[np.ndarray]:
    """Each person's pixel mask, largest first (INDS ids; without INDS every body pixel is one person)."""
    body = iuv[..., 0] > 0
    if inds is None:
        return [body] if body.any() else []
    ids, counts = np.unique(inds[body], return_counts=True)
    order = sorted((int(c), -int(k)) for k, c in zip(ids, counts, strict=True) if k)
    return [body & (inds == -k) for _, k in reversed(order)]


class DensePoseStandIn(torch.nn.Module):
    """STAND-IN with DensePose's TorchScript interface: fixed answers, boxes scaled to the input's size."""

    def __init__(self, boxes, coarse, fine, u, v, input_size: tuple[int, int]):
        super().__init__()
        self.register_buffer("boxes", torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4))
        n = self.boxes.shape[0]
        self.register_buffer("scores", torch.linspace(1.0, 0.5, n) if n > 1 else torch.ones(n))
        for name, value in (("coarse", coarse), ("fine", fine), ("u", u), ("v", v)):
            self.register_buffer(name, torch.as_tensor(np.asarray(value, dtype=np.float32)))
        self.input_width, self.input_height = int(input_size[0]), int(input_size[1])

    def forward(self, image: torch.Tensor):
        if image.dim() != 3 or image.size(0) != 3 or image.dtype != torch.uint8:
            raise ValueError("the DensePose stand-in takes one CHW uint8 RGB image")
        sx = float(image.size(2)) / float(self.input_width)
        sy = float(image.size(1)) / float(self.input_height)
        boxes = self.boxes * torch.tensor([sx, sy, sx, sy], device=self.boxes.device)
        keep = torch.ops.torchvision.nms(boxes, self.scores, 0.999)  # best first, as the export returns them
        return boxes[keep], self.coarse[keep], self.fine[keep], self.u[keep], self.v[keep]


def encode(iuv: np.ndarray, inds: np.ndarray | None, order: list[int] | None = None):
    """The outputs the export would give for the photo of this IUV (I,U,V order, uint8), as numpy:
    (boxes in the input's pixels, coarse, fine, u, v), and the input's Frame.

    `order`: the persons (0 = largest) in the order they are returned, best first (default: largest first).
    """
    frame = input_frame(iuv.shape[1], iuv.shape[0])
    persons = persons_of(iuv, inds)
    order = list(range(len(persons))) if order is None else list(order)
    encoded = [encode_person(iuv, persons[k]) for k in order]
    boxes = frame.boxes_to_input(np.array([e[0] for e in encoded]).reshape(-1, 4)).astype(np.float32)
    channels = (2, N_PARTS + 1, N_PARTS + 1, N_PARTS + 1)  # coarse, fine, u, v
    stacks = [np.stack([e[i + 1] for e in encoded]) if encoded else np.zeros((0, c, GRID, GRID), np.float32)
              for i, c in enumerate(channels)]
    return (boxes, *stacks), frame


def build_standin(iuv: np.ndarray, inds: np.ndarray | None, path, order: list[int] | None = None) -> Path:
    """Save a scripted stand-in whose output, through extract(), reproduces this IUV (I,U,V order, uint8).

    The photo it stands in for has the IUV's size (see `encode` for `order`). Needs torchvision (nms).
    """
    from .model import import_torchvision

    import_torchvision()  # the stand-in calls torchvision::nms, as the real export does
    outputs, frame = encode(iuv, inds, order)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is "deprecated"; the export is TorchScript
        model = torch.jit.script(DensePoseStandIn(*outputs, input_size=frame.padded))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(path))
    return path


def build_standin_from_files(iuv_path, inds_path, path, iuv_order: str = "auto", order=None) -> Path:
    """build_standin on DensePose's files (IUV as read by core.sources.iuv.iuv_channels)."""
    from ..imageio import read_raw_u8
    from ..sources.iuv import iuv_channels

    iuv, _ = iuv_channels(read_raw_u8(iuv_path), iuv_order)
    inds = None if inds_path is None else read_raw_u8(inds_path)
    return build_standin(iuv, inds, path, order=order)
