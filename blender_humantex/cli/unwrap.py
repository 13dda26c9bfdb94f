"""`humantex unwrap`: DensePose IUV + photo -> partial.png, visibility.png, meta.json."""

from __future__ import annotations

import argparse

from ..core.imageio import DEFAULT_MAX_PIXELS
from ..core.job import MIN_COVERAGE, check_coverage
from ..core.outputs import prepare_output_dir, publish, staged
from ..core.sources.iuv import (
    AUTO_ERODE_MAX,
    AUTO_ERODE_PER_PX,
    DEFAULT_ERODE_PX,
    IUV_ORDERS,
    MAX_ERODE_FRACTION,
    MAX_TEXTURE_SIZE,
    MIN_TEXTURE_SIZE,
    unwrap_files,
)
from ..core.sources.partial import PARTIAL_FILES, write_partial
from .progress import StderrProgress


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _erode_arg(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number of pixels, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected ≥ 0 pixels, got {value}")
    return value


def add_unwrap_arguments(parser, iuv_required: bool = True) -> None:
    """The unwrap inputs, shared by `humantex unwrap` and `humantex generate` (where --mesh and
    --camera may stand in for --iuv)."""
    parser.add_argument("--photo", required=True, help="photo of the person (JPEG/PNG/...; EXIF orientation applied)")
    parser.add_argument("--iuv", required=iuv_required, help="DensePose IUV image of the photo")
    parser.add_argument("--inds", default=None, help="DensePose INDS person-index image (optional)")
    parser.add_argument("--person", type=int, default=None,
                        help="person index in INDS to unwrap (default: the largest person)")
    parser.add_argument("--iuv-order", choices=IUV_ORDERS, default="auto",
                        help="IUV channel order as read in RGB: vui = R:V G:U B:I (DensePose/OpenCV files), "
                             "iuv = R:I G:U B:V; auto (default) detects which channel holds the part index")
    parser.add_argument("--on-size-mismatch", choices=("error", "resize"), default="error",
                        help="photo and IUV of different sizes: error (default) or stretch the IUV over the photo")
    add_max_pixels_argument(parser)
    parser.add_argument("--erode", type=_erode_arg, default=DEFAULT_ERODE_PX, metavar="PX",
                        help="erode the silhouette by PX pixels so seams skip the background"
                             f" (default: auto, 1 px per {AUTO_ERODE_PER_PX} px of person size, at most {AUTO_ERODE_MAX};"
                             f" given: at most {round(100 * MAX_ERODE_FRACTION)}%% of the image's shorter side)")


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction 0..1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction 0..1, got {value:g}")
    return value


def add_output_arguments(parser, names) -> None:
    """--out and --overwrite, with the folder policy of core/outputs.py in the help."""
    names = ", ".join(names)
    parser.add_argument("--out", required=True, metavar="DIR",
                        help=f"output folder (made if missing): {names}. Files of an earlier humantex run there are"
                             " replaced, all at once; other files are left alone")
    parser.add_argument("--overwrite", action="store_true",
                        help="also replace same-named files that humantex did not write (without it: an error)")


def add_max_pixels_argument(parser) -> None:
    parser.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS,
                        help=f"refuse images larger than this many pixels (default {DEFAULT_MAX_PIXELS})")


def add_arguments(name: str, parser) -> None:
    add_unwrap_arguments(parser)
    parser.add_argument("--size", type=int, default=512,
                        help=f"texture size in texels, {MIN_TEXTURE_SIZE}..{MAX_TEXTURE_SIZE} (default 512)")
    add_output_arguments(parser, PARTIAL_FILES)
    parser.add_argument("--min-coverage", type=fraction, default=MIN_COVERAGE, metavar="F",
                        help=f"refuse when less than this fraction of the texture is seen (default {MIN_COVERAGE:g})")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run(name: str, args) -> int:
    out = prepare_output_dir(args.out, PARTIAL_FILES, overwrite=args.overwrite)  # before the work
    progress = StderrProgress(quiet=args.quiet)
    result = unwrap_files(args.photo, args.iuv, inds_path=args.inds, person=args.person, size=args.size,
                          iuv_order=args.iuv_order, on_size_mismatch=args.on_size_mismatch,
                          max_pixels=args.max_pixels, erode_px=args.erode, progress=progress)
    check_coverage(result.meta["coverage"], args.min_coverage)
    progress("write", 0.0)
    with staged(out) as staging:
        publish(staging, out, write_partial(staging, result))
    progress("write", 1.0)
    print(f"coverage {result.meta['coverage']:.1%} of the UV charts, person {result.meta['person']} -> {out}")
    return 0
