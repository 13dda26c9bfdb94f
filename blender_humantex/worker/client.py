"""The client side of the worker: spawn it, talk JSON lines to it, survive it dying.

Standard library only: Blender's Python imports this module and must never see torch or bpy.

    client = get_client("/path/to/worker-venv/bin/python")      # warm worker, reused
    job = client.submit(GenerateRequest(photo=..., iuv=..., size=1024, out_dir=...))  # or the fields as keywords
    ...  job.poll() from a modal operator's timer; job.done / job.cancelled / job.failed; job.result / job.error
    result = client.run(photo=..., iuv=..., out_dir=..., progress=print)   # blocking, for blender -b

Every failure is a WorkerError whose `message` is one line for a human and whose `kind` is
machine-readable (the worker's own kinds, plus "bad_interpreter", "dependency", "protocol_mismatch",
"worker_died", "worker_closed", "timeout").

A reader thread per worker process routes replies to their jobs and updates job state as they
arrive, so `Job.done`, `Job.wait()` and `Job.state` never depend on someone calling poll();
poll() hands out the events not yet seen, for a progress display.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
import weakref
from pathlib import Path

from .protocol import (
    EXIT_IMPORT_FAILED,
    EXIT_NO_TORCH,
    EXIT_PYTHON_TOO_OLD,
    FATAL_PREFIX,
    INSTALL_HINT,
    MIN_PYTHON,
    PROTOCOL_VERSION,
    REPLY_TYPES,
    GenerateRequest,
    ProtocolError,
    RequestError,
    decode,
    encode,
    generate_message,
)

SHUTDOWN_GRACE_S = 5.0  # a clean shutdown cancels the running job at its next progress report
MAX_PENDING_EVENTS = 2000  # events kept for poll() when nobody polls (wait() users)


class WorkerError(Exception):
    def __init__(self, message: str, kind: str = "error"):
        super().__init__(message)
        self.message = " ".join(str(message).split())
        self.kind = kind

    def __str__(self) -> str:
        return self.message


class Job:
    """One generate request, used like a future: `done`, then `cancelled` or `failed` (with `error`,
    a WorkerError) or neither (with `result`, plain data); `wait()`, `cancel()`, and `poll()` for progress.

    `state` says the same in one word ("running", "done", "cancelled", "error"). State changes arrive
    from the connection's reader thread (`_deliver`, `_fail`: this module only).
    """

    def __init__(self, client: WorkerClient, job_id: str, log_offset: int = 0):
        self._client = client
        self.id = job_id
        self.state = "running"
        self.stage = ""
        self.fraction = 0.0
        self.result: dict | None = None
        self.error: WorkerError | None = None
        self.log_offset = log_offset  # the worker log's size at submit: a crash report quotes this job's lines only
        self._changed = threading.Condition()
        self._pending: list[dict] = []

    @property
    def done(self) -> bool:
        """Ended, one way or another (finished, cancelled or failed)."""
        return self.state != "running"

    @property
    def cancelled(self) -> bool:
        return self.state == "cancelled"

    @property
    def failed(self) -> bool:
        """Ended with an error other than a cancel (see `error`)."""
        return self.state == "error"

    def _deliver(self, message: dict) -> None:
        with self._changed:
            if self.done:  # e.g. a late reply after the job was already failed as worker_died
                return
            kind = message.get("type")
            if kind == "progress":
                self.stage = str(message.get("stage", ""))
                self.fraction = float(message.get("fraction", 0.0))
            elif kind == "result":
                self.result = {k: v for k, v in message.items() if k not in ("id", "type")}
                self.fraction = 1.0
                self.state = "done"
            elif kind == "error":
                self.error = WorkerError(
                    message.get("message", "unknown error"), message.get("kind", "error")
                )
                self.state = "cancelled" if self.error.kind == "cancelled" else "error"
            else:
                return
            self._pending.append(message)
            del self._pending[:-MAX_PENDING_EVENTS]
            self._changed.notify_all()

    def _fail(self, message: str, kind: str) -> None:
        self._deliver({"id": self.id, "type": "error", "message": message, "kind": kind})

    def poll(self) -> list[dict]:
        """The events (progress, result, error) that arrived since the last poll. Never blocks."""
        with self._changed:
            events, self._pending = self._pending, []
        return events

    def wait_for_event(self, timeout: float | None = None) -> None:
        """Block until an event is waiting for poll() or the job has ended (or `timeout` s passed)."""
        with self._changed:
            self._changed.wait_for(lambda: self._pending or self.done, timeout)

    def cancel(self) -> None:
        if not self.done:
            self._client.cancel(self.id)

    def wait(self, timeout: float | None = None) -> dict:
        """Block until the job ends; its result, or WorkerError (error, cancelled, or timeout).
        A timeout here does not cancel the job: the caller may keep waiting or cancel it."""
        with self._changed:
            finished = self._changed.wait_for(lambda: self.done, timeout)
        if not finished:
            raise WorkerError(f"job {self.id} still running after {timeout:g} s", "timeout")
        if self.state == "done":
            return self.result
        raise self.error


class _Connection:
    """One worker process: its pipes, its reader thread, and the requests waiting on it."""

    def __init__(self, proc: subprocess.Popen, log_file, log_path: str, log_offset: int, python: str):
        self.proc = proc
        self.log_file = log_file
        self.log_path = log_path
        self.log_offset = log_offset
        self.python = python
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.jobs: dict[str, Job] = {}
        self.replies: dict[str, list] = {}  # request id -> the replies to it so far (hello)
        self.replied = threading.Condition(self.lock)
        self.stray_lines: list[str] = []  # stdout lines that are not protocol messages
        self.dead = False
        self.closing = False
        self.reader = threading.Thread(target=self._read, name="humantex-worker-reader", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        stream = self.proc.stdout
        try:
            for line in iter(stream.readline, b""):
                if not line.strip():
                    continue
                try:
                    message = decode(line, REPLY_TYPES)
                except ProtocolError:
                    if len(self.stray_lines) < 5:
                        self.stray_lines.append(line.decode("utf-8", "replace").strip()[:200])
                    continue
                self._route(message)
        except (OSError, ValueError):
            pass  # pipe closed under us: same as EOF
        try:
            self.proc.wait(timeout=10)  # reap it: no zombies
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with self.lock:
            self.dead = True
            running = [job for job in self.jobs.values() if not job.done]
            self.replied.notify_all()
        if running:
            if self.closing:
                reason, kind = "the worker was shut down before the job finished", "worker_closed"
            else:
                reason, kind = f"the worker process {self.describe_exit()} during the job", "worker_died"
            tail = self.last_log_line(min(job.log_offset for job in running))
            message = f"{reason}{f' (last log line: {tail})' if tail else ''}; log: {self.log_path}"
            for job in running:
                job._fail(message, kind)

    def _route(self, message: dict) -> None:
        request_id = message.get("id")
        with self.lock:
            job = self.jobs.get(request_id)
            if job is None and request_id in self.replies:
                self.replies[request_id].append(message)
                self.replied.notify_all()
                return
        if job is not None:
            job._deliver(message)

    def send(self, message: dict) -> None:
        data = encode(message)
        with self.write_lock:
            try:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
            except (OSError, ValueError):
                raise WorkerError(
                    f"the worker process {self.describe_exit()}; log: {self.log_path}", "worker_died"
                ) from None

    def request(self, message: dict, timeout: float) -> dict | None:
        """Send and wait for the reply with the same id; None if the worker died first."""
        with self.lock:
            self.replies[message["id"]] = []
        try:
            self.send(message)
            with self.lock:
                got = self.replied.wait_for(lambda: self.replies[message["id"]] or self.dead, timeout)
                if not got:
                    raise WorkerError(
                        f"the worker did not answer {message['type']!r} within {timeout:g} s; log: {self.log_path}",
                        "timeout",
                    )
                answers = self.replies[message["id"]]
                return answers[0] if answers else None
        finally:
            with self.lock:
                self.replies.pop(message["id"], None)

    def describe_exit(self) -> str:
        code = self.proc.poll()
        if code is None:
            return "stopped answering"
        if code < 0:
            return f"was killed by signal {-code}"
        return f"exited with code {code}"

    def log_size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_text(self, since: int | None = None) -> str:
        """What the worker logged since it started (or since byte `since`)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(self.log_offset, since or 0))
                return f.read(1 << 20).decode("utf-8", "replace")
        except OSError:
            return ""

    def last_log_line(self, since: int | None = None) -> str:
        lines = [line.strip() for line in self.log_text(since).splitlines() if line.strip()]
        fatal = [line for line in lines if line.startswith(FATAL_PREFIX)]
        if fatal:
            return fatal[-1][len(FATAL_PREFIX) :]
        return lines[-1][:300] if lines else ""

    def shutdown(self, grace: float) -> None:
        self.closing = True
        if self.proc.poll() is None:
            try:
                self.send({"id": f"shutdown-{uuid.uuid4().hex[:8]}", "type": "shutdown"})
            except WorkerError:
                pass
        try:
            self.proc.stdin.close()  # EOF also tells the worker to stop
        except OSError:
            pass
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)
        try:
            self.proc.stdout.close()
        except OSError:
            pass
        self.log_file.close()


class WorkerClient:
    def __init__(self, python: str, *, device="auto", weights_dir=None, startup_timeout=120.0, log_path=None):
        self.python = str(python)
        self.device = device
        self.weights_dir = None if weights_dir is None else os.path.abspath(os.fspath(weights_dir))
        self.startup_timeout = float(startup_timeout)
        self.log_path = os.fspath(log_path) if log_path else None
        self._lock = threading.RLock()
        self._conn: _Connection | None = None
        self._hello: dict | None = None
        atexit.register(_close_if_alive, weakref.ref(self))

    # ---- lifecycle ------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        conn = self._conn
        return conn is not None and not conn.dead and conn.proc.poll() is None

    def start(self) -> dict:
        """Spawn the worker and handshake (once); the worker's hello."""
        with self._lock:
            if self.alive and self._hello is not None:
                return self._hello
            self._discard_connection()
            conn = self._spawn()
            try:
                hello = self._handshake(conn)
            except BaseException:
                self._conn = conn
                self._discard_connection()
                raise
            self._conn, self._hello = conn, hello
            return hello

    def hello(self) -> dict:
        return self.start()

    def close(self) -> None:
        """Shut the worker down (cancelling its job), wait for it, kill it if it will not go."""
        with self._lock:
            self._discard_connection(grace=SHUTDOWN_GRACE_S)

    def _discard_connection(self, grace: float = 0.5) -> None:
        conn, self._conn, self._hello = self._conn, None, None
        if conn is not None:
            conn.shutdown(grace)

    def _spawn(self) -> _Connection:
        executable = self._find_python()
        command = [executable, "-m", "blender_humantex.worker", "--device", str(self.device)]
        if self.weights_dir:
            command += ["--weights", self.weights_dir]
        root = package_root()
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP")}
        # Only this package's folder: an inherited PYTHONPATH (say, Blender's own site-packages) could
        # shadow the worker environment's numpy or torch with builds for another Python.
        env.update(PYTHONPATH=root, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
        log_path = self.log_path or _default_log_path()
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        log_file = open(log_path, "ab")
        log_file.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(command)}\n".encode())
        log_file.flush()
        log_offset = log_file.tell()
        extra = {"start_new_session": True} if os.name == "posix" else {"creationflags": 0x08000000}
        try:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,  # a file, not a pipe: a chatty worker can never block on a full pipe
                cwd=root,  # `-m` puts the cwd first on sys.path: make it this package's folder
                env=env,
                close_fds=True,
                **extra,
            )
        except OSError as e:
            log_file.close()
            raise WorkerError(
                f"cannot run the worker Python {self.python!r}: {e.strerror or e}. "
                f"Choose a Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]}+ environment with {INSTALL_HINT}",
                "bad_interpreter",
            ) from None
        return _Connection(proc, log_file, log_path, log_offset, self.python)

    def _find_python(self) -> str:
        python = os.path.expanduser(self.python)
        found = python if os.sep in python or (os.altsep and os.altsep in python) else shutil.which(python)
        if not found or not os.path.isfile(found):
            raise WorkerError(
                f"worker Python not found: {self.python!r}. Point it at the python of an environment "
                f"with {INSTALL_HINT}",
                "bad_interpreter",
            )
        if not os.access(found, os.X_OK):
            raise WorkerError(f"worker Python {self.python!r} is not executable", "bad_interpreter")
        return found

    def _handshake(self, conn: _Connection) -> dict:
        try:
            reply = conn.request(
                {"id": f"hello-{uuid.uuid4().hex[:8]}", "type": "hello"}, self.startup_timeout
            )
        except WorkerError as e:
            if e.kind != "worker_died":
                raise
            reply = None
        if reply is None:  # the process ended before answering: say why
            try:
                conn.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            conn.reader.join(timeout=5)
            raise self._startup_failure(conn)
        if reply.get("type") == "error":
            raise WorkerError(reply.get("message", "the worker refused to start"), reply.get("kind", "error"))
        if reply.get("type") != "hello" or not isinstance(reply.get("protocol"), int):
            raise WorkerError(
                f"{self.python!r} does not answer like a humantex worker (got {str(reply)[:120]})",
                "bad_interpreter",
            )
        if reply["protocol"] != PROTOCOL_VERSION:
            raise WorkerError(
                f"the worker speaks protocol {reply['protocol']} (package {reply.get('version')}), this add-on "
                f"needs {PROTOCOL_VERSION}: install the same blender_humantex version in the worker environment",
                "protocol_mismatch",
            )
        return {k: v for k, v in reply.items() if k not in ("id", "type")}

    def _startup_failure(self, conn: _Connection) -> WorkerError:
        code = conn.proc.poll()
        detail = conn.last_log_line()
        where = f"see {conn.log_path}"
        if code in (EXIT_NO_TORCH, EXIT_IMPORT_FAILED):
            return WorkerError(
                f"{detail or 'the worker environment misses a package'} ({where})", "dependency"
            )
        if code == EXIT_PYTHON_TOO_OLD:
            return WorkerError(f"{detail} ({where})", "bad_interpreter")
        if conn.stray_lines:
            return WorkerError(
                f"{self.python!r} is not a Python that runs the humantex worker (it printed "
                f"{conn.stray_lines[0][:80]!r}). Choose a Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]}+ with {INSTALL_HINT}",
                "bad_interpreter",
            )
        return WorkerError(
            f"the worker {conn.describe_exit()} before answering"
            f"{f' ({detail})' if detail else ''}. Is {self.python!r} a Python "
            f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]}+ with {INSTALL_HINT}? ({where})",
            "bad_interpreter",
        )

    # ---- jobs ---------------------------------------------------------------------------------
    def submit(self, request: GenerateRequest | None = None, **fields) -> Job:
        """Send a generate request (a checked GenerateRequest, or its fields as keywords, checked here);
        returns at once. (Re)starts the worker if it is not running. Relative paths are made absolute here."""
        try:
            if request is None:
                request = GenerateRequest.from_fields(fields)
            elif fields:
                raise ProtocolError("pass a GenerateRequest or keyword fields, not both")
        except (ProtocolError, RequestError) as e:
            raise WorkerError(str(e), e.kind) from None
        message = generate_message(request.with_absolute_paths(), None)
        with self._lock:
            self.start()
            conn = self._conn
            job = Job(self, uuid.uuid4().hex[:12], log_offset=conn.log_size())
            message["id"] = job.id
            with conn.lock:
                dead = conn.dead  # died since start(): its reader has already failed its jobs
                conn.jobs[job.id] = job
            try:
                if dead:
                    raise WorkerError(
                        f"the worker process {conn.describe_exit()}; log: {conn.log_path}", "worker_died"
                    )
                conn.send(message)
            except WorkerError as e:
                job._fail(e.message, e.kind)
        return job

    def run(self, request: GenerateRequest | None = None, progress=None, timeout=None, **fields) -> dict:
        """Submit and block until done, calling progress(stage, fraction) in this thread.
        On timeout (or an exception from progress, or Ctrl+C) the job is cancelled."""
        job = self.submit(request, **fields)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise WorkerError(f"the job did not finish within {timeout:g} s (cancelled)", "timeout")
                job.wait_for_event(remaining)
                for event in job.poll():
                    if progress is not None and event.get("type") == "progress":
                        progress(event["stage"], event["fraction"])
                if job.done:
                    break
        except BaseException:
            job.cancel()
            raise
        return job.wait()

    def cancel(self, job_id: str) -> None:
        """Ask the worker to cancel a job; the job then ends with kind "cancelled"."""
        conn = self._conn
        if conn is None or conn.dead:
            return
        with conn.lock:
            job = conn.jobs.get(job_id)
        if job is None or job.done:
            return
        try:
            conn.send({"id": f"cancel-{uuid.uuid4().hex[:8]}", "type": "cancel", "target": job_id})
        except WorkerError:
            pass  # the reader thread fails the job as worker_died


_PACKAGE_ROOT: str | None = None
_SHIM_DIRS: list[str] = []


def package_root() -> str:
    """The folder that contains this `blender_humantex` package, for the worker's PYTHONPATH.

    In a checkout or an installed Blender extension the package folder is named blender_humantex
    already; if it is not, a temporary folder with a link of that name stands in."""
    global _PACKAGE_ROOT
    if _PACKAGE_ROOT is None:
        package_dir = Path(__file__).resolve().parents[1]
        if package_dir.name == "blender_humantex":
            _PACKAGE_ROOT = str(package_dir.parent)
        else:
            shim = tempfile.mkdtemp(prefix="humantex-pkg-")
            _SHIM_DIRS.append(shim)
            link = Path(shim) / "blender_humantex"
            try:
                link.symlink_to(package_dir, target_is_directory=True)
            except OSError:  # no symlinks (Windows without developer mode): copy the code
                shutil.copytree(package_dir, link, ignore=shutil.ignore_patterns("__pycache__"))
            _PACKAGE_ROOT = shim
    return _PACKAGE_ROOT


def _default_log_path() -> str:
    return os.path.join(tempfile.gettempdir(), f"humantex-worker-{os.getpid()}.log")


def _close_if_alive(client_ref) -> None:
    client = client_ref()
    if client is not None:
        client.close()


def _remove_shims() -> None:
    for shim in _SHIM_DIRS:
        shutil.rmtree(shim, ignore_errors=True)


atexit.register(_remove_shims)

_CACHED: dict = {}
_CACHED_LOCK = threading.Lock()


def get_client(python, *, device="auto", weights_dir=None) -> WorkerClient:
    """The process-wide client for these settings, so the add-on reuses a warm worker. Asking with
    different settings closes the previous worker first: one model-holding process at a time."""
    key = (str(python), str(device), None if weights_dir is None else os.path.abspath(os.fspath(weights_dir)))
    with _CACHED_LOCK:
        client = _CACHED.get(key)
        if client is None:
            for old in _CACHED.values():
                old.close()
            _CACHED.clear()
            client = _CACHED[key] = WorkerClient(python, device=device, weights_dir=weights_dir)
        return client
