"""One batch job into DIR/<id>/, exactly as `humantex generate` writes it; no Ray here.

The same folder check, staging folder and all-or-nothing publish as the CLI (core/outputs.py), and the
same job (core/job.py), so a job's files are byte for byte what `humantex generate` writes for the
same inputs and weights (meta.json differs only in its timings).

`BatchingPipeline` lets an actor that runs several jobs at once (threads) send their network passes
through the networks together, one batch per (size, method): the GPU path.
"""

from __future__ import annotations

import contextlib
import threading
import time

import numpy as np

from ..errors import HumantexError
from .adapter import generate


def run_job(pipeline, job_id: str, request, job_dir) -> dict:
    """Generate one job into `job_dir`; the outcome as plain data (never raises for a job's own failure).

    {"id", "status": "done" | "failed" | "interrupted", "error": one line or None, "kind", "seconds"}"""
    from ..job import OUTPUT_FILES
    from ..outputs import prepare_output_dir, publish, staged

    started = time.perf_counter()
    outcome = {"id": job_id, "status": "done", "error": None, "kind": None}
    try:
        out = prepare_output_dir(job_dir, OUTPUT_FILES.values())
        with staged(out) as staging:
            report = generate(pipeline, request, staging)
            publish(staging, out, report["outputs"])
    except HumantexError as e:
        outcome.update(status="failed", error=one_line(str(e)), kind=e.kind)
    except MemoryError:
        outcome.update(status="failed", error="out of memory", kind="out_of_memory")
    except KeyboardInterrupt:  # the batch is stopping; staged() has removed the staging folder
        outcome.update(status="interrupted", error="interrupted", kind="interrupted")
    except Exception as e:  # a bug in one job must not stop the others; reported, not hidden
        outcome.update(status="failed", error=one_line(f"{type(e).__name__}: {e}"), kind="internal")
    outcome["seconds"] = round(time.perf_counter() - started, 3)
    return outcome


def one_line(text: str) -> str:
    return " ".join(str(text).split())


class _Call:
    def __init__(self, partials, visibilities, size, method, dtype):
        self.partials, self.visibilities, self.size, self.method = partials, visibilities, size, method
        self.dtype = dtype  # the layers' dtype (Pipeline.run): calls batch together only with their own kind
        self.result = self.error = None
        self.done = False


class BatchingPipeline:
    """A Pipeline shared by `slots` job threads: concurrent `run` calls of the same (size, method) are
    gathered (until all running jobs wait, `slots` calls wait, or `wait_s` passes) and run as one batch.
    Everything else is the wrapped pipeline's. A batch that fails is rerun call by call, so one bad
    texture fails only its own job."""

    # How long a network pass waits for others to join it: a GPU pass takes tens of ms, a job's CPU
    # work (reading, unwrapping, writing) about a second, so a short wait batches jobs that are close.
    def __init__(self, pipeline, slots: int, wait_s: float = 0.25):
        self._pipeline, self.slots, self.wait_s = pipeline, max(1, int(slots)), wait_s
        self._cond = threading.Condition()
        self._waiting: list[_Call] = []
        self._active = 0  # jobs running in this actor (each may come to wait here)
        self._load_lock = threading.Lock()
        self.batches: list[int] = []  # sizes of the batches run, for tests and benchmarks

    def __getattr__(self, name):
        return getattr(self._pipeline, name)

    def load(self, method: str = "full") -> None:
        with self._load_lock:  # two first jobs must not load the same networks twice
            self._pipeline.load(method)

    @contextlib.contextmanager
    def job(self):
        with self._cond:
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def run(self, partials, visibilities, size=None, method="full", progress=None, dtype=np.float32):
        call = _Call(list(partials), list(visibilities), size, method, dtype)
        deadline = time.monotonic() + self.wait_s
        batch = None
        with self._cond:
            self._waiting.append(call)
            self._cond.notify_all()
            while not call.done and batch is None:
                if call in self._waiting:  # not yet taken into another call's batch
                    group = [c for c in self._waiting if (c.size, c.method, c.dtype) == (size, method, dtype)]
                    ready = len(group) >= self.slots or len(self._waiting) >= self._active or time.monotonic() >= deadline
                    if group[0] is call and ready:
                        batch = group[: self.slots]
                        self._waiting = [c for c in self._waiting if c not in batch]
                        break
                self._cond.wait(timeout=max(0.005, deadline - time.monotonic()))
        if batch is not None:
            self._run_batch(batch)
        if call.error is not None:
            raise call.error
        if progress:
            progress("refine", 1.0)
        return call.result

    def _run_batch(self, batch: list[_Call]) -> None:
        partials = [p for c in batch for p in c.partials]
        visibilities = [v for c in batch for v in c.visibilities]
        try:
            results, timings = self._pipeline.run(partials, visibilities, size=batch[0].size, method=batch[0].method,
                                                  dtype=batch[0].dtype)
            self.batches.append(len(batch))
            k = 0
            for c in batch:
                c.result, k = (results[k : k + len(c.partials)], dict(timings)), k + len(c.partials)
        except Exception:
            if len(batch) == 1:
                raise
            for c in batch:  # one bad texture must fail only its own job
                try:
                    c.result = self._pipeline.run(c.partials, c.visibilities, size=c.size, method=c.method, dtype=c.dtype)
                except Exception as e:  # handed to that job's thread, which raises it
                    c.error = e
        with self._cond:
            for c in batch:
                c.done = True
            self._cond.notify_all()
