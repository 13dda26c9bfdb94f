"""The real-photo figure of MODEL_CARD.md: every photo in ../shared/data/densepose_samples with its real
DensePose IUV, through `humantex generate` at 1024², one row each: photo | partial | T_sample | T_final.

No ground truth exists for these: the figure is for looking (MODEL_CARD.md describes what it shows).

    python scripts/real_photos.py --out out/real_photos [--figure blender_humantex/weights/real_photos.jpg]

Each case's full output (every layer at 1024², meta.json, sheet.png) is kept in --out/<case>/.
The figure shows each layer at 512² (JPEG, to keep the extension zip small).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from blender_humantex.core.data.textures import shared_data_dir

SAMPLES = shared_data_dir() / "densepose_samples"  # ../shared/data beside the checkout, or $HUMANTEX_SHARED_DATA
# (name, photo, IUV, INDS or None, --iuv-order): every sample folder's photos that have an IUV
CASES = (
    ("densepose_pr99", "densepose_pr99/im.jpg", "densepose_pr99/IUV.png", "densepose_pr99/INDS.png", "vui"),
    ("densepose_demo", "densepose_demo/demo_im.jpg", "densepose_demo/demo_im_IUV.png",
     "densepose_demo/demo_im_INDS.png", "vui"),
    ("smplitex_example", "smplitex_example/MEN-Jackets_Vests-id_00003336-09_1_front.jpg",
     "smplitex_example/MEN-Jackets_Vests-id_00003336-09_1_front_densepose.png", None, "vui"),
    ("pws_blouse_front", "pose_with_style/fashionWOMENBlouses_Shirtsid0000635004_1front.png",
     "pose_with_style/fashionWOMENBlouses_Shirtsid0000635004_1front_iuv.png", None, "iuv"),
    ("pws_dress_back", "pose_with_style/fashionWOMENDressesid0000262902_3back.png",
     "pose_with_style/fashionWOMENDressesid0000262902_3back_iuv.png", None, "iuv"),
    ("pws_skirt_front", "pose_with_style/fashionWOMENSkirtsid0000177102_1front.png",
     "pose_with_style/fashionWOMENSkirtsid0000177102_1front_iuv.png", None, "iuv"),
)
CELL = 512


def generate(case, samples: Path, out: Path, size: int) -> Path:
    name, photo, iuv, inds, order = case
    folder = out / name
    command = [sys.executable, "-m", "blender_humantex", "generate", "--photo", str(samples / photo),
               "--iuv", str(samples / iuv), "--iuv-order", order, "--size", str(size), "--out", str(folder)]
    if inds:
        command += ["--inds", str(samples / inds)]
    subprocess.run(command, check=True)
    return folder


def cell(path: Path, label: str) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    h, w = image.shape[:2]
    scale = CELL / max(h, w)
    image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    canvas = np.full((CELL, CELL, 3), 255, np.uint8)
    top, left = (CELL - image.shape[0]) // 2, (CELL - image.shape[1]) // 2
    canvas[top : top + image.shape[0], left : left + image.shape[1]] = image
    cv2.putText(canvas, label, (6, CELL - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, label, (6, CELL - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for each case's generate output")
    parser.add_argument("--figure", help="write the figure here (.jpg)")
    parser.add_argument("--samples", default=str(SAMPLES))
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args(argv)
    rows = []
    for case in CASES:
        folder = generate(case, Path(args.samples), Path(args.out), args.size)
        photo = Path(args.samples) / case[1]
        rows.append(np.concatenate([cell(photo, case[0]), cell(folder / "partial.png", "partial"),
                                    cell(folder / "sample.png", "T_sample"), cell(folder / "final.png", "T_final")], 1))
    if args.figure:
        cv2.imwrite(args.figure, np.concatenate(rows, 0), [cv2.IMWRITE_JPEG_QUALITY, 85])
        print(f"wrote {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
