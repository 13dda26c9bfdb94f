"""`humantex evaluate`: the LPIPS / PSNR / SSIM table (core.evaluate.evaluate)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..core.backbones import BACKBONE_FILES
from ..core.device import DEVICE_HELP
from ..core.errors import InputError
from ..core.evaluate import EVAL_SIZE, default_dev_dir, evaluate
from ..core.files import DEFAULT_WEIGHTS_DIR


def add_arguments(name, parser) -> None:
    parser.add_argument("--out", required=True, help="folder for results.md, results.json, figure.png")
    parser.add_argument("--dev-dir", help=f"complete SMPL-UV textures to mask and score (e.g. {default_dev_dir()})")
    parser.add_argument("--procedural", type=int, default=0, help="score the first N procedural test textures")
    parser.add_argument("--weights", help=f"weights folder (default: {DEFAULT_WEIGHTS_DIR})")
    parser.add_argument("--masks-per-texture", type=int, default=0,
                        help="0 (default): the fixed dev protocol (real masks 3, 6, 10, 11 for every dev texture); "
                             "N: the older rotation of N real masks per texture")
    parser.add_argument("--validation", action="store_true", help="also score the validation split")
    parser.add_argument("--photometric", action="store_true",
                        help="also score the validation split with photo-like partials (core.data.photometric: "
                             "shading, white balance, blur, JPEG, noise, occluders; seeded)")
    parser.add_argument("--size", type=int, default=EVAL_SIZE,
                        help=f"texture size the sets are made and scored at (default {EVAL_SIZE}, the paper's; "
                             f"512: the resolution artists use)")
    parser.add_argument("--seed", type=int, default=0, help="procedural test split seed")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--figure-rows", type=int, default=3)
    parser.add_argument("--lpips-backbones", help="folder with the LPIPS backbone weights")


def run(name, args) -> int:
    if args.procedural < 0 or args.masks_per_texture < 0:
        raise InputError("--procedural and --masks-per-texture must be >= 0", kind="bad_argument")
    if not 64 <= args.size <= 1024:
        raise InputError(f"--size must be in 64..1024, got {args.size}", kind="bad_argument")
    backbone = None
    if args.lpips_backbones:
        backbone = Path(args.lpips_backbones) / BACKBONE_FILES["alex"]
    evaluate(args.out, weights_dir=args.weights, dev_dir=args.dev_dir, procedural=args.procedural,
             masks_per_texture=args.masks_per_texture, seed=args.seed, device=args.device,
             backbone_file=backbone, figure_rows=args.figure_rows, validation=args.validation,
             photometric=args.photometric, size=args.size)
    print((Path(args.out) / "results.md").read_text(), end="")
    print(f"[humantex] wrote {args.out}/results.md, results.json, figure.png", file=sys.stderr)
    return 0
