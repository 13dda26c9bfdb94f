"""Add-on preferences: where the worker runs, on what device, with which weights, writing where.

`bl_idname` is the top package's `__package__` (`bl_ext.user_default.blender_humantex` when
installed as an extension, `blender_humantex` from a checkout).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass

import bpy

from ..core.files import DEFAULT_WEIGHTS_DIR

TOP_PACKAGE = __package__.rpartition(".")[0]
DEFAULT_OUTPUT_DIR = "//humantex/"

# Blender 4.5+ warns about "//" in a preferences path unless the property says it is blend-relative
# (the output folder is: it is resolved against the .blend being worked on). 4.2 lacks the option.
_BLEND_RELATIVE = (
    {"PATH_SUPPORTS_BLEND_RELATIVE"} if "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties else set()
)

DEVICE_ITEMS = (
    ("auto", "Auto", "CUDA when the worker's torch sees a GPU, else CPU"),
    ("cuda", "CUDA", "NVIDIA GPU (the worker's torch must be a CUDA build)"),
    ("cpu", "CPU", "Processor only"),
)


def _addon_entry(context=None):
    """The enabled add-on's preferences entry, found by package name.

    A second import of this package under another name (a checkout's `blender_humantex` next to
    the installed extension) must still find the one that Blender registered.
    """
    addons = (context or bpy.context).preferences.addons
    entry = addons.get(TOP_PACKAGE)
    if entry is None:
        entry = next((a for a in addons if a.module.rpartition(".")[2] == "blender_humantex"), None)
    return entry


def get_preferences(context=None):
    """The add-on preferences, or None when the add-on is not enabled (e.g. `python -m ...batch`)."""
    entry = _addon_entry(context)
    return entry.preferences if entry is not None else None


@dataclass
class WorkerSettings:
    """Everything needed to reach the worker and place its outputs, resolved to plain values."""

    python: str
    device: str = "auto"
    weights_dir: str | None = None  # None: the bundled weights
    output_dir: str = DEFAULT_OUTPUT_DIR
    pack_images: bool = False


WORKER_PYTHON_ENV = "HUMANTEX_WORKER_PYTHON"
REMEMBERED_FILE = "worker_python.txt"


def worker_env_dir() -> str:
    """Where the setup command makes the worker environment (the user's home folder)."""
    return os.path.join(os.path.expanduser("~"), "humantex-worker")


def worker_env_python(platform: str = sys.platform) -> str:
    env = worker_env_dir()
    return os.path.join(env, "Scripts", "python.exe") if platform == "win32" else os.path.join(env, "bin", "python")


def worker_setup_command(platform: str = sys.platform) -> str:
    """The one command that makes a worker environment for this extension as installed: a venv with
    the pinned worker packages. The worker's code is not installed there: the add-on runs it from
    the extension's own folder (the client puts that folder on the worker's PYTHONPATH)."""
    from ..worker.protocol import REQUIREMENTS_FILE

    env, python = worker_env_dir(), worker_env_python(platform)
    if platform == "win32":
        return f'py -3 -m venv "{env}" && "{python}" -m pip install -r "{REQUIREMENTS_FILE}"'
    return f'python3 -m venv "{env}" && "{python}" -m pip install -r "{REQUIREMENTS_FILE}"'


def _remembered_path() -> str:
    return os.path.join(bpy.utils.user_resource("CONFIG", path="humantex", create=True), REMEMBERED_FILE)


def remember_worker_python(python: str) -> None:
    """Keep the interpreter of a worker that answered, so it is found again when the field is empty."""
    try:
        with open(_remembered_path(), "w", encoding="utf-8") as f:
            f.write(python + "\n")
    except OSError:
        pass  # a convenience only


def _runnable(path: str | None) -> bool:
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)


def detect_worker_python() -> tuple[str, str]:
    """(interpreter, where it was found) for an empty Worker Python field, or ("", "").

    In order: $HUMANTEX_WORKER_PYTHON, the last worker that answered, the environment the setup
    command makes, and this Python itself when it has torch (the bpy module in a dev venv).
    Blender's own Python has no torch, so without one of these the user is asked."""
    try:
        with open(_remembered_path(), encoding="utf-8") as f:
            remembered = f.read().strip()
    except OSError:
        remembered = ""
    candidates = [
        (os.environ.get(WORKER_PYTHON_ENV, ""), f"${WORKER_PYTHON_ENV}"),
        (remembered, "used before"),
        (worker_env_python(), "the HumanTex worker environment"),
    ]
    if importlib.util.find_spec("torch") is not None:
        candidates.append((sys.executable, "this Python has torch"))
    for path, where in candidates:
        path = os.path.expanduser(path)
        if _runnable(path):
            return path, where
    return "", ""


NO_WORKER_MESSAGE = (
    "HumanTex needs a worker: a separate Python with PyTorch that computes the textures (Blender's own "
    "Python has none). Open Edit > Preferences > Add-ons > HumanTex, copy the setup command, run it in a "
    "terminal once, then press Check Worker."
)


def worker_settings(context=None, **overrides) -> WorkerSettings:
    """Preferences (when the add-on is enabled) with explicit overrides (batch flags) on top."""
    from ..core.errors import InputError

    prefs = get_preferences(context)
    values = {
        "python": bpy.path.abspath(prefs.worker_python) if prefs and prefs.worker_python else detect_worker_python()[0],
        "device": prefs.device if prefs else "auto",
        "weights_dir": bpy.path.abspath(prefs.weights_dir) if prefs and prefs.weights_dir else None,
        "output_dir": prefs.output_dir if prefs and prefs.output_dir else DEFAULT_OUTPUT_DIR,
        "pack_images": bool(prefs.pack_images) if prefs else False,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    if not values["python"]:
        raise InputError(NO_WORKER_MESSAGE, kind="no_worker_python")
    return WorkerSettings(**values)


def artist_message(kind: str, message: str, python: str) -> str:
    """What a failed worker check means for someone who has never used a terminal much."""
    name = python or "(none)"
    if kind == "no_worker_python":
        return (
            "No worker Python yet. HumanTex computes textures in a separate Python with PyTorch; Blender's "
            "own Python has none. Run the command below in a terminal (it downloads PyTorch, a few GB, "
            "once), then press Check Worker: the new worker is found automatically."
        )
    if kind == "bad_interpreter":
        return (
            f"The Worker Python {name} cannot run the worker: it is missing or not a suitable Python. "
            "Run the command below in a terminal, clear the Worker Python field, and press Check Worker."
        )
    if kind == "dependency":
        return (
            f"The Worker Python {name} lacks packages the worker needs (PyTorch and others). Run the "
            "command below in a terminal to make a complete worker environment, clear the Worker Python "
            "field, and press Check Worker."
        )
    if kind == "protocol_mismatch":
        return f"The worker is from another HumanTex version: {message}"
    return message


def worker_client(settings: WorkerSettings):
    """The cached, warm worker client for these settings (the only way the add-on reaches torch)."""
    from ..worker.client import get_client

    return get_client(settings.python, device=settings.device, weights_dir=settings.weights_dir)


def describe_hello(hello: dict) -> str:
    """One line for the UI from the worker's hello answer."""
    weights = hello.get("weights")
    if isinstance(weights, dict):
        weights = ", ".join(f"{k}={v}" for k, v in sorted(weights.items()) if not isinstance(v, dict | list))
    parts = [
        f"protocol {hello.get('protocol')}",
        f"humantex {hello.get('version')}",
        f"torch {hello.get('torch')}",
        f"device {hello.get('device')}",
    ]
    if weights:
        parts.append(f"weights {weights}")
    return " | ".join(parts)


class HUMANTEX_OT_check_worker(bpy.types.Operator):
    """Start (or reuse) the worker and show its hello answer, or what is wrong and how to fix it"""

    bl_idname = "humantex.check_worker"
    bl_label = "Check Worker"
    bl_options = {"INTERNAL"}

    def execute(self, context):
        prefs = get_preferences(context)
        python = ""
        try:
            settings = worker_settings(context)
            python = settings.python
            hello = worker_client(settings).hello()
        except Exception as e:  # HumantexError, the client's WorkerError, or an OS error starting it
            kind = getattr(e, "kind", type(e).__name__)
            detail = f"{kind}: {e}"
            message, ok = artist_message(kind, str(e), python), False
        else:
            message, ok = describe_hello(hello), True
            detail = message
            remember_worker_python(python)
        if prefs is not None:
            prefs.check_result = message
            prefs.check_detail = detail
            prefs.check_ok = ok
        self.report({"INFO"} if ok else {"ERROR"}, message if ok else f"{message} ({detail})")
        return {"FINISHED"} if ok else {"CANCELLED"}


class HUMANTEX_OT_copy_setup_command(bpy.types.Operator):
    """Copy the command that makes a worker environment to the clipboard (paste it in a terminal)"""

    bl_idname = "humantex.copy_setup_command"
    bl_label = "Copy Command"
    bl_options = {"INTERNAL"}

    def execute(self, context):
        command = worker_setup_command()
        context.window_manager.clipboard = command
        self.report({"INFO"}, f"Copied: {command}")
        return {"FINISHED"}


class HumantexPreferences(bpy.types.AddonPreferences):
    bl_idname = TOP_PACKAGE

    worker_python: bpy.props.StringProperty(
        name="Worker Python",
        description="Python of the worker environment (with PyTorch); empty: found automatically "
        "($HUMANTEX_WORKER_PYTHON, the last one that worked, or ~/humantex-worker)",
        subtype="FILE_PATH",
    )
    device: bpy.props.EnumProperty(name="Device", items=DEVICE_ITEMS, default="auto")
    weights_dir: bpy.props.StringProperty(
        name="Weights Folder",
        description="Folder with sampler/refiner safetensors; empty means the weights bundled with the extension",
        subtype="DIR_PATH",
    )
    output_dir: bpy.props.StringProperty(
        name="Output Folder",
        description="Where texture PNGs are written; // means next to the .blend",
        default=DEFAULT_OUTPUT_DIR,
        subtype="DIR_PATH",
        options=_BLEND_RELATIVE,
    )
    pack_images: bpy.props.BoolProperty(
        name="Pack Images",
        description="Pack the generated textures into the .blend instead of referencing the PNG files",
        default=False,
    )
    check_result: bpy.props.StringProperty(name="Worker", options={"SKIP_SAVE"})
    check_detail: bpy.props.StringProperty(options={"SKIP_SAVE"})
    check_ok: bpy.props.BoolProperty(options={"SKIP_SAVE"})

    def draw(self, context):
        from .text import draw_message

        layout = self.layout
        # The worker first, with the check's answer right below it: it is what users must set up.
        layout.prop(self, "worker_python")
        detected, where = ("", "") if self.worker_python else detect_worker_python()
        if not self.worker_python:
            if detected:
                draw_message(layout, context, f"Empty: using {detected} ({where})", icon="INFO")
            else:
                draw_message(layout, context, artist_message("no_worker_python", "", ""), icon="ERROR", alert=True)
        layout.operator(HUMANTEX_OT_check_worker.bl_idname, icon="PLUGIN")
        if self.check_result:
            box = layout.box()
            draw_message(box, context, self.check_result, icon="CHECKMARK" if self.check_ok else "ERROR",
                         alert=not self.check_ok, details=self.check_detail)
        if (not self.check_ok and self.check_result) or not (self.worker_python or detected):
            box = layout.box()
            box.label(text="Make a worker environment: run this in a terminal", icon="CONSOLE")
            draw_message(box, context, worker_setup_command(), shorten=False)
            box.operator(HUMANTEX_OT_copy_setup_command.bl_idname, icon="COPYDOWN")

        layout.separator()
        layout.prop(self, "device")
        layout.prop(self, "weights_dir")
        if not self.weights_dir:
            draw_message(layout, context, f"Empty: bundled weights ({DEFAULT_WEIGHTS_DIR})", icon="INFO")
        layout.prop(self, "output_dir")
        layout.prop(self, "pack_images")
