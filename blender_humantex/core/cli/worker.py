"""`humantex worker` and `python -m blender_humantex.worker`: the JSON-lines server (worker.server.serve)."""

from __future__ import annotations

import argparse

from ..device import DEVICE_HELP
from ..files import DEFAULT_WEIGHTS_DIR


def add_arguments(name, parser) -> None:
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--weights", default=None, metavar="DIR",
                        help=f"folder with sampler/refiner/lazova.safetensors (default: {DEFAULT_WEIGHTS_DIR})")


def run(name, args) -> int:
    from ...worker.server import serve

    return serve(device=args.device, weights_dir=args.weights)


def main(argv=None) -> int:
    """`python -m blender_humantex.worker` (what the add-on's client starts)."""
    parser = argparse.ArgumentParser(
        prog="python -m blender_humantex.worker", description="serve JSON-lines requests on stdin/stdout"
    )
    add_arguments("worker", parser)
    return run("worker", parser.parse_args(argv))
