"""Seconds to camera-project a 1024² photo onto an SMPL-sized mesh's 1024² texture, on one CPU core.

The mesh is procedural (SMPL itself cannot be shipped): `projection.uv_sphere` with SMPL's triangle
count, 13,776 triangles on 7,055 vertices, with a full latitude-longitude UV map. Two shapes:
  body    the sphere scaled to a body's proportions (0.45 × 0.25 × 1), filling 90% of the frame's height
  sphere  the round sphere filling 70% of the frame's width: more texels and pixels than a body
Each is timed end to end (depth buffer, UV rasterisation, visibility, sampling), median and best of
--repeat runs, with numpy/OpenCV held to one thread.

    .venv/bin/python benchmarks/bench_projection.py [--repeat 5] [--size 1024] [--photo 1024]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the target says; before numpy loads

import argparse
import statistics
import time

import cv2
import numpy as np

from blender_humantex.core.sources.cameras import camera_from_dict
from blender_humantex.core.sources.meshes import uv_sphere
from blender_humantex.core.sources.projection import project


def scene(shape: str, photo_px: int):
    mesh = uv_sphere()
    if shape == "body":
        mesh.vertices = mesh.vertices * np.array([0.45, 0.25, 1.0])
        distance = 2 * 1.0 / 0.9 * 50 / 36  # half-height 1 fills 90% of the frame (lens 50, sensor 36)
    else:
        distance = 1.0 / 0.7 * 2 * 50 / 36
    camera = {
        "model": "blender", "lens": 50.0, "sensor_width": 36.0, "sensor_fit": "AUTO",
        "resolution_x": photo_px, "resolution_y": photo_px,
        # looking along +y from (0, -distance, 0), z up: Blender's camera rotated 90° about x
        "matrix_world": [[1, 0, 0, 0], [0, 0, -1, -distance], [0, 1, 0, 0], [0, 0, 0, 1]],
    }
    return mesh, camera_from_dict(camera)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size", type=int, default=1024, help="texture size")
    parser.add_argument("--photo", type=int, default=1024, help="photo size (square)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    photo = rng.random((args.photo, args.photo, 3), dtype=np.float32)
    print(f"mesh: 7055 vertices, 13776 triangles; photo {args.photo}²; texture {args.size}²; 1 thread")
    for shape in ("body", "sphere"):
        mesh, camera = scene(shape, args.photo)
        project(mesh, camera, photo, size=args.size)  # warm-up (imports, allocations)
        times, result = [], None
        for _ in range(args.repeat):
            t = time.perf_counter()
            result = project(mesh, camera, photo, size=args.size)
            times.append(time.perf_counter() - t)
        meta = result.meta
        parts = ", ".join(f"{k[:-3]} {v:.0f}" for k, v in meta["timings_ms"].items() if k != "total_ms")
        print(f"{shape:6s}: median {statistics.median(times):.3f} s, best {min(times):.3f} s"
              f"  ({parts} ms; {meta['visible_texels']} texels seen, coverage {meta['coverage']:.1%})")


if __name__ == "__main__":
    main()
