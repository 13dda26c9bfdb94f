"""DensePose in the worker: how long the extractor takes at the photo's resolution, and the whole step.

1. The extractor (core/densepose/extract.py: separable bilinear resampling of each box's 112² maps,
   in row bands) against the straightforward detectron2-style paste (torch F.interpolate of all 25
   channels onto the box, argmax, gather), interleaved, medians; on real DensePose outputs encoded
   as the export's tensors, at the photo's size and at 4× (a 3000×4400 photo).
2. The whole step, `densepose()`, with a STAND-IN TorchScript model (core/densepose/standin.py; the
   real export cannot be had here, so its network time is not measured): the first call (imports
   torchvision, loads and hashes the file) and warm calls (the model stays loaded).

    OMP_NUM_THREADS=1 python benchmarks/bench_densepose.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from blender_humantex.core.densepose import extract, model
from blender_humantex.core.densepose.standin import build_standin, encode

SHARED_DATA = Path(os.environ.get("HUMANTEX_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SAMPLES = SHARED_DATA / "densepose_samples"
CASES = {  # name: (IUV, INDS or None, photo)
    "pr99": ("densepose_pr99/IUV.png", "densepose_pr99/INDS.png", "densepose_pr99/im.jpg"),
    "demo": ("densepose_demo/demo_im_IUV.png", "densepose_demo/demo_im_INDS.png", "densepose_demo/demo_im.jpg"),
    "smplitex": ("smplitex_example/MEN-Jackets_Vests-id_00003336-09_1_front_densepose.png", None,
                 "smplitex_example/MEN-Jackets_Vests-id_00003336-09_1_front.jpg"),
}


def read_iuv(rel):
    return np.ascontiguousarray(np.asarray(Image.open(SAMPLES / rel).convert("RGB"))[..., ::-1])  # stored B=I,G=U,R=V


def reference_paste(outputs, frame):
    """detectron2's per-box resampling, at the photo's resolution, pasted best first."""
    import torch
    import torch.nn.functional as F

    boxes, coarse, fine, u, v = (torch.from_numpy(np.asarray(a)) for a in outputs)
    width, height = frame.photo
    iuv = torch.zeros((3, height, width), dtype=torch.uint8)
    for k, box in enumerate(frame.boxes_to_photo(boxes.numpy())):
        x0, y0 = int(box[0]), int(box[1])
        w, h = max(int(box[2] - box[0]), 1), max(int(box[3] - box[1]), 1)

        def up(t, h=h, w=w):
            return F.interpolate(t[None], (h, w), mode="bilinear", align_corners=False)[0]

        labels = up(fine[k]).argmax(0) * (up(coarse[k]).argmax(0) > 0)
        uu = up(u[k]).gather(0, labels[None])[0].clamp(0, 1)
        vv = up(v[k]).gather(0, labels[None])[0].clamp(0, 1)
        patch = torch.stack([labels.to(torch.uint8), (uu * 255).round().to(torch.uint8), (vv * 255).round().to(torch.uint8)])
        region = iuv[:, y0:y0 + h, x0:x0 + w]
        patch = patch[:, : region.shape[1], : region.shape[2]]
        free = (region[0] == 0) & (patch[0] > 0)
        region[:, free] = patch[:, free]
    return iuv


def interleaved(fns: dict, repeat: int) -> dict:
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1e3)
    return {name: statistics.median(ts) for name, ts in times.items()}


def bench_extractor(repeat: int) -> None:
    print("extractor, ms (median of interleaved runs): ours (separable, banded) vs detectron2-style paste")
    for name, (iuv_rel, inds_rel, _) in CASES.items():
        iuv = read_iuv(iuv_rel)
        inds = None if inds_rel is None else np.asarray(Image.open(SAMPLES / inds_rel))
        for scale in (1, 4):
            big = iuv if scale == 1 else cv2.resize(iuv, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
            big_inds = inds if inds is None or scale == 1 else cv2.resize(inds, None, fx=scale, fy=scale,
                                                                          interpolation=cv2.INTER_NEAREST)
            outputs, frame = encode(big, big_inds)
            ms = interleaved({"ours": lambda o=outputs, f=frame: extract.extract(o, f),
                              "reference": lambda o=outputs, f=frame: reference_paste(o, f)}, repeat)
            print(f"  {name:9s} {frame.photo[0]:5d}×{frame.photo[1]:<5d} {len(outputs[0]):2d} boxes:"
                  f" ours {ms['ours']:8.1f}   reference {ms['reference']:8.1f}")


def bench_step(repeat: int) -> None:
    iuv_rel, inds_rel, photo_rel = CASES["pr99"]
    photo = np.asarray(Image.open(SAMPLES / photo_rel).convert("RGB"))
    with tempfile.TemporaryDirectory() as tmp:
        path = build_standin(read_iuv(iuv_rel), np.asarray(Image.open(SAMPLES / inds_rel)), Path(tmp) / "standin.pt")
        t = time.perf_counter()
        _, meta = model.densepose(photo, path)
        first = time.perf_counter() - t
        warm = []
        for _ in range(repeat):
            t = time.perf_counter()
            _, meta = model.densepose(photo, path)
            warm.append(time.perf_counter() - t)
    print(f"densepose() with the STAND-IN model on pr99 ({photo.shape[1]}×{photo.shape[0]}): first call {first:.2f} s"
          f" (torchvision import, load, hash), warm {statistics.median(warm):.3f} s median"
          f" (model {meta['timings_s']['model_s']:.3f} s, extract {meta['timings_s']['extract_s']:.3f} s),"
          f" loads in this process: {meta['model_loads_in_process']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bench_extractor(args.repeat)
    bench_step(args.repeat)


if __name__ == "__main__":
    main()
