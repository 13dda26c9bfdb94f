"""The DensePose model in the add-on: whether the worker has it, and the two ways to get it
(the operators are model_ops.py's).

The worker does the work (worker/models.py: model_status, model_fetch, model_install; pinned
revision, SHA-256, atomic, progress, cancel); the add-on asks and shows. The status is asked by
Check Worker and after a fetch or install, and cached here (asking means starting the worker, which
a panel's draw must never do).

A fetch or install is a `ModelTask`: in a Blender window a `bpy.app.timers` callback drains it
(run_on_timer), so the UI never waits; in `-b` and the bpy module timers never fire, so the
operator waits for it (ModelTask.wait, the synchronous path). Blender's extension rules: the Download button exists only while
`bpy.app.online_access` is true; "Install from File…" always works.
"""

from __future__ import annotations

import bpy

MODEL = "densepose"
SIZE_MB = 265  # the pinned export's size, for the button (the worker's status says it too)
TICK_S = 0.2
FETCH_COMMAND = f"humantex models fetch {MODEL}"
ONLINE_OFF = ("Online access is off (Preferences > System > Network): no download from Blender; use Install"
              " from File… or `" + FETCH_COMMAND + "`")

# What the add-on knows about the worker's model: None until asked; else the worker's model_status answer.
_status: dict = {"model": None, "last": "", "last_ok": True}
_task = None  # the running ModelTask, at most one


def online_access() -> bool:
    return bool(getattr(bpy.app, "online_access", True))  # Blender < 4.2 has no such switch


def cached_status() -> dict | None:
    return _status["model"]


def set_status(model: dict | None) -> None:
    _status["model"] = model


def installed() -> bool | None:
    """True/False from the last answer, None when the worker has not been asked yet."""
    model = _status["model"]
    return None if model is None else bool(model.get("installed"))


def refresh_status(client) -> dict:
    """Ask the worker (starting it if needed) and cache its answer."""
    model = client.model_status(MODEL)
    set_status(model)
    return model


def no_model_message(online: bool | None = None) -> str:
    """One line: no model, and the ways to get it that this Blender allows."""
    online = online_access() if online is None else online
    ways = (f"Download model ({SIZE_MB} MB) or Install from File…" if online
            else "Install from File… (online access is off, so no download)")
    return (f"No DensePose model: Preferences > Add-ons > HumanTex > {ways}, or run `{FETCH_COMMAND}`;"
            " or choose an IUV file")


def user_message(error) -> str:
    """The add-on's one line for a worker error: a missing model says how to get it in Blender (and the
    cached status learns that it is missing, so the panel says so too)."""
    if getattr(error, "kind", "") == "no_model" and "(from " not in str(error):
        set_status({"installed": False, "message": str(error)})
        return no_model_message()
    return str(error)


def model_rows(status: dict | None, online: bool, task=None) -> list[tuple]:
    """What the preferences show about the model, as (kind, value) rows: ("status", icon, text),
    ("progress", fraction, text), ("operator", idname, text), ("note", icon, text). Plain data, so
    tests can drive it with online access on and off (bpy.app.online_access is read-only)."""
    rows = []
    if status is None:
        rows.append(("status", "QUESTION", "DensePose model: not checked yet (press Check Worker)"))
    elif status.get("installed"):
        rows.append(("status", "CHECKMARK", f"DensePose model installed: {status.get('path', '')}"))
    else:
        rows.append(("status", "ERROR", "DensePose model not installed: a photo alone needs it"))
    if task is not None:
        rows.append(("progress", task.fraction, task.progress_text))
        rows.append(("operator", "humantex.model_cancel", "Cancel"))
        return rows
    if online:
        rows.append(("operator", "humantex.model_download", f"Download model ({SIZE_MB} MB)"))
    else:
        rows.append(("note", "INFO", ONLINE_OFF))
    rows.append(("operator", "humantex.model_install", "Install from File…"))
    return rows


def draw_model_section(layout, context) -> None:
    from .text import draw_message

    box = layout.box()
    for row in model_rows(cached_status(), online_access(), _task):
        if row[0] == "status":
            draw_message(box, context, row[2], icon=row[1], alert=row[1] == "ERROR")
        elif row[0] == "progress":
            box.progress(factor=row[1], type="BAR", text=row[2])
        elif row[0] == "operator":
            box.operator(row[1], text=row[2], icon={"humantex.model_cancel": "CANCEL",
                                                    "humantex.model_download": "IMPORT"}.get(row[1], "FILEBROWSER"))
        else:
            draw_message(box, context, row[2], icon=row[1])
    if _status["last"]:
        draw_message(box, context, _status["last"], icon="CHECKMARK" if _status["last_ok"] else "ERROR",
                     alert=not _status["last_ok"])


class ModelTask:
    """One fetch ("download") or install of the model, running in the worker as a Job."""

    def __init__(self, what: str, job):
        self.what, self.job = what, job
        self.done_bytes, self.total_bytes = 0, None
        self.cancelling = False

    @property
    def fraction(self) -> float:
        return self.done_bytes / self.total_bytes if self.total_bytes else 0.0

    @property
    def progress_text(self) -> str:
        if self.cancelling:
            return "Cancelling…"
        verb = "Downloading" if self.what == "download" else "Checking and copying"
        total = f" of {self.total_bytes / 1e6:.0f} MB" if self.total_bytes else " MB"
        return f"{verb} {self.done_bytes / 1e6:.1f}{total}"

    def tick(self) -> str:
        """Drain the job's events without waiting; its state in one word."""
        for event in self.job.poll():
            if event.get("type") == "progress":
                self.done_bytes = int(event.get("done_bytes") or 0)
                self.total_bytes = event.get("total_bytes") or self.total_bytes
        return self.job.state

    def cancel(self) -> None:
        if not self.job.done:
            self.cancelling = True
            self.job.cancel()

    def wait(self, log=None) -> str:
        """The synchronous path (`-b`, the bpy module, scripts): block until the job ends."""
        shown = -1
        while self.tick() == "running":
            self.job.wait_for_event(1.0)
            if log is not None and int(10 * self.fraction) != shown:
                shown = int(10 * self.fraction)
                log(self.progress_text)
        return self.tick()

    def finish(self) -> tuple[bool, str]:
        """Cache what the worker now has; (ok, the one line to show)."""
        if self.job.state == "done":
            set_status(self.job.result.get("model") or {"installed": True, "path": self.job.result.get("path")})
            how = "downloaded" if self.what == "download" and self.job.result.get("fetched") else "installed"
            if self.what == "download" and not self.job.result.get("fetched"):
                how = "already there (hash checked)"
            message, ok = f"DensePose model {how}: {self.job.result.get('path')}", True
        elif self.job.state == "cancelled":
            message, ok = f"{self.what.capitalize()} cancelled: no model file was kept", False
        else:
            text = str(self.job.error)  # the worker's line ("download failed: HTTP 404 ..." needs no prefix)
            said = text.lower().startswith(f"{self.what} ")
            message, ok = (text[:1].upper() + text[1:]) if said else f"{self.what.capitalize()} failed: {text}", False
        set_last(message, ok)
        return ok, message


def running_task():
    return _task


def _redraw() -> None:
    wm = getattr(bpy.context, "window_manager", None)
    for window in getattr(wm, "windows", ()):
        for area in window.screen.areas:
            if area.type in ("PREFERENCES", "VIEW_3D"):
                area.tag_redraw()


def _tick_timer():
    """bpy.app.timers callback (GUI only): drain the running task; stop when it has ended."""
    global _task
    task = _task
    if task is None:
        return None
    if task.tick() == "running":
        _redraw()
        return TICK_S
    _task = None
    task.finish()
    _redraw()
    return None


def run_on_timer(task: ModelTask) -> None:
    """A window's path: the task becomes the running one, drained by a timer (the UI never waits)."""
    global _task
    _task = task
    set_last("")
    bpy.app.timers.register(_tick_timer, first_interval=TICK_S)


def set_last(message: str, ok: bool = True) -> None:
    _status["last"], _status["last_ok"] = message, ok


def cancel_running() -> None:
    global _task
    if _task is not None:
        _task.cancel()
        _task = None
