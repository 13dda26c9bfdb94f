"""Worker cost: cold start to hello, warm round trip vs the same job in-process, IPC + IO overhead.

    .venv/bin/python benchmarks/bench_worker.py [--size 256] [--repeats 5] [--device cpu] [--weights DIR]

Targets (issue 4): overhead <= 15 % at 256², cold start <= 3 s on CPU. The worker and in-process
jobs are interleaved so that load from other processes hits both alike; medians are reported.
Without --weights it uses the shipped weights, or (if those are not there yet) random-weight files
in the shipped default configs, written to a temp folder: same compute, meaningless pictures.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from blender_humantex.worker.client import WorkerClient  # noqa: E402

SAMPLE = REPO.parent / "shared" / "data" / "densepose_samples" / "densepose_pr99"
KINDS = ("sampler", "refiner", "lazova")


def pick_weights(requested: str | None, scratch: Path) -> tuple[Path, str]:
    if requested:
        return Path(requested), "given"
    shipped = REPO / "blender_humantex" / "weights"
    if all((shipped / f"{kind}.safetensors").is_file() for kind in KINDS):
        return shipped, "shipped"
    from blender_humantex.core.models.config import ModelConfig
    from blender_humantex.core.models.networks import build_model
    from blender_humantex.core.models.weights import save_model

    for kind in KINDS:  # random init, default architecture: for timing only
        save_model(
            build_model(ModelConfig.default(kind)),
            scratch / f"{kind}.safetensors",
            data="random",
            command="bench",
        )
    return scratch, "random-init default configs (shipped weights not found)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cold", type=int, default=3, help="cold starts to time")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights", default=None)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    weights_dir, weights_kind = pick_weights(args.weights, scratch)
    job = {
        "photo": SAMPLE / "im.jpg",
        "iuv": SAMPLE / "IUV.png",
        "inds": SAMPLE / "INDS.png",
        "size": args.size,
    }
    print(
        f"python {sys.executable}\nweights {weights_dir} ({weights_kind})\njob densepose_pr99 at {args.size}²"
    )

    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    torch_import = time.perf_counter() - started
    print(f"  `python -c 'import torch'` alone: {torch_import:.2f} s (the floor under any cold start)")
    cold = []
    for i in range(args.cold):
        client = WorkerClient(
            sys.executable, device=args.device, weights_dir=weights_dir, log_path=scratch / "w.log"
        )
        started = time.perf_counter()
        client.start()
        cold.append(time.perf_counter() - started)
        client.close()
        print(f"  cold start {i + 1}: {cold[-1]:.2f} s")

    from blender_humantex.core.job import generate
    from blender_humantex.core.pipeline import Pipeline

    client = WorkerClient(
        sys.executable, device=args.device, weights_dir=weights_dir, log_path=scratch / "w.log"
    )
    started = time.perf_counter()
    client.run(out_dir=scratch / "warmup-worker", **job)
    first_job = time.perf_counter() - started
    pipeline = Pipeline(weights_dir=weights_dir, device=args.device)
    generate(pipeline, out_dir=scratch / "warmup-inproc", **job)

    round_trips, worker_jobs, pipeline_parts, in_process = [], [], [], []
    for i in range(args.repeats):
        started = time.perf_counter()
        result = client.run(out_dir=scratch / f"worker-{i}", **job)
        round_trips.append(time.perf_counter() - started)
        timings = dict(result["timings"])
        worker_jobs.append(timings.pop("worker_job_s"))
        pipeline_parts.append(sum(timings.values()))  # the pipeline's own stages, inside the worker
        started = time.perf_counter()
        generate(pipeline, out_dir=scratch / f"inproc-{i}", **job)
        in_process.append(time.perf_counter() - started)
    client.close()

    cold_s, trip, inside, local = (statistics.median(v) for v in (cold, round_trips, worker_jobs, in_process))
    # Same-job overhead: round trip minus the pipeline's own stage times in that very job, so
    # load from other processes (which slows both) does not masquerade as overhead.
    ipc = statistics.median(t - w for t, w in zip(round_trips, worker_jobs, strict=True))
    staging = statistics.median(w - p for w, p in zip(worker_jobs, pipeline_parts, strict=True))
    per_job = statistics.median(100.0 * (t - p) / p for t, p in zip(round_trips, pipeline_parts, strict=True))
    overhead = 100.0 * (trip - local) / local
    print(f"cold start to hello:      median {cold_s:.2f} s, min {min(cold):.2f} s   (target <= 3 s on CPU)")
    print(f"first job (loads weights): {first_job:.3f} s")
    print(
        f"warm round trip:          median {trip:.3f} s   (runs: {', '.join(f'{t:.3f}' for t in round_trips)})"
    )
    print(f"  of which in the worker: median {inside:.3f} s   (pipeline + staging/publish)")
    print(
        f"in-process pipeline:      median {local:.3f} s   (runs: {', '.join(f'{t:.3f}' for t in in_process)})"
    )
    print(f"IPC (pipes, JSON, client threads): median {1000 * ipc:.1f} ms per job")
    print(f"staging + publish (worker IO):     median {1000 * staging:.1f} ms per job")
    print(f"IPC + IO overhead, same job:       median {per_job:+.1f} %   (target <= 15 % at 256²)")
    print(
        f"IPC + IO overhead, vs in-process:  {overhead:+.1f} %   (medians of interleaved runs; noisy under load)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
