"""Ray underneath `humantex batch`: actors that load the weights once, and the loop that feeds them.

    counts = run_on_ray(todo, out_dir, status, Counts(total=len(todo)), workers=2, weights=weights_key(...))
    # todo: [(FarmJob, key)]; status: a status.StatusFile, appended to as jobs finish

Local by default: a Ray started for this run with `workers` CPUs (one single-threaded actor per CPU:
on CPUs, many one-thread processes beat one many-thread process), or an existing cluster (`address`,
e.g. "auto" or "ray://head:10001" after `ray start --head`). On GPUs: one actor per GPU, each running
GPU_BATCH jobs at once so their network passes go through together (execute.BatchingPipeline).

Failures stay local: a job's own error comes back as data and is recorded. A dead actor (killed, out
of memory) is replaced and each job it was running is retried once, then marked failed.
Ctrl+C: the first stops handing out jobs and lets the running ones finish (and be recorded); a second
kills the actors at once (their staging folders are hidden, removed by the next run).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DependencyError, HumantexError, InputError

RAY_PIN = "ray[default]==2.60.0"
INSTALL_HINT = (f"humantex batch runs on Ray, which is not installed in this Python: pip install 'blender_humantex[scale]'"
                f" (or pip install '{RAY_PIN}')")
MAX_ATTEMPTS = 2  # a job whose actor died is retried once
GPU_BATCH = 4  # jobs per GPU actor at once (their network passes batched)
OBJECT_STORE_BYTES = 128 * 1024**2  # results are a few hundred bytes: keep Ray's shared memory small


def import_ray():
    try:
        import ray
    except ImportError:
        raise DependencyError(INSTALL_HINT) from None
    return ray


class FarmActor:
    """One worker process: the pipeline loaded once, jobs run through execute.run_job."""

    def __init__(self, weights_dir, device: str, threads: int, slots: int):
        import torch

        from ..pipeline import Pipeline
        from .execute import BatchingPipeline
        from .status import weights_key

        torch.set_num_threads(max(1, threads))
        self.error = None
        try:
            pipeline = Pipeline(weights_dir=weights_dir, device=device)
            pipeline.load("full")
            self.weights = weights_key(pipeline.weights_dir)
        except HumantexError as e:  # reported by hello(): the batch cannot run at all
            self.error, self.weights, pipeline = str(e), None, None
        self.pipeline = BatchingPipeline(pipeline, slots) if slots > 1 and pipeline else pipeline

    def hello(self) -> dict:
        import socket

        return {"pid": os.getpid(), "host": socket.gethostname(), "weights": self.weights, "error": self.error,
                "device": getattr(self.pipeline, "device", None)}

    def run(self, job_id: str, request, job_dir: str) -> dict:
        from .execute import run_job

        jobs = self.pipeline.job() if hasattr(self.pipeline, "job") else contextlib.nullcontext()
        with jobs:
            return run_job(self.pipeline, job_id, request, job_dir)


@dataclass
class Plan:
    """How the actors are made: where Ray runs, how many actors, and each one's resources."""

    workers: int
    device: str  # what each actor's Pipeline gets ("cpu", "cuda", ...)
    num_cpus: int
    num_gpus: int
    slots: int  # jobs an actor runs at once
    weights_dir: str | None = None
    address: str | None = None


@dataclass
class Counts:
    total: int
    skipped: int = 0  # settled by an earlier run: done, or failed_before
    failed_before: int = 0
    done: int = 0
    failed: int = 0
    retried: int = 0
    running: int = 0
    started: float = field(default_factory=time.monotonic)
    working_since: float | None = None  # the actors are up (Ray's and their start left out of the rate)
    stopping: bool = False


def start_ray(ray, address: str | None, workers: int | None) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if address:
        try:
            ray.init(address=address, **quiet)
        except Exception as e:  # ConnectionError and Ray's own: one line for the user
            raise InputError(f"cannot connect to the Ray cluster at {address}: {' '.join(str(e).split())[:300]}",
                             kind="bad_argument") from None
    else:
        ray.init(num_cpus=workers, object_store_memory=OBJECT_STORE_BYTES, **quiet)


def make_plan(ray, workers: int | None, device: str, weights_dir, address) -> Plan:
    """One actor per GPU (device auto/cuda with GPUs), else one single-thread actor per CPU."""
    resources = ray.cluster_resources()
    cpus, gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
    use_gpu = device.startswith("cuda") or (device == "auto" and gpus > 0)
    if use_gpu:
        if gpus < 1:
            raise InputError(f"--device {device}: the Ray cluster has no GPU", kind="bad_device")
        workers = workers or gpus
        if workers > gpus:
            raise InputError(f"--workers {workers} needs {workers} GPUs; the Ray cluster has {gpus}", kind="bad_argument")
        num_cpus = max(1, min(4, cpus // workers))
        return Plan(workers, "cuda", num_cpus, 1, GPU_BATCH, weights_dir, address)
    workers = workers or cpus
    if workers > cpus:
        raise InputError(f"--workers {workers} needs {workers} CPUs; the Ray cluster has {cpus}", kind="bad_argument")
    return Plan(workers, "cpu" if device == "auto" else device, 1, 0, 1, weights_dir, address)


def last_line(error) -> str:
    """The line of a Ray error that says what happened (its text holds a whole remote traceback)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(error).__name__


class Farm:
    """The actors, kept at `plan.workers`: a dead one is replaced by a fresh one."""

    def __init__(self, ray, plan: Plan, weights: str):
        self.ray, self.plan, self.weights = ray, plan, weights
        self.remote = ray.remote(FarmActor).options(
            num_cpus=plan.num_cpus, num_gpus=plan.num_gpus, max_concurrency=plan.slots, max_restarts=0)
        self.actors = []
        self.info = {}
        for actor in [self._spawn() for _ in range(plan.workers)]:
            self.actors.append(actor)
            try:
                self._greet(actor)
            except ray.exceptions.RayError as e:  # e.g. blender_humantex not installed on a node
                raise HumantexError(f"the batch's workers cannot start on Ray: {last_line(e)} (every node needs"
                                    " `pip install 'blender_humantex[scale]'`)", kind="ray") from None

    def _spawn(self):
        return self.remote.remote(self.plan.weights_dir, self.plan.device, self.plan.num_cpus, self.plan.slots)

    def _greet(self, actor) -> None:
        hello = self.ray.get(actor.hello.remote())
        if hello["error"]:
            raise HumantexError(f"the batch's workers cannot start: {hello['error']}", kind="weights")
        if hello["weights"] != self.weights:
            raise InputError(f"the weights on {hello['host']} differ from this machine's: install the same"
                             " blender_humantex (and --weights) on every node", kind="weights")
        self.info[actor] = hello

    def replace(self, actor):
        """A fresh actor for a dead one (None if the dead one was already replaced)."""
        if actor not in self.actors:
            return None
        with contextlib.suppress(Exception):
            self.ray.kill(actor, no_restart=True)
        fresh = self._spawn()
        self.actors[self.actors.index(actor)] = fresh
        with contextlib.suppress(self.ray.exceptions.RayError):
            self._greet(fresh)
        return fresh

    def kill_all(self) -> None:
        for actor in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor, no_restart=True)


def run_on_ray(todo, out_dir, status, counts: Counts, *, workers=None, device="auto", address=None,
               weights_dir=None, weights: str, progress=None, on_dispatch=None) -> Counts:
    """Run `todo` ([(FarmJob, key)]) on Ray, recording each outcome in `status` (a StatusFile).

    `progress(counts)` is called as jobs finish and about twice a second; `on_dispatch(job_id, attempt,
    actor_info)` when a job is handed to an actor (tests kill that actor's process from it)."""
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        start_ray(ray, address, workers)
    farm = None
    try:
        plan = make_plan(ray, workers, device, weights_dir, address)
        farm = Farm(ray, plan, weights)
        with _stop_on_sigint(counts, progress):
            _Loop(ray, farm, todo, Path(out_dir), status, counts, progress, on_dispatch).run()
    except BaseException:
        if farm is not None:
            farm.kill_all()
        raise
    finally:
        if started_here:
            ray.shutdown()
        elif farm is not None:
            farm.kill_all()
    return counts


@contextlib.contextmanager
def _stop_on_sigint(counts: Counts, progress):
    """First Ctrl+C: stop handing out jobs (running ones finish); second: KeyboardInterrupt, stop now."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if counts.stopping:
            raise KeyboardInterrupt
        counts.stopping = True
        if progress:
            progress(counts)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Loop:
    def __init__(self, ray, farm: Farm, todo, out_dir: Path, status, counts: Counts, progress, on_dispatch):
        self.ray, self.farm, self.out_dir, self.status, self.counts = ray, farm, out_dir, status, counts
        self.pending = collections.deque(todo)
        self.attempts: collections.Counter = collections.Counter()
        self.inflight: dict = {}  # ObjectRef -> (job, key, actor)
        self.progress = progress or (lambda counts: None)
        self.on_dispatch = on_dispatch

    def run(self) -> None:
        last_tick = 0.0
        self.counts.working_since = time.monotonic()
        while self.inflight or (self.pending and not self.counts.stopping):
            if not self.counts.stopping:
                self._dispatch()
            ready, _ = self.ray.wait(list(self.inflight), num_returns=1, timeout=0.5)
            for ref in ready:
                self._finish(ref)
            self.counts.running = len(self.inflight)
            if ready or time.monotonic() - last_tick > 0.5:
                last_tick = time.monotonic()
                self.progress(self.counts)

    def _dispatch(self) -> None:
        for actor in list(self.farm.actors):
            busy = sum(1 for _, _, a in self.inflight.values() if a == actor)
            for _ in range(self.farm.plan.slots - busy):
                if not self.pending:
                    return
                job, key = self.pending.popleft()
                self.attempts[job.id] += 1
                ref = actor.run.remote(job.id, job.request, str(self.out_dir / job.id))
                self.inflight[ref] = (job, key, actor)
                if self.on_dispatch:
                    self.on_dispatch(job.id, self.attempts[job.id], self.farm.info.get(actor, {}))

    def _finish(self, ref) -> None:
        job, key, actor = self.inflight.pop(ref)
        errors = self.ray.exceptions
        died = tuple(getattr(errors, name) for name in ("RayActorError", "WorkerCrashedError", "OutOfMemoryError")
                     if hasattr(errors, name))
        try:
            outcome = self.ray.get(ref)
        except died as e:  # the actor's process is gone (killed, or out of memory): a fresh one, one retry
            self.farm.replace(actor)
            if self.counts.stopping:
                return  # not recorded: the next run does it
            if self.attempts[job.id] < MAX_ATTEMPTS:
                self.counts.retried += 1
                self.pending.appendleft((job, key))
                return
            outcome = {"id": job.id, "status": "failed", "kind": "worker_died", "seconds": None,
                       "error": f"the worker process died {self.attempts[job.id]} times while running this job"
                                f" (killed, or out of memory): {type(e).__name__}"}
        except errors.RayError as e:
            outcome = {"id": job.id, "status": "failed", "kind": "ray", "seconds": None, "error": last_line(e)}
        if outcome["status"] == "interrupted":
            return
        self.status.append({**outcome, "key": key, "attempts": self.attempts[job.id]})
        if outcome["status"] == "done":
            self.counts.done += 1
        else:
            self.counts.failed += 1
