"""Add-on preferences: where the worker runs, on what device, with which weights, writing where.

`bl_idname` is the top package's `__package__` (`bl_ext.user_default.blender_humantex` when
installed as an extension, `blender_humantex` from a checkout).
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

import bpy

TOP_PACKAGE = __package__.rpartition(".")[0]
BUNDLED_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
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

    A second import of this package under another name (the `blender_humantex` alias used by
    the batch entry point) must still find the one that Blender registered.
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


def default_worker_python() -> str:
    """Blender's own Python has no torch, so there is no silent default: only an interpreter that
    can import torch (the dev venv running the bpy module) is taken without asking."""
    if importlib.util.find_spec("torch") is not None:
        return sys.executable
    return ""


def worker_settings(context=None, **overrides) -> WorkerSettings:
    """Preferences (when the add-on is enabled) with explicit overrides (batch flags) on top."""
    from ..core.errors import InputError

    prefs = get_preferences(context)
    values = {
        "python": bpy.path.abspath(prefs.worker_python) if prefs and prefs.worker_python else default_worker_python(),
        "device": prefs.device if prefs else "auto",
        "weights_dir": bpy.path.abspath(prefs.weights_dir) if prefs and prefs.weights_dir else None,
        "output_dir": prefs.output_dir if prefs and prefs.output_dir else DEFAULT_OUTPUT_DIR,
        "pack_images": bool(prefs.pack_images) if prefs else False,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    if not values["python"]:
        raise InputError(
            "no worker Python set: choose an interpreter with torch installed "
            "(pip install '/path/to/blender_humantex[worker]') in Preferences > Add-ons > HumanTex",
            kind="no_worker_python",
        )
    return WorkerSettings(**values)


def get_client(settings: WorkerSettings):
    """The cached, warm worker client for these settings (the only way the add-on reaches torch)."""
    from ..worker.client import get_client as _get_client

    return _get_client(settings.python, device=settings.device, weights_dir=settings.weights_dir)


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
    """Start (or reuse) the worker and show its hello answer, or the exact error"""

    bl_idname = "humantex.check_worker"
    bl_label = "Check Worker"
    bl_options = {"INTERNAL"}

    def execute(self, context):
        from ..core.errors import HumantexError

        prefs = get_preferences(context)
        try:
            hello = get_client(worker_settings(context)).hello()
        except HumantexError as e:
            message = f"{getattr(e, 'kind', 'error')}: {e}"
            ok = False
        except Exception as e:  # the client's WorkerError, or an OS error starting the process
            message = f"{getattr(e, 'kind', type(e).__name__)}: {e}"
            ok = False
        else:
            message, ok = describe_hello(hello), True
        if prefs is not None:
            prefs.check_result = message
            prefs.check_ok = ok
        self.report({"INFO"} if ok else {"ERROR"}, message)
        return {"FINISHED"} if ok else {"CANCELLED"}


class HumantexPreferences(bpy.types.AddonPreferences):
    bl_idname = TOP_PACKAGE

    worker_python: bpy.props.StringProperty(
        name="Worker Python",
        description="Python interpreter with torch and the worker extra installed "
        "(pip install '/path/to/blender_humantex[worker]'); Blender's own Python has no torch",
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
    check_ok: bpy.props.BoolProperty(options={"SKIP_SAVE"})

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "worker_python")
        if not self.worker_python:
            fallback = default_worker_python()
            layout.label(
                text=f"Empty: using {fallback}" if fallback else "Empty: set a Python that has torch installed",
                icon="INFO" if fallback else "ERROR",
            )
        layout.prop(self, "device")
        layout.prop(self, "weights_dir")
        if not self.weights_dir:
            layout.label(text=f"Empty: bundled weights ({BUNDLED_WEIGHTS})", icon="INFO")
        layout.prop(self, "output_dir")
        layout.prop(self, "pack_images")
        row = layout.row()
        row.operator(HUMANTEX_OT_check_worker.bl_idname, icon="PLUGIN")
        if self.check_result:
            box = layout.box()
            box.label(text=self.check_result, icon="CHECKMARK" if self.check_ok else "ERROR")
