"""`humantex worker`: the JSON-lines server (worker.server.serve), with `python -m blender_humantex.worker`'s flags."""

from __future__ import annotations

from ..worker import server


def add_arguments(name, parser) -> None:
    server.add_arguments(parser)


def run(name, args) -> int:
    return server.serve(device=args.device, weights_dir=args.weights)
