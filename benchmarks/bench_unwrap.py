"""Milliseconds to unwrap a 1024² photo into 512² and 2048² partial textures.

The photo and its IUV are the SMPLitex sample scaled to 1024 rows (bicubic / nearest) and padded to
1024×1024. Layout building is timed separately (it is cached in memory, and on disk from 1024²).

    .venv/bin/python benchmarks/bench_unwrap.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from blender_humantex.core import uv_layout
from blender_humantex.core.imageio import read_raw_u8, read_rgb
from blender_humantex.core.sources.iuv import iuv_channels, unwrap, visibility_from_iuv

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "densepose_samples" / "smplitex_example"
NAME = "MEN-Jackets_Vests-id_00003336-09_1_front"


def square_1024(photo: np.ndarray, iuv: np.ndarray):
    h, w = photo.shape[:2]
    new_w = round(w * 1024 / h)
    photo = cv2.resize(photo, (new_w, 1024), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    iuv = cv2.resize(iuv, (new_w, 1024), interpolation=cv2.INTER_NEAREST)
    left = (1024 - new_w) // 2
    out_photo = np.zeros((1024, 1024, 3), np.float32)
    out_iuv = np.zeros((1024, 1024, 3), np.uint8)
    out_photo[:, left:left + new_w] = photo
    out_iuv[:, left:left + new_w] = iuv
    return out_photo, out_iuv


def ms(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), min(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    args = parser.parse_args()

    photo = read_rgb(args.sample / f"{NAME}.jpg")
    iuv, _ = iuv_channels(read_raw_u8(args.sample / f"{NAME}_densepose.png"))
    photo, iuv = square_1024(photo, iuv)
    print(f"photo 1024×1024, person {int((iuv[..., 0] > 0).sum())} px")

    for size in (512, 2048):
        uv_layout.get_layout.cache_clear()
        t = time.perf_counter()
        uv_layout._build(size)
        build = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        uv_layout.get_layout(size)  # from the disk cache where there is one (>= 1024), else a build
        first = (time.perf_counter() - t) * 1e3
        print(f"layout {size}²: build {build:.0f} ms, first get_layout {first:.0f} ms")

    for size in (512, 2048):
        med, best, r = ms(lambda s=size: unwrap(photo, iuv, size=s), args.repeat)
        steps = ", ".join(f"{k[:-3]} {v:.0f}" for k, v in r.meta["timings_ms"].items() if k != "total_ms")
        print(f"unwrap 1024² photo -> {size}² texture: median {med:.0f} ms, best {best:.0f} ms"
              f" (coverage {r.meta['coverage']:.1%}; last run: {steps} ms)")
    med, best, _ = ms(lambda: visibility_from_iuv(iuv, size=256), args.repeat)
    print(f"visibility_from_iuv 1024² IUV -> 256²: median {med:.0f} ms, best {best:.0f} ms")


if __name__ == "__main__":
    main()
