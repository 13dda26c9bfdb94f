"""`humantex generate` (photo + IUV, or photo + mesh + camera) and `humantex complete` (partial +
visibility): every layer to files."""

from __future__ import annotations

from ..device import DEVICE_HELP
from ..errors import InputError
from ..files import DEFAULT_WEIGHTS_DIR
from ..job import DEFAULT_SIZE, MIN_COVERAGE, OUTPUT_FILES, from_partial, from_photo, from_projection
from ..outputs import prepare_output_dir, publish, staged
from ..pipeline import MAX_SIZE, METHODS, MIN_SIZE, Pipeline
from .progress import StderrProgress
from .project import add_projection_arguments, projection_options
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
    # The folder first: an unwritable or occupied one is an error before minutes of computing.
    out = prepare_output_dir(args.out, OUTPUT_FILES.values(), overwrite=args.overwrite)
    pipeline = Pipeline(weights_dir=args.weights, device=args.device)
    with staged(out) as staging:
        report = _run(name, args, pipeline, staging)
        report["outputs"] = publish(staging, out, report["outputs"])
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in report["timings"].items())
    print(f"wrote {len(report['outputs'])} files to {out.resolve()} ({timings})")
    return 0


def _run(name: str, args, pipeline, out_dir) -> dict:
    common = dict(out_dir=out_dir, size=args.size, method=args.method, progress=StderrProgress(quiet=args.quiet),
                  max_pixels=args.max_pixels, min_coverage=args.min_coverage)
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
    return report
