"""The worker server: JSON lines on stdin/stdout, one job at a time, models kept warm.

Threads: a reader thread reads stdin all the time (so `cancel` and `hello` are answered while a job
runs); the main thread runs generate jobs in arrival order. A job is cancelled through its progress
callback, which raises CancelledError at the pipeline's next progress report.

stdout belongs to the protocol alone: at start the real stdout fd is kept for protocol messages and
fd 1 / sys.stdout are pointed at stderr, so a stray print (ours or a library's, Python or C) can only
reach the log, never corrupt the message stream.

Outputs are staged in a hidden folder inside out_dir and moved into place only when the whole job
succeeded, so a cancelled or failed job leaves neither half files nor a half-updated set of layers
(core/outputs.py, shared with the CLI).

torch is imported here only, inside main(), never at module level.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import platform
import queue
import shutil
import sys
import threading
import time
import traceback
from pathlib import Path

from ..core.device import DEVICE_HELP
from ..core.files import DEFAULT_WEIGHTS_DIR
from .protocol import (
    EXIT_IMPORT_FAILED,
    EXIT_NO_TORCH,
    EXIT_OK,
    FATAL_PREFIX,
    INSTALL_HINT,
    PROTOCOL_VERSION,
    REQUEST_TYPES,
    GenerateRequest,
    ProtocolError,
    RequestError,
    decode,
    encode,
)

MIN_TORCH = (2, 1)
MAX_LINE_BYTES = 1 << 20  # a request is a few hundred bytes; anything this long is garbage


def log(message: str) -> None:
    sys.stderr.write(f"[humantex-worker {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fatal(reason: str, code: int) -> int:
    sys.stderr.write(FATAL_PREFIX + one_line(reason, 1000) + "\n")
    sys.stderr.flush()
    return code


def validate_generate(message: dict) -> GenerateRequest:
    """The generate request, checked once here: the job trusts it."""
    if not message.get("id"):
        raise ProtocolError("a generate request needs a non-empty string id")
    return GenerateRequest.from_fields(message, request_id=message["id"])


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, MemoryError):
        return True
    if type(error).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError (and friends)
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


class WorkerServer:
    def __init__(self, proto_out, proto_in, pipeline_factory):
        self._out = proto_out
        self._in = proto_in
        self._out_lock = threading.RLock()  # _stop() may send while a failed send holds it
        self._state_lock = threading.Lock()
        self._jobs: queue.Queue = queue.Queue()
        self._queued: set[str] = set()  # generate ids waiting to run
        self._cancelled: set[str] = set()
        self._current: str | None = None
        self._stopping = False
        self.pipeline = None
        self.startup_error = None
        try:
            self.pipeline = pipeline_factory()
        except Exception as e:  # answered to every hello/generate, so the client sees why
            self.startup_error = e
            log(f"pipeline unavailable: {e}")

    # ---- output -------------------------------------------------------------------------------
    def send(self, message: dict) -> None:
        data = encode(message)
        with self._out_lock:
            try:
                self._out.write(data)
                self._out.flush()
            except (OSError, ValueError):  # the client is gone: stop, nobody is listening
                self._stop(reason="stdout closed")

    def send_error(self, request_id, message: str, kind: str) -> None:
        self.send({"id": request_id, "type": "error", "message": one_line(message), "kind": kind})

    # ---- reader thread ------------------------------------------------------------------------
    def read_requests(self) -> None:
        while True:
            line = self._in.readline(MAX_LINE_BYTES)
            if not line:
                self._stop(reason="stdin closed")
                return
            if not line.endswith(b"\n") and len(line) >= MAX_LINE_BYTES:
                while line and not line.endswith(b"\n"):  # drop the rest of the oversized line
                    line = self._in.readline(MAX_LINE_BYTES)
                self.send_error(None, f"message longer than {MAX_LINE_BYTES} bytes", "bad_request")
                continue
            if not line.strip():
                continue
            message = {}
            try:
                message = decode(line, REQUEST_TYPES)
                if self.handle(message) == "shutdown":
                    return
            except (ProtocolError, RequestError) as e:
                self.send_error(e.request_id, str(e), e.kind)
            except Exception as e:  # a bug must not kill the reader: the worker would go deaf
                log(f"request failed:\n{traceback.format_exc()}")
                self.send_error(message.get("id"), f"internal error: {type(e).__name__}: {e}", "internal")

    def handle(self, message: dict):
        message_type, request_id = message["type"], message.get("id")
        if message_type == "hello":
            self.send(self.hello(request_id))
        elif message_type == "generate":
            request = validate_generate(message)
            with self._state_lock:
                if request_id in self._queued or request_id == self._current:
                    raise ProtocolError(f"job id {request_id!r} is already in use", request_id=request_id)
                if self._stopping:
                    raise ProtocolError(
                        "the worker is shutting down", kind="shutting_down", request_id=request_id
                    )
                self._queued.add(request_id)
            self._jobs.put((request_id, request))
        elif message_type == "cancel":
            target = message.get("target")
            if not isinstance(target, str) or not target:
                raise ProtocolError(
                    "cancel needs a target job id", kind="missing_field", request_id=request_id
                )
            found = self.cancel(target)
            self.send({"id": request_id, "type": "ack", "of": "cancel", "target": target, "found": found})
        elif message_type == "shutdown":
            self.send({"id": request_id, "type": "ack", "of": "shutdown"})
            self._stop(reason="shutdown requested")
            return "shutdown"
        return None

    def hello(self, request_id) -> dict:
        import torch

        reply = {
            "id": request_id,
            "type": "hello",
            "protocol": PROTOCOL_VERSION,
            "version": _package_version(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "executable": sys.executable,
            "pid": os.getpid(),
            "package_path": str(Path(__file__).resolve().parents[1]),
        }
        if self.pipeline is None:
            error = self.startup_error
            return {
                "id": request_id,
                "type": "error",
                "message": one_line(f"the worker cannot run: {error}"),
                "kind": getattr(error, "kind", "startup"),
            }
        reply["device"] = self.pipeline.device
        reply["load_count"] = self.pipeline.load_count
        try:
            reply["weights"] = self.pipeline.weights_info()
        except Exception as e:  # report, don't die: generate will give the full error
            reply["weights"] = None
            reply["weights_error"] = one_line(e)
        return reply

    def cancel(self, target: str) -> bool:
        with self._state_lock:
            if target == self._current:
                self._cancelled.add(target)
                return True
            if target in self._queued:
                self._queued.discard(target)
                self._cancelled.add(target)
                queued = True
            else:
                return False
        if queued:  # never started: answer now rather than after the running job
            self.send_error(target, "cancelled before it started", "cancelled")
        return True

    def _stop(self, reason: str) -> None:
        with self._state_lock:
            if self._stopping:
                return
            self._stopping = True
            log(f"stopping: {reason}")
            if self._current is not None:
                self._cancelled.add(self._current)
            waiting, self._queued = self._queued, set()
            self._cancelled.update(waiting)
        self._jobs.put(None)
        for job_id in sorted(waiting):  # queued jobs never start: tell the client
            self.send_error(job_id, "cancelled: the worker is shutting down", "cancelled")

    # ---- main thread: jobs --------------------------------------------------------------------
    def run_jobs(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job_id, request = item
            with self._state_lock:
                if job_id not in self._queued:  # cancelled while queued (already answered)
                    self._cancelled.discard(job_id)
                    continue
                self._queued.discard(job_id)
                self._current = job_id
            try:
                self.run_job(job_id, request)
            finally:
                with self._state_lock:
                    self._current = None
                    self._cancelled.discard(job_id)

    def run_job(self, job_id: str, request: GenerateRequest) -> None:
        """Run one job and send its one final reply, after its staging folder is gone."""
        started = time.perf_counter()
        out_dir = Path(request.out_dir)
        staging = None
        try:
            from ..core.job import OUTPUT_FILES
            from ..core.outputs import make_staging_dir, prepare_output_dir

            # The same folder checks and all-or-nothing publish as the CLI (core/outputs.py): a
            # file the user made is never replaced, a killed job leaves the previous set whole.
            prepare_output_dir(out_dir, OUTPUT_FILES.values())
            staging = make_staging_dir(out_dir)
            reply = self._generate(job_id, request, staging, out_dir)
            reply["timings"]["worker_job_s"] = time.perf_counter() - started
            log(f"job {job_id} done in {reply['timings']['worker_job_s']:.2f} s")
        except Exception as e:
            reply = self._error_reply(job_id, e)
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
        self.send(reply)

    def _generate(self, job_id: str, request: GenerateRequest, staging: Path, out_dir: Path) -> dict:
        from ..core.errors import CancelledError
        from ..core.job import generate
        from ..core.outputs import publish

        if self.pipeline is None:
            raise self.startup_error
        last = {"stage": None, "fraction": -1.0}

        def progress(stage: str, fraction: float) -> None:
            if job_id in self._cancelled:
                raise CancelledError("cancelled")
            fraction = max(0.0, min(1.0, float(fraction)))
            # Forward stage changes, completions and steps of >= 1%: enough for a progress bar,
            # without flooding the pipe from a tight loop.
            if (
                stage != last["stage"]
                or fraction - last["fraction"] >= 0.01
                or (fraction >= 1.0 > last["fraction"])
            ):
                last["stage"], last["fraction"] = stage, fraction
                self.send({"id": job_id, "type": "progress", "stage": stage, "fraction": round(fraction, 4)})

        report = generate(self.pipeline, dataclasses.replace(request, out_dir=str(staging)), progress=progress)
        if job_id in self._cancelled:  # the cancel arrived after the last progress call
            raise CancelledError("cancelled")
        return {
            "id": job_id,
            "type": "result",
            "outputs": publish(staging, out_dir, report.get("outputs", {})),
            "timings": dict(report.get("timings", {})),
            "meta": report.get("meta", {}),
            "load_count": self.pipeline.load_count,
        }

    def _error_reply(self, job_id: str, error: Exception) -> dict:
        from ..core.errors import HumantexError

        if isinstance(error, HumantexError):
            message, kind = str(error), error.kind
            log(f"job {job_id} ended ({kind}): {message}")
        elif is_out_of_memory(error):
            free_memory()
            device = getattr(self.pipeline, "device", "cpu")
            advice = (
                "close other GPU programs, or use device cpu"
                if device.startswith("cuda")
                else "close other programs"
            )
            message, kind = (
                f"out of memory on {device}: try a smaller output size, or {advice}",
                "out_of_memory",
            )
            log(f"job {job_id}: {error}")
        else:
            tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            log(f"job {job_id} crashed:\n{tb}")
            message, kind = f"internal error: {type(error).__name__}: {error}", "internal"
        return {"id": job_id, "type": "error", "message": one_line(message), "kind": kind}


def free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception as e:  # freeing is best effort; the error reply matters more
        log(f"could not empty the CUDA cache: {e}")


def _package_version() -> str:
    from ..version import __version__

    return __version__


def _take_stdout():
    """Keep the real stdout for protocol messages; send everything else written to fd 1 to stderr."""
    sys.stdout.flush()
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(proto_fd, "wb", buffering=0)


def _check_environment() -> int:
    """EXIT_OK, or print one fatal line and return a distinct exit code for the client."""
    try:
        import torch
    except ImportError as e:
        return fatal(
            f"torch is not installed in this Python ({sys.executable}): {INSTALL_HINT} [{e}]", EXIT_NO_TORCH
        )
    version = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2] if p.isdigit())
    if version < MIN_TORCH:
        return fatal(
            f"torch {torch.__version__} in {sys.executable} is too old (needs {MIN_TORCH[0]}.{MIN_TORCH[1]}+): "
            f"{INSTALL_HINT}",
            EXIT_NO_TORCH,
        )
    try:
        from ..core import pipeline  # noqa: F401  (numpy, safetensors, pillow, ... come with it)
    except ImportError as e:
        return fatal(f"cannot import {e.name or e} in {sys.executable}: {INSTALL_HINT}", EXIT_IMPORT_FAILED)
    return EXIT_OK


def serve(device: str = "auto", weights_dir: str | None = None) -> int:
    proto_out = _take_stdout()
    started = time.perf_counter()
    code = _check_environment()
    if code != EXIT_OK:
        return code
    from ..core.pipeline import Pipeline

    server = WorkerServer(
        proto_out, sys.stdin.buffer, lambda: Pipeline(weights_dir=weights_dir, device=device)
    )
    log(f"ready in {time.perf_counter() - started:.2f} s (pid {os.getpid()}, python {sys.executable})")
    reader = threading.Thread(target=server.read_requests, name="humantex-reader", daemon=True)
    reader.start()
    try:
        server.run_jobs()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    return EXIT_OK


def add_arguments(parser) -> None:
    """The server's flags, shared by `python -m blender_humantex.worker` and `humantex worker`."""
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--weights", default=None, metavar="DIR",
                        help=f"folder with sampler/refiner/lazova.safetensors (default: {DEFAULT_WEIGHTS_DIR})")


def main(argv=None) -> int:
    """`python -m blender_humantex.worker` (what the add-on's client starts)."""
    parser = argparse.ArgumentParser(
        prog="python -m blender_humantex.worker", description="serve JSON-lines requests on stdin/stdout"
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return serve(device=args.device, weights_dir=args.weights)
