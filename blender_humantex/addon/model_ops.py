"""The DensePose model's operators: Download model, Install from File…, Cancel (the state and what
the preferences draw are models.py's). A fetch or install runs in the worker: in a window a
`bpy.app.timers` callback drains it (models._tick_timer), so the UI never waits; in `-b` and the bpy
module timers never fire, so the operator waits for it.
"""

from __future__ import annotations

import os

import bpy

from . import models
from .cancel import CancelOperator
from .errors import USER_ERRORS
from .models import MODEL, ONLINE_OFF, SIZE_MB
from .preferences import worker_client, worker_settings


def start(operator, context, what: str, make_job):
    """Start a fetch/install in the worker: waited for in `-b`, drained by a timer in a window."""
    if models.running_task() is not None:
        return _refuse(operator, "a model download or install is already running: wait for it or cancel it")
    try:
        job = make_job(worker_client(worker_settings(context)))
    except USER_ERRORS as e:
        return _refuse(operator, f"{what.capitalize()} failed: {e}")
    task = models.ModelTask(what, job)
    if bpy.app.background or context.window is None:
        task.wait(log=print if bpy.app.background else None)
        ok, message = task.finish()
        operator.report({"INFO"} if ok else {"ERROR"}, message)
        return {"FINISHED"} if ok else {"CANCELLED"}
    models.run_on_timer(task)
    return {"FINISHED"}


def _refuse(operator, message: str):
    models.set_last(message, ok=False)
    operator.report({"ERROR"}, message)
    return {"CANCELLED"}


class HUMANTEX_OT_model_download(bpy.types.Operator):
    """Download the DensePose model (pinned file, SHA-256 checked) in the worker, with progress"""

    bl_idname = "humantex.model_download"
    bl_label = f"Download model ({SIZE_MB} MB)"
    bl_options = {"INTERNAL"}

    @classmethod
    def poll(cls, context):
        if not models.online_access():  # the button is not drawn then; a script calling it gets this line
            cls.poll_message_set(ONLINE_OFF)
            return False
        return models.running_task() is None

    def execute(self, context):
        if not models.online_access():
            return _refuse(self, ONLINE_OFF)
        return start(self, context, "download", lambda client: client.fetch_model(MODEL))


class HUMANTEX_OT_model_install(bpy.types.Operator):
    """Install a DensePose model file you already have (checked against the pinned SHA-256, then copied)"""

    bl_idname = "humantex.model_install"
    bl_label = "Install from File…"
    bl_options = {"INTERNAL"}

    filepath: bpy.props.StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})
    filter_glob: bpy.props.StringProperty(default="*.torchscript;*.pt;*.pth", options={"HIDDEN", "SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        return models.running_task() is None

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        path = bpy.path.abspath(self.filepath) if self.filepath else ""
        if not path or not os.path.isfile(path):
            return _refuse(self, "Install failed: " + (f"file not found: {path}" if path else "choose the model file"))
        return start(self, context, "install", lambda client: client.install_model(path, MODEL))


class HUMANTEX_OT_model_cancel(CancelOperator, bpy.types.Operator):
    """Stop the download or install: nothing that looks like a model is left"""

    bl_idname = "humantex.model_cancel"

    @staticmethod
    def task(context):
        return models.running_task()

    def execute(self, context):
        models.running_task().cancel()
        self.report({"INFO"}, "HumanTex: cancelling the model download…")
        return {"FINISHED"}


CLASSES = (HUMANTEX_OT_model_download, HUMANTEX_OT_model_install, HUMANTEX_OT_model_cancel)
