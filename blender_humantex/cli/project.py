"""`humantex project`: photo + posed mesh + camera -> partial.png, visibility.png, meta.json."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.outputs import prepare_output_dir, publish, staged
from ..core.request import MAX_SIZE, MIN_SIZE
from ..core.sources.partial import PARTIAL_FILES, write_partial
from ..core.sources.projection import DEFAULT_MARGIN_PX, DEFAULT_MAX_ANGLE_DEG, project_files
from .progress import StderrProgress
from .unwrap import add_max_pixels_argument, add_output_arguments, positive_int


def add_projection_arguments(parser, required: bool = True) -> None:
    """The projection inputs besides the photo, shared by `humantex project` and `humantex generate`."""

    def angle(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected degrees, got {text!r}") from None
        if not 0 < value <= 90:
            raise argparse.ArgumentTypeError(f"expected 0 < degrees <= 90, got {value}")
        return value

    parser.add_argument("--mesh", required=required,
                        help="posed mesh with a UV map, in the camera's world space (OBJ, PLY, GLB, ... or .npz)")
    parser.add_argument("--camera", required=required, help="camera JSON (Blender or OpenCV model; see README)")
    parser.add_argument("--mask", default=None,
                        help="person mask PNG, white = person (default: the photo's alpha channel, if any)")
    parser.add_argument("--y-up", action="store_true",
                        help="the mesh file is Y-up (glTF; OBJ exported with Blender's default axes)")
    parser.add_argument("--margin", type=lambda t: positive_int(t) if t != "0" else 0, default=DEFAULT_MARGIN_PX,
                        metavar="PX", help="pixels kept clear of silhouettes and occlusion edges"
                                           f" (default {DEFAULT_MARGIN_PX})")
    parser.add_argument("--max-angle", type=angle, default=DEFAULT_MAX_ANGLE_DEG, metavar="DEG",
                        help=f"drop texels seen more than DEG from head-on (default {DEFAULT_MAX_ANGLE_DEG:g})")


def add_arguments(name: str, parser) -> None:
    parser.add_argument("--photo", required=True, help="the photo, as seen through the camera")
    add_projection_arguments(parser)
    parser.add_argument("--size", type=int, default=1024,
                        help=f"texture size in texels, {MIN_SIZE}..{MAX_SIZE} (default 1024)")
    add_max_pixels_argument(parser)
    add_output_arguments(parser, PARTIAL_FILES)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run(name: str, args) -> int:
    progress = StderrProgress(quiet=args.quiet)
    out = prepare_output_dir(args.out, PARTIAL_FILES, overwrite=args.overwrite)  # before the work
    result = project_files(args.mesh, args.camera, args.photo, mask_path=args.mask, size=args.size,
                           max_pixels=args.max_pixels, progress=progress, y_up=args.y_up, erode_px=args.margin,
                           max_angle_deg=args.max_angle)
    progress("write", 0.0)
    with staged(out) as staging:
        paths = publish(staging, out, write_partial(staging, result))
    progress("write", 1.0)
    meta = result.meta
    layout = "SMPL UV layout" if meta["uv_layout"] != "mesh" else "the mesh's own UV layout (not SMPL's)"
    print(f"{meta['visible_texels']} texels seen ({meta['coverage']:.1%} of the UV map), {layout}"
          f" -> {Path(paths['partial']).parent}")
    return 0
