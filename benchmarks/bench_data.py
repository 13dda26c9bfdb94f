"""How fast the training data is made (it runs online, in DataLoader workers) and the classical baseline.

    .venv/bin/python benchmarks/bench_data.py [--n 50] [--sizes 256 512] [--threads 1]

Prints the median and 90th-percentile milliseconds per call, single process. OpenCV's own threads are
limited to --threads (DataLoader workers each run one copy of this).
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np


def _time(fn, n: int) -> tuple[float, float]:
    fn(0)  # warm-up: builds the per-size caches
    times = []
    for i in range(1, n + 1):
        t = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times)), float(np.percentile(times, 90))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)

    from blender_humantex.core.baselines import classical_fill
    from blender_humantex.core.data import ProceduralTextureDataset, make_texture
    from blender_humantex.core.data.procedural import body_geometry
    from blender_humantex.core.data.visibility import sample_visibility, synthetic_visibility

    print(f"{'what':44s} {'size':>5s} {'median ms':>10s} {'p90 ms':>8s}")
    for size in args.sizes:
        t = time.perf_counter()
        body_geometry(size)
        print(f"{'body geometry (once per size and process)':44s} {size:5d} {(time.perf_counter() - t) * 1e3:10.1f}")
        rows = [
            ("make_texture", lambda i, s=size: make_texture(i, s)),
            ("synthetic_visibility", lambda i, s=size: synthetic_visibility(np.random.default_rng(i), s)),
            ("sample_visibility (real/synthetic + misalign)", lambda i, s=size: sample_visibility(np.random.default_rng(i), s)),
        ]
        ds = ProceduralTextureDataset("train", size=size, length=10**6, seed=0)
        rows.append(("ProceduralTextureDataset item (tensors)", lambda i, d=ds: d[i]))
        items = [ds.numpy_item(i) for i in range(8)]
        rows.append(("classical_fill", lambda i, it=items: classical_fill(it[i % 8][0] * it[i % 8][1][..., None], it[i % 8][1])))
        for name, fn in rows:
            n = args.n if name != "classical_fill" else max(5, args.n // 5)
            med, p90 = _time(fn, n)
            print(f"{name:44s} {size:5d} {med:10.1f} {p90:8.1f}")


if __name__ == "__main__":
    main()
