"""The worker's model requests: status, fetch (download) and install of the DensePose model file.

They let the add-on show whether the model is there and get it without blocking Blender: the
worker does the download (core/densepose/store.py: pinned revision, SHA-256, atomic), sends
progress replies, and stops at the next chunk when the client sends `cancel` for it. Each fetch or
install runs in its own thread, so a download never holds up a generate job (and one never waits
for the other). Only one fetch/install per model at a time.

    model_status  {model}                  -> result {model: {installed, path?, found_by?, message?, size_mb,
                                                             licence, file_name, cache_dir, worker_dir}}
    model_fetch   {model, into?, force?}   -> progress* {stage: "download", fraction, done_bytes, total_bytes},
                                              then result {model: <status>, path, fetched} | error
    model_install {model, file, into?}     -> progress* {stage: "install", ...}, then result | error

`into` is "cache" (default: the user's cache, found by every worker environment) or "worker"
(this environment's models folder). Standard library only, besides core.densepose.store.
"""

from __future__ import annotations

import threading

from .protocol import ProtocolError

MODEL_REQUESTS = ("model_status", "model_fetch", "model_install")
PROGRESS_STEP = 0.005  # forward a progress reply per half percent at most (265 MB: ~200 replies)


def model_status(name: str) -> dict:
    from ..core.densepose import store

    spec = _spec(name)
    return dict(store.status(spec), file_name=spec.file_name, cache_dir=str(store.user_cache_dir()),
                worker_dir=str(store.worker_models_dir()))


def _spec(name):
    from ..core.densepose import store

    if name not in store.MODELS:
        raise ProtocolError(f"unknown model {name!r} (known: {', '.join(sorted(store.MODELS))})", kind="bad_request")
    return store.MODELS[name]


class ModelRequests:
    """Runs model requests for a WorkerServer: `handle` on the reader thread, the work on its own thread."""

    def __init__(self, send, send_error, error_reply):
        self._send, self._send_error, self._error_reply = send, send_error, error_reply
        self._lock = threading.Lock()
        self._running: dict[str, tuple[str, threading.Event]] = {}  # request id -> (model, cancel event)

    def handle(self, message: dict) -> None:
        kind, request_id = message["type"], message.get("id")
        if not request_id:
            raise ProtocolError(f"a {kind} request needs a non-empty string id")
        name = message.get("model", "densepose")
        _spec(name)
        if kind == "model_status":
            self._send({"id": request_id, "type": "result", "model": model_status(name)})
            return
        if kind == "model_install" and not isinstance(message.get("file"), str):
            raise ProtocolError("model_install needs file (a path)", kind="missing_field", request_id=request_id)
        cancel = threading.Event()
        with self._lock:
            if any(model == name for model, _ in self._running.values()):
                raise ProtocolError(f"a fetch or install of {name} is already running", kind="busy",
                                    request_id=request_id)
            self._running[request_id] = (name, cancel)
        threading.Thread(target=self._run, args=(request_id, message, cancel), name=f"humantex-{kind}",
                         daemon=True).start()

    def cancel(self, target: str) -> bool:
        with self._lock:
            running = self._running.get(target)
        if running is not None:
            running[1].set()
        return running is not None

    def cancel_all(self) -> None:
        with self._lock:
            events = [event for _, event in self._running.values()]
        for event in events:
            event.set()

    def _run(self, request_id: str, message: dict, cancel: threading.Event) -> None:
        from ..core.densepose import store

        name, into = message.get("model", "densepose"), message.get("into", "cache")
        stage = "download" if message["type"] == "model_fetch" else "install"
        progress = self._progress(request_id, stage, cancel)
        try:
            spec = _spec(name)
            if message["type"] == "model_fetch":
                path, fetched = store.fetch(spec, folder=into, progress=progress, force=bool(message.get("force")))
            else:
                path, fetched = store.install(message["file"], spec, folder=into, progress=progress), True
            reply = {"id": request_id, "type": "result", "model": model_status(name), "path": str(path),
                     "fetched": fetched}
        except Exception as e:
            reply = self._error_reply(request_id, e)
        finally:
            with self._lock:
                self._running.pop(request_id, None)
        self._send(reply)

    def _progress(self, request_id: str, stage: str, cancel: threading.Event):
        from ..core.errors import CancelledError

        last = [-1.0]

        def progress(done: int, total) -> None:
            if cancel.is_set():
                raise CancelledError("cancelled")
            fraction = done / total if total else 0.0
            if fraction - last[0] >= PROGRESS_STEP or fraction >= 1.0 > last[0]:
                last[0] = fraction
                self._send({"id": request_id, "type": "progress", "stage": stage, "fraction": round(fraction, 4),
                            "done_bytes": done, "total_bytes": total})

        return progress
