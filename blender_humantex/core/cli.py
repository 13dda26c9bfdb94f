"""`humantex` command line. Each subcommand lives with the code it drives.

A subcommand's module exposes `add_cli_arguments(name, parser)` and `run_cli(name, args) -> int`.
Only the chosen subcommand's module is imported, so `humantex --help` and `humantex unwrap`
never pay for importing torch.

Every HumantexError becomes one line on stderr and exit code 2; no traceback
(set HUMANTEX_DEBUG=1 to see one).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

SUBCOMMANDS = {
    "unwrap": ("blender_humantex.core.unwrap", "DensePose IUV + photo -> partial SMPL-UV texture + visibility"),
    "project": ("blender_humantex.core.projection", "photo + posed mesh + camera -> partial texture + visibility"),
    "complete": ("blender_humantex.core.pipeline", "partial texture + visibility -> complete texture (all layers)"),
    "generate": ("blender_humantex.core.pipeline",
                 "photo + IUV, or photo + mesh + camera -> complete texture (unwrap or project, then complete)"),
    "train": ("blender_humantex.core.train", "train sampler | refiner | lazova"),
    "evaluate": ("blender_humantex.core.evaluate", "LPIPS / PSNR / SSIM table (the paper's Table 1)"),
    "worker": ("blender_humantex.worker.server", "serve JSON-lines requests on stdin/stdout"),
}


class StderrProgress:
    """Progress callback for the CLI: one updating line on stderr (plain lines when not a TTY)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._last = None

    def __call__(self, stage: str, fraction: float) -> None:
        if self.quiet:
            return
        pct = int(round(100 * max(0.0, min(1.0, fraction))))
        if self.tty:
            sys.stderr.write(f"\r{stage:>8s} {pct:3d}%")
            if stage == "write" and pct == 100:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif (stage, pct // 50) != self._last:
            self._last = (stage, pct // 50)
            print(f"[humantex] {stage} {pct}%", file=sys.stderr, flush=True)


def build_parser(argv) -> argparse.ArgumentParser:
    from blender_humantex import __version__

    parser = argparse.ArgumentParser(prog="humantex", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"humantex {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            module = importlib.import_module(module_name)
            module.add_cli_arguments(name, p)
            p.set_defaults(_module=module)
    return parser


def main(argv=None) -> int:
    from .errors import HumantexError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        return int(args._module.run_cli(args.command, args) or 0)
    except HumantexError as e:
        if os.environ.get("HUMANTEX_DEBUG"):
            raise
        print(f"humantex: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("humantex: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
