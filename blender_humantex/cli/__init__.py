"""`humantex` command line: every subcommand's arguments, parsed here and passed to plain library calls.

One module per subcommand family in this package; each exposes `add_arguments(name, parser)` and
`run(name, args) -> int`. Only the chosen subcommand's module is imported, so `humantex --help` and
`humantex unwrap` never pay for importing torch. Library modules never import this package.

Every HumantexError becomes one line on stderr and exit code 2; no traceback
(set HUMANTEX_DEBUG=1 to see one).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

SUBCOMMANDS = {
    "unwrap": ("unwrap", "DensePose IUV + photo -> partial SMPL-UV texture + visibility"),
    "project": ("project", "photo + posed mesh + camera -> partial texture + visibility"),
    "complete": ("generate", "partial texture + visibility -> complete texture (all layers)"),
    "generate": ("generate", "photo + IUV, or photo + mesh + camera -> complete texture (unwrap or project, then complete)"),
    "train": ("train", "train sampler | refiner | lazova"),
    "evaluate": ("evaluate", "LPIPS / PSNR / SSIM table (the paper's Table 1)"),
    "worker": ("worker", "serve JSON-lines requests on stdin/stdout"),
}


def build_parser(argv) -> argparse.ArgumentParser:
    from ..version import __version__

    parser = argparse.ArgumentParser(prog="humantex", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"humantex {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            module = importlib.import_module(f"{__name__}.{module_name}")
            module.add_arguments(name, p)
            p.set_defaults(handler=module.run)
    return parser


def main(argv=None) -> int:
    from ..core.errors import HumantexError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        return int(args.handler(args.command, args) or 0)
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
