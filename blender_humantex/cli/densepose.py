"""`humantex densepose`: photo -> DensePose's IUV.png, INDS.png, and meta.json (core.densepose)."""

from __future__ import annotations

from ..core.densepose.model import OUTPUT_FILES, densepose_file, write_outputs
from ..core.densepose.store import MODEL_ENV, MODEL_FLAG, locate
from ..core.device import DEVICE_HELP, resolve_device
from ..core.outputs import prepare_output_dir, publish, staged
from .progress import StderrProgress
from .unwrap import add_max_pixels_argument, add_output_arguments


def add_model_argument(parser) -> None:
    """--densepose-model, shared with `humantex generate`."""
    parser.add_argument(MODEL_FLAG, dest="densepose_model", default=None, metavar="FILE",
                        help=f"DensePose TorchScript file (default: ${MODEL_ENV}, then the worker's models folder,"
                             " then the user's cache; get it with `humantex models fetch densepose`)")


def add_arguments(name: str, parser) -> None:
    parser.add_argument("--photo", required=True, help="photo of the person (JPEG/PNG/...; EXIF orientation applied)")
    add_model_argument(parser)
    parser.add_argument("--device", default="auto", help=f"{DEVICE_HELP} (falls back to the CPU, recorded in meta.json)")
    add_max_pixels_argument(parser)
    add_output_arguments(parser, OUTPUT_FILES)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run(name: str, args) -> int:
    out = prepare_output_dir(args.out, OUTPUT_FILES, overwrite=args.overwrite)  # before the work
    locate(args.densepose_model)  # no model: say so before importing torch
    progress = StderrProgress(quiet=args.quiet)
    result, meta, _ = densepose_file(args.photo, args.densepose_model, device=resolve_device(args.device),
                                     max_pixels=args.max_pixels, progress=progress)
    progress("write", 0.0)
    with staged(out) as staging:
        publish(staging, out, write_outputs(staging, result, meta))
    progress("write", 1.0)
    print(f"{result.persons_found} person(s) found (DensePose on {meta['device']},"
          f" {sum(meta['timings_s'].values()):.2f} s) -> {out}: {', '.join(OUTPUT_FILES)}")
    return 0
