"""`humantex batch` throughput: jobs per minute at 512² and 1024², one after another in one process
(what the Blender-side batch does: one worker, weights loaded once) vs Ray with 1 and 2 actors, and
the projection of the same code onto N GPUs (its assumptions printed with it).

    PYTHONPATH=. python benchmarks/bench_batch.py [--sizes 512 1024] [--jobs 4] [--repeats 1]

Every job is the bundled example (examples/densepose_pr99). The three ways are interleaved per size
and repeat, so load from other processes hits them alike; medians are reported. Ray is started once
(num_cpus=2) and not counted; each Ray run counts its actors' start and weights loading. Needs
`pip install 'blender_humantex[scale]'`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from blender_humantex.core.farm.manifest import read_manifest  # noqa: E402
from blender_humantex.core.farm.status import StatusFile, job_key, weights_key  # noqa: E402
from blender_humantex.core.files import DEFAULT_WEIGHTS_DIR  # noqa: E402

EXAMPLE = REPO / "examples" / "densepose_pr99"
WAYS = (("sequential, 1 process", 0), ("Ray, 1 actor", 1), ("Ray, 2 actors", 2))  # (label, Ray actors)
# Projection assumptions (not measured here: this machine has no GPU). See print_projection.
GPU_NET_SPEEDUP = 30.0  # the two networks on one datacenter GPU, batch 4, fp16 vs one CPU thread here
GPU_ACTOR_CPUS = 4  # runner.make_plan gives a GPU actor min(4, CPUs per GPU) CPUs and 4 jobs at once
CPU_EFFICIENCY = 0.75  # unwrap + PNG writing of 4 concurrent jobs on 4 cores (GIL, memory bandwidth)
STORAGE_BYTES_S = 1e9  # shared output storage every node writes to (e.g. NFS): 1 GB/s


def manifest(folder: Path, size: int, count: int) -> list:
    lines = [{"id": f"job{i:03d}", "photo": str(EXAMPLE / "im.jpg"), "iuv": str(EXAMPLE / "IUV.png"),
              "inds": str(EXAMPLE / "INDS.png"), "size": size} for i in range(count)]
    path = folder / f"jobs{size}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return read_manifest(path)


def sequential(jobs, out: Path) -> dict:
    """One pipeline, one thread, jobs one after another (weights loaded once, not counted)."""
    import torch

    from blender_humantex.core.farm.execute import run_job
    from blender_humantex.core.pipeline import Pipeline

    torch.set_num_threads(1)
    pipeline = Pipeline(device="cpu")
    pipeline.load("full")
    started = time.perf_counter()
    outcomes = [run_job(pipeline, job.id, job.request, out / job.id) for job in jobs]
    assert all(o["status"] == "done" for o in outcomes), outcomes
    return {"wall": time.perf_counter() - started, "job_s": [o["seconds"] for o in outcomes]}


def on_ray(jobs, out: Path, workers: int, weights: str) -> dict:
    from blender_humantex.core.farm.runner import Counts, run_on_ray

    status = StatusFile(out)
    started = time.perf_counter()
    counts = run_on_ray([(job, job_key(job.request, weights)) for job in jobs], out, status, Counts(total=len(jobs)),
                        workers=workers, device="cpu", weights=weights)
    assert counts.done == len(jobs), status.records
    return {"wall": time.perf_counter() - started, "job_s": [r["seconds"] for r in status.records.values()]}


def stage_timings(out: Path) -> dict:
    """Median seconds per stage (meta.json's timings) and output bytes per job."""
    metas = [json.loads(p.read_text()) for p in out.glob("*/meta.json")]
    stages = {k: statistics.median(m["timings"][k] for m in metas) for k in metas[0]["timings"]}
    sizes = [sum(f.stat().st_size for f in p.parent.iterdir()) for p in out.glob("*/meta.json")]
    return {"stages": stages, "bytes": statistics.median(sizes)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--jobs", type=int, default=4, help="jobs per run")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=128 * 1024**2)
    print(f"Ray start (not counted below): {time.perf_counter() - t0:.1f} s; {os.cpu_count()} CPUs here, shared")
    weights = weights_key(DEFAULT_WEIGHTS_DIR)
    scratch = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    results, timings = {}, {}
    try:
        for size in args.sizes:
            jobs = manifest(scratch, size, args.jobs)
            for rep in range(args.repeats):
                for k, (name, workers) in enumerate(WAYS):
                    out = scratch / f"out-{size}-{rep}-{k}"
                    run = sequential(jobs, out) if workers == 0 else on_ray(jobs, out, workers, weights)
                    results.setdefault((size, name), []).append(run)
                    timings.setdefault(size, stage_timings(out))
                    shutil.rmtree(out)
        print_table(results, args.jobs)
        print_projection(timings)
    finally:
        ray.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def print_table(results: dict, jobs: int) -> None:
    print(f"\n{jobs} jobs per run; medians over repeats")
    print("jobs/min: end to end (Ray: with its actors' start and weights loading); steady: 60 x lanes / job s")
    print(f"{'size':>5}  {'how':<22} {'jobs/min':>8}  {'steady':>7}  {'wall s':>7}  {'job s (median)':>14}")
    for (size, name), runs in results.items():
        wall = statistics.median(r["wall"] for r in runs)
        job_s = statistics.median(s for r in runs for s in r["job_s"])
        lanes = max(1, dict(WAYS)[name])
        print(f"{size:>5}  {name:<22} {60 * jobs / wall:>8.1f}  {60 * lanes / job_s:>7.1f}  {wall:>7.1f}  {job_s:>14.2f}")


def print_projection(timings: dict) -> None:
    print("\nProjection for N GPUs (same code, one actor per GPU, 4 jobs at once, networks batched). Assumptions:"
          f" networks {GPU_NET_SPEEDUP:g}x faster on a GPU than on one CPU thread here; each GPU actor has"
          f" {GPU_ACTOR_CPUS} CPU cores for unwrap + PNG writing at {CPU_EFFICIENCY:.0%} efficiency;"
          f" outputs to shared storage at {STORAGE_BYTES_S / 1e9:g} GB/s; inputs already on every node.")
    print(f"{'size':>5}  {'CPU s/job':>9}  {'GPU s/job':>9}  {'per GPU jobs/min':>16}  {'N=1':>6}  {'N=8':>7}  {'N=64':>8}"
          "  storage cap jobs/min")
    for size, t in timings.items():
        st = t["stages"]
        cpu_s = st.get("unwrap", 0) + st.get("write", 0)  # per job, on the CPU whatever the device
        gpu_s = (st.get("sample", 0) + st.get("refine", 0)) / GPU_NET_SPEEDUP
        per_gpu = 60 * min(GPU_ACTOR_CPUS * CPU_EFFICIENCY / cpu_s, 1 / max(gpu_s, 1e-9))
        cap = 60 * STORAGE_BYTES_S / t["bytes"]
        row = "  ".join(f"{min(n * per_gpu, cap):>{w}.0f}" for n, w in ((1, 6), (8, 7), (64, 8)))
        print(f"{size:>5}  {cpu_s:>9.2f}  {gpu_s:>9.3f}  {per_gpu:>16.0f}  {row}  {cap:.0f}")


if __name__ == "__main__":
    sys.exit(main())
