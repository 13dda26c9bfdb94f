"""`humantex generate` (photo + IUV, or photo + mesh + camera) and `humantex complete` (partial +
visibility): every layer to files."""

from __future__ import annotations

import os

from ..device import DEVICE_HELP
from ..errors import InputError
from ..files import DEFAULT_WEIGHTS_DIR
from ..job import DEFAULT_SIZE, from_partial, from_photo, from_projection
from ..pipeline import MAX_SIZE, METHODS, MIN_SIZE, Pipeline
from .progress import StderrProgress
from .project import add_projection_arguments, projection_options
from .unwrap import add_max_pixels_argument, add_unwrap_arguments


def add_arguments(name: str, parser) -> None:
    if name == "complete":
        parser.add_argument("--partial", required=True, help="partial texture PNG (SMPL UV, unseen texels black)")
        parser.add_argument("--visibility", required=True, help="visibility mask PNG (white = observed)")
        add_max_pixels_argument(parser)
        size_default, size_help = None, "default: the input's size"
    else:
        add_unwrap_arguments(parser, iuv_required=False)  # --photo, --iuv, --inds, ... as `humantex unwrap`
        add_projection_arguments(parser.add_argument_group("camera projection (instead of --iuv)"), required=False)
        size_default, size_help = DEFAULT_SIZE, f"default: {DEFAULT_SIZE}"
    parser.add_argument("--size", type=int, default=size_default, help=f"output size {MIN_SIZE}..{MAX_SIZE} ({size_help})")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--method", choices=sorted(METHODS), default="full", help="full (sampler + refiner) or lazova (baseline)")
    parser.add_argument("--weights", default=None, help=f"weights folder (default: {DEFAULT_WEIGHTS_DIR})")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run(name: str, args) -> int:
    pipeline = Pipeline(weights_dir=args.weights, device=args.device)
    common = dict(out_dir=args.out, size=args.size, method=args.method, progress=StderrProgress(quiet=args.quiet),
                  max_pixels=args.max_pixels)
    if name == "complete":
        report = from_partial(pipeline, partial=args.partial, visibility=args.visibility, **common)
    elif args.mesh or args.camera:
        if not (args.mesh and args.camera) or args.iuv or args.inds:
            raise InputError("camera projection takes --photo, --mesh and --camera (no --iuv or --inds)",
                             kind="missing_input")
        report = from_projection(pipeline, photo=args.photo, mesh=args.mesh, camera=args.camera, mask=args.mask,
                                 projection_options=projection_options(args), **common)
    elif not args.iuv:
        raise InputError("generate needs --iuv (DensePose), or --mesh and --camera (camera projection)",
                         kind="missing_input")
    else:
        report = from_photo(
            pipeline, photo=args.photo, iuv=args.iuv, inds=args.inds, person=args.person, iuv_order=args.iuv_order,
            unwrap_options={"on_size_mismatch": args.on_size_mismatch, "erode_px": args.erode}, **common,
        )
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in report["timings"].items())
    print(f"wrote {len(report['outputs'])} files to {os.path.abspath(args.out)} ({timings})")
    return 0
