"""Round trip, warm: photo + IUV of examples/densepose_pr99 -> every layer written and published, per stage,
against the previous release's tree in the same run (interleaved, medians, ratios).

    .venv/bin/python benchmarks/bench_roundtrip.py --prev ../prev [--sizes 256 1024 2048 4096] [--repeats 5]
        [--big-repeats 2] [--worker 2048] [--compare 256 1024 2048]

Make the previous release's tree once: `git worktree add ../prev d6025ea` (and link .venv into it).
Each tree runs in its own child process with its own PYTHONPATH, one child per tree and size, loaded once
(warm) and then asked for one job at a time, the trees taking turns; a child's peak RSS is its job size's.
The job is the worker's: a GenerateRequest's job_inputs() into a staging folder, then publish, so what a
tree's worker skips (or not) is skipped here too. Torch runs on one thread (OMP/MKL_NUM_THREADS=1,
torch.set_num_threads(1)); `cpu` is the child's CPU time (all its threads) for the job.

--worker S times the real warm worker subprocess (worker/client.py of each tree) at S², interleaved.
--cli-rss S...: the peak RSS of a real `humantex generate --size S` subprocess per tree (default 4096).
--compare S...: every layer of both trees' outputs at S², as PNGs: the largest difference per channel.
--cold-mapping: forget the unwrap's remembered IUV -> texel mappings before every job (a new photo each time).
Prints figures only; this machine is shared and noisy, so read the ratios (same run, interleaved).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ("unwrap", "sample", "refine", "write")
EXAMPLE = ("examples", "densepose_pr99")
CHILD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# ----------------------------------------------------------------------------- the child: one tree, one size


def child(size: int, mode: str, scratch: Path) -> int:
    """Load once, run one warm-up job, then one job per line on stdin; one JSON line out per job. Mode "cold"
    is "job" with the unwrap's remembered mappings (if this tree has them) forgotten before each job."""
    import resource
    import time

    import torch

    torch.set_num_threads(1)
    run = _worker_runner(size, scratch) if mode == "worker" else _job_runner(size, scratch, cold=mode == "cold")
    run("warmup")
    print(json.dumps({"ready": True}), flush=True)
    for n, line in enumerate(sys.stdin):
        if line.strip() != "run":
            break
        wall, cpu = time.perf_counter(), time.process_time()
        timings, out_dir = run(f"job{n}")
        record = {"total": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "timings": timings,
                  "out_dir": str(out_dir),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        print(json.dumps(record), flush=True)
    return 0


def _request(size: int, out_dir: Path):
    from blender_humantex.worker.protocol import GenerateRequest

    example = REPO.joinpath(*EXAMPLE)
    return GenerateRequest(out_dir=str(out_dir), photo=str(example / "im.jpg"), iuv=str(example / "IUV.png"),
                           inds=str(example / "INDS.png"), size=size)


def _job_runner(size: int, scratch: Path, cold: bool = False):
    """The worker's job in this process: generate into a staging folder, then publish (as worker/server.py
    calls it: a request since the sources refactor, its fields before)."""
    import dataclasses
    import inspect

    from blender_humantex.core.job import generate
    from blender_humantex.core.outputs import publish, staged
    from blender_humantex.core.pipeline import Pipeline

    pipeline = Pipeline(device="cpu")
    parameters = inspect.signature(generate).parameters
    takes_request = "request" in parameters
    options = {"sheet": False} if "sheet" in parameters else {}  # as worker/server.py: no contact sheet

    def run(name):
        out_dir = scratch / name
        request = _request(size, out_dir)
        if cold:
            _forget_mappings()
        with staged(out_dir) as staging:
            if takes_request:
                report = generate(pipeline, dataclasses.replace(request, out_dir=str(staging)), **options)
            else:
                report = generate(pipeline, out_dir=staging, **request.job_inputs())
            publish(staging, out_dir, report["outputs"])
        return report["timings"], out_dir

    return run


def _forget_mappings() -> None:
    try:
        from blender_humantex.core.sources import iuv
    except ImportError:  # the previous release remembers none
        return
    getattr(iuv, "_mapping_cache", {}).clear()


def _worker_runner(size: int, scratch: Path):
    """The real worker subprocess (this tree's client starts this tree's worker), one job per call."""
    from blender_humantex.worker.client import WorkerClient

    client = WorkerClient(sys.executable, device="cpu", log_path=scratch / "worker.log")
    client.start()

    def run(name):
        out_dir = scratch / name
        result = client.run(_request(size, out_dir))
        return result.get("timings", {}), out_dir

    return run


# ----------------------------------------------------------------------------- the parent


class Tree:
    """One source tree's child process for one size."""

    def __init__(self, name: str, root: Path, size: int, mode: str, scratch: Path):
        self.name, self.size = name, size
        env = {**os.environ, **CHILD_ENV, "PYTHONPATH": str(root)}
        command = [sys.executable, str(Path(__file__).resolve()), "--child", str(size), "--mode", mode,
                   "--scratch", str(scratch / f"{name}-{size}-{mode}")]
        self.proc = subprocess.Popen(command, cwd=root, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self._read()  # ready

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} at {self.size}²: the child exited ({self.proc.wait()})")
        return json.loads(line)

    def job(self) -> dict:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def interleaved(trees: list[Tree], repeats: int) -> dict[str, list[dict]]:
    runs = {t.name: [] for t in trees}
    for i in range(repeats):
        for tree in trees if i % 2 == 0 else trees[::-1]:  # alternate who goes first
            runs[tree.name].append(tree.job())
    return runs


def medians(records: list[dict]) -> dict[str, float]:
    out = {stage: statistics.median(r["timings"].get(stage, 0.0) for r in records) for stage in STAGES}
    out["total"] = statistics.median(r["total"] for r in records)
    out["cpu"] = statistics.median(r["cpu"] for r in records)
    out["peak_rss_mib"] = max(r["peak_rss_mib"] for r in records)
    return out


def print_table(size: int, mode: str, repeats: int, result: dict[str, dict]) -> None:
    this, prev = result["this"], result["prev"]
    columns = (*STAGES, "total", "cpu")
    print(f"\n{size}² {mode}, medians of {repeats} (seconds; ratio = this / previous release)")
    print(f"  {'':>8} " + " ".join(f"{c:>8}" for c in columns) + f" {'peak RSS':>10}")
    for name, row in (("prev", prev), ("this", this)):
        print(f"  {name:>8} " + " ".join(f"{row[c]:8.3f}" for c in columns) + f" {row['peak_rss_mib']:8.0f} MiB")
    ratios = " ".join(f"{this[c] / prev[c]:8.2f}" if prev[c] > 0 else f"{'-':>8}" for c in columns)
    print(f"  {'ratio':>8} {ratios}")


def compare_layers(out_this: Path, out_prev: Path) -> dict[str, str]:
    """Every PNG both trees wrote: the largest per-channel difference in 8-bit steps."""
    import numpy as np
    from PIL import Image

    found = {}
    for path in sorted(Path(out_prev).glob("*.png")):
        other = Path(out_this) / path.name
        if path.name == "sheet.png":
            continue
        if not other.is_file():
            found[path.stem] = "not written (not asked for)"
            continue
        a = np.asarray(Image.open(path), dtype=np.int16)
        b = np.asarray(Image.open(other), dtype=np.int16)
        diff = np.abs(a - b)
        found[path.stem] = f"max {int(diff.max())}/255, {100 * float((diff > 0).mean()):.3f}% of values differ"
    return found


def bench(size: int, mode: str, repeats: int, roots: dict[str, Path], scratch: Path, compare: bool) -> None:
    trees = [Tree(name, root, size, mode, scratch) for name, root in roots.items()]
    try:
        runs = interleaved(trees, repeats)
    finally:
        for tree in trees:
            tree.close()
    print_table(size, mode, repeats, {name: medians(records) for name, records in runs.items()})
    if compare:
        print(f"  layers at {size}², this vs previous release:")
        for layer, text in compare_layers(runs["this"][-1]["out_dir"], runs["prev"][-1]["out_dir"]).items():
            print(f"    {layer:>10}: {text}")


def cli_peak(size: int, roots: dict[str, Path], scratch: Path, repeats: int) -> None:
    """Peak RSS of the real `humantex generate --size S` process (a cold CLI job: photo + IUV -> every layer
    and the contact sheet), each tree's in turn: the memory a user's one-off 4096² job needs."""
    example = REPO.joinpath(*EXAMPLE)
    peaks = {name: [] for name in roots}
    for i in range(repeats):
        for name, root in roots.items() if i % 2 == 0 else reversed(roots.items()):
            command = [sys.executable, "-c", "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True);"
                       " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
                       sys.executable, "-m", "blender_humantex", "generate", "--photo", str(example / "im.jpg"),
                       "--iuv", str(example / "IUV.png"), "--inds", str(example / "INDS.png"), "--size", str(size),
                       "--out", str(scratch / f"cli-{name}-{size}-{i}"), "--quiet"]
            env = {**os.environ, **CHILD_ENV, "PYTHONPATH": str(root)}
            done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=True)
            peaks[name].append(int(done.stdout.split()[-1]) / 1024)
    print(f"\n{size}² `humantex generate` subprocess, peak RSS (MiB, max of {repeats}): "
          + ", ".join(f"{name} {max(v):.0f}" for name, v in peaks.items())
          + f"; ratio {max(peaks['this']) / max(peaks['prev']):.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prev", required="--child" not in sys.argv, help="the previous release's tree")
    parser.add_argument("--sizes", type=int, nargs="*", default=[256, 1024, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--big-repeats", type=int, default=2, help="repeats at 4096²")
    parser.add_argument("--worker", type=int, nargs="*", default=[2048], help="sizes to time the worker at")
    parser.add_argument("--compare", type=int, nargs="*", default=[256, 1024, 2048])
    parser.add_argument("--cold-mapping", action="store_true", help="forget the unwrap's mappings before each job")
    parser.add_argument("--cli-rss", type=int, nargs="*", default=[4096],
                        help="sizes to measure the peak RSS of a real `humantex generate` subprocess at")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="job", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.mode, Path(args.scratch))
    roots = {"prev": Path(args.prev).resolve(), "this": REPO}
    scratch = Path(tempfile.mkdtemp(prefix="bench-roundtrip-"))
    print(f"trees: this {REPO}, previous release {roots['prev']}; one torch thread; scratch {scratch}")
    for size in args.sizes:
        repeats = args.big_repeats if size >= 4096 else args.repeats
        bench(size, "cold" if args.cold_mapping else "job", repeats, roots, scratch, size in args.compare)
    for size in args.worker:
        bench(size, "worker", args.repeats, roots, scratch, False)
    for size in args.cli_rss:
        cli_peak(size, roots, scratch, 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
