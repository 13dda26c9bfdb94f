"""Progress on stderr for the command line."""

from __future__ import annotations

import sys


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
