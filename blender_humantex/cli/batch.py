"""`humantex batch`: a manifest of generate jobs on Ray, each into DIR/<id>/ as `humantex generate`
writes it; resumable (DIR/batch.status.jsonl), with a progress bar and a summary.

Exit codes: 0 every job done (or already done), 1 some job failed, 2 bad arguments or manifest
(nothing written), 130 interrupted (finished jobs stay done; a rerun does the rest).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

from ..core.errors import DependencyError, InputError
from ..core.files import DEFAULT_WEIGHTS_DIR
from ..core.job import OUTPUT_FILES
from ..core.outputs import prepare_output_dir
from .unwrap import positive_int


def add_arguments(name: str, parser) -> None:
    parser.add_argument("--manifest", required=True, metavar="JOBS.jsonl",
                        help='JSON lines, one job a line: {"id": "a", "photo": "a.jpg", "iuv": "a_IUV.png", ...};'
                             " any source `generate` takes; paths relative to the manifest")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder: DIR/<id>/ per job (as `humantex generate` writes it), DIR/batch.status.jsonl")
    parser.add_argument("--workers", type=positive_int, default=None, metavar="N",
                        help="actors: default one per CPU of the local Ray (os.cpu_count()) or one per GPU of the cluster")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto (default): one actor per GPU if Ray has GPUs, else one single-thread actor per CPU")
    parser.add_argument("--ray-address", default=None, metavar="A",
                        help="an existing Ray cluster (e.g. auto, or ray://HEAD:10001 after `ray start --head`);"
                             " default: a local Ray started for this run")
    parser.add_argument("--weights", default=None, help=f"weights folder (default: {DEFAULT_WEIGHTS_DIR})")
    parser.add_argument("--retry-failed", action="store_true",
                        help="also rerun jobs that failed before with the same inputs (bad input, too little coverage)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar (the summary is still printed)")


def run(name: str, args) -> int:
    from ..core.farm.manifest import read_manifest
    from ..core.farm.runner import INSTALL_HINT
    from ..core.farm.status import batch_lock, weights_key

    jobs = read_manifest(args.manifest)  # every line checked before anything is written
    # a folder we can write in (made with the first job), absolute: the actors' working folder is not ours
    out = prepare_output_dir(args.out, ()).absolute()
    weights_dir = Path(args.weights).expanduser().resolve() if args.weights else DEFAULT_WEIGHTS_DIR
    check_weights(weights_dir, {job.request.method or "full" for job in jobs})
    if importlib.util.find_spec("ray") is None:
        raise DependencyError(INSTALL_HINT)
    weights = weights_key(weights_dir)
    with batch_lock(out):
        counts = _run(args, jobs, out, weights, weights_dir)
    if counts.stopping:
        return 130
    return 1 if counts.failed or counts.failed_before else 0


def check_weights(weights_dir: Path, methods) -> None:
    """The weights files the jobs' methods need, there before Ray starts (the actors load them)."""
    from ..core.pipeline import WEIGHT_FILES
    from ..core.request import METHODS

    needed = sorted({WEIGHT_FILES[kind] for method in methods for kind in METHODS.get(method, ())})
    missing = [name for name in needed if not (weights_dir / name).is_file()]
    if missing:
        raise InputError(f"weights folder {weights_dir} lacks {', '.join(missing)} (--weights: a folder holding"
                         f" {', '.join(needed)})", kind="missing_file")


def _run(args, jobs, out: Path, weights: str, weights_dir: Path):
    """Skip what is settled, run the rest on Ray, print the summary."""
    from ..core.farm.runner import Counts, run_on_ray
    from ..core.farm.status import StatusFile, job_key

    status, cache, todo, failed_before = StatusFile(out), {}, [], []
    counts = Counts(total=len(jobs))  # counts.failed_before: set below
    for job in jobs:
        key = job_key(job.request, weights, cache)
        settled = status.settled(job.id, key, out / job.id, OUTPUT_FILES.values())
        if settled == "done" or (settled == "failed" and not args.retry_failed):
            counts.skipped += 1
            failed_before += [job.id] if settled == "failed" else []
        else:
            todo.append((job, key))
    counts.failed_before = len(failed_before)
    bar = ProgressBar(quiet=args.quiet)
    if todo:
        try:
            run_on_ray(todo, out, status, counts, workers=args.workers, device=args.device, address=args.ray_address,
                       weights_dir=str(weights_dir) if args.weights else None, weights=weights, progress=bar)
        finally:
            bar.close()
            status.compact([job.id for job in jobs])
    print_summary(counts, [job.id for job, _ in todo], failed_before, status, out)
    return counts


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def rate_and_eta(counts) -> tuple[float, float | None]:
    """Jobs per minute since the actors were up, and the seconds left at that rate (None before the
    first job ends)."""
    finished = counts.done + counts.failed
    elapsed = max(time.monotonic() - (counts.working_since or counts.started), 1e-6)
    rate = 60.0 * finished / elapsed
    left = counts.total - counts.skipped - finished
    return rate, (60.0 * left / rate if rate > 0 else None)


class ProgressBar:
    """One updating line on stderr (a TTY), or a line every few seconds (a log)."""

    WIDTH = 24

    def __init__(self, quiet: bool = False, every_s: float = 5.0):
        self.quiet, self.every_s = quiet, every_s
        self.tty = sys.stderr.isatty()
        self._last = (None, 0.0)

    def __call__(self, counts) -> None:
        if self.quiet:
            return
        rate, eta = rate_and_eta(counts)
        finished = counts.skipped + counts.done + counts.failed
        filled = int(self.WIDTH * finished / max(counts.total, 1))
        line = (f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {finished}/{counts.total}  done {counts.done}"
                f"  failed {counts.failed}  running {counts.running}  {rate:.1f} jobs/min"
                f"  ETA {_clock(eta) if eta is not None else '?'}" + ("  stopping (Ctrl+C again: now)" if counts.stopping else ""))
        if self.tty:
            sys.stderr.write("\r" + line + "\033[K")
            sys.stderr.flush()
            return
        state, (last_state, last_time) = (finished, counts.stopping), self._last
        due = time.monotonic() - last_time >= self.every_s or finished == counts.total or state[1] != (last_state or (0, False))[1]
        if state != last_state and due:
            print("[humantex batch] " + line, file=sys.stderr, flush=True)
            self._last = (state, time.monotonic())

    def close(self) -> None:
        if self.tty and not self.quiet:
            sys.stderr.write("\n")


def print_summary(counts, ran: list[str], failed_before: list[str], status, out: Path, max_rows: int = 40) -> None:
    """One line of counts, then a table of this run's jobs (only the failed ones when there are many)."""
    elapsed = time.monotonic() - counts.started
    rate = 60.0 * (counts.done + counts.failed) / max(elapsed, 1e-6)  # end to end: with Ray's start
    head = (f"humantex batch: {counts.total} jobs: {counts.done} done, {counts.skipped - counts.failed_before} already"
            f" done, {counts.failed} failed" + (f" ({counts.retried} retried after a worker died)" if counts.retried else "")
            + (f", {counts.failed_before} failed before with the same inputs (--retry-failed reruns them)"
               if counts.failed_before else ""))
    if ran:
        head += f"; {_clock(elapsed)}, {rate:.1f} jobs/min"
    recorded = set(status.written)
    unfinished = [i for i in ran if i not in recorded]
    print(head)
    rows = [status.records[i] for i in ran if i in recorded] + [status.records[i] for i in failed_before]
    failed = [r for r in rows if r.get("status") != "done"]
    shown = rows if len(rows) <= max_rows else failed[:max_rows]
    if shown:
        width = max(len("id"), *(len(r["id"]) for r in shown))
        print(f"  {'id':<{width}}  {'status':<6}  {'seconds':>7}  error")
        for r in shown:
            seconds = f"{r['seconds']:.1f}" if isinstance(r.get("seconds"), (int, float)) else "-"
            print(f"  {r['id']:<{width}}  {r['status']:<6}  {seconds:>7}  {r.get('error') or ''}")
    if len(failed) > len([r for r in shown if r.get("status") != "done"]):
        print(f"  ... {len(failed) - max_rows} more failed: see {out / 'batch.status.jsonl'}")
    if counts.stopping:
        print(f"interrupted: {len(unfinished)} job(s) not run; run the same command again to finish them",
              file=sys.stderr)
    print(f"outputs: {os.fspath(out.resolve())}/<id>/, status: {os.fspath(out.resolve() / 'batch.status.jsonl')}")
