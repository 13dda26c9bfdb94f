"""`humantex generate` (photo + IUV, or photo + mesh + camera) and `humantex complete` (partial +
visibility): every layer to files."""

from __future__ import annotations

import dataclasses

from ..core.device import DEVICE_HELP
from ..core.files import DEFAULT_WEIGHTS_DIR
from ..core.job import MIN_COVERAGE, OUTPUT_FILES, generate
from ..core.outputs import prepare_output_dir, publish, staged
from ..core.pipeline import Pipeline
from ..core.request import DEFAULT_SIZE, GENERATE_FIELDS, MAX_SIZE, METHODS, MIN_SIZE, GenerateRequest
from .progress import StderrProgress
from .project import add_projection_arguments
from .unwrap import add_max_pixels_argument, add_output_arguments, add_unwrap_arguments, fraction


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
    add_output_arguments(parser, OUTPUT_FILES.values())
    parser.add_argument("--min-coverage", type=fraction, default=MIN_COVERAGE, metavar="F",
                        help="refuse when less than this fraction of the texture is seen in the photo"
                             f" (default {MIN_COVERAGE:g}: a texture completed from less is almost all invented)")
    parser.add_argument("--method", choices=sorted(METHODS), default="full", help="full (sampler + refiner) or lazova (baseline)")
    parser.add_argument("--weights", default=None, help=f"weights folder (default: {DEFAULT_WEIGHTS_DIR})")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run(name: str, args) -> int:
    # The request first (one line for a bad one), then the folder: an unwritable or occupied one is an
    # error before minutes of computing.
    request = build_request(args)
    out = prepare_output_dir(args.out, OUTPUT_FILES.values(), overwrite=args.overwrite)
    pipeline = Pipeline(weights_dir=args.weights, device=args.device)
    with staged(out) as staging:
        report = generate(pipeline, dataclasses.replace(request, out_dir=str(staging)),
                          progress=StderrProgress(quiet=args.quiet), options=reader_options(args),
                          min_coverage=args.min_coverage)
        report["outputs"] = publish(staging, out, report["outputs"])
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in report["timings"].items())
    print(f"wrote {len(report['outputs'])} files to {out.resolve()} ({timings})")
    return 0


def build_request(args) -> GenerateRequest:
    """The command's arguments as the one generate request (its source from the inputs given)."""
    values = {name: getattr(args, name, None) for name in GENERATE_FIELDS}
    values["out_dir"] = args.out
    if values.get("iuv_order") == "auto":  # the flag's default: the reader's default, not a choice
        values["iuv_order"] = None
    return GenerateRequest.from_fields(values)


def reader_options(args) -> dict:
    """The readers' options outside the request, from the flags; each source's reader takes its own
    (Source.options), and `complete` has none of these flags."""
    flags = {"on_size_mismatch": "on_size_mismatch", "erode_px": "erode", "y_up": "y_up", "margin_px": "margin",
             "max_angle_deg": "max_angle"}
    return {option: getattr(args, flag, None) for option, flag in flags.items()}
