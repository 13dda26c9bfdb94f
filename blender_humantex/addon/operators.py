"""Generate Texture (modal for the UI, synchronous EXEC for `-b` and scripts), Cancel, layer preview.

The modal operator and the synchronous path share one `GenerationTask`: the modal operator only
calls `task.tick()` on an event timer (a non-blocking drain of the worker client), so the UI
never waits on the worker. `bpy.app.timers` and INVOKE modal operators do not run headless,
hence the EXEC path.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

import bpy

from ..core.errors import InputError
from ..worker.protocol import PATH_FIELDS, SOURCES, GenerateRequest
from . import materials, models, projection
from .cancel import CancelOperator
from .errors import USER_ERRORS
from .preferences import (
    DEFAULT_OUTPUT_DIR,
    get_preferences,
    remember_worker_python,
    worker_client,
    worker_settings,
)
from .properties import SCENE_FIELDS

SMPL_VERTEX_COUNT = 6890
TIMER_INTERVAL_S = 0.1
# What each stage of a job is called in the progress bar (worker stages, plus the add-on's own).
STAGE_LABELS = {
    "start": "Starting worker",
    "load": "Loading networks",
    "unwrap": "Unwrapping photo",
    "sample": "Sampling",
    "refine": "Refining",
    "write": "Writing PNGs",
    "cancelling": "Cancelling…",
}

# scene name -> the GenerationTask running for it (at most one per scene).
_running: dict = {}


def running_task(scene):
    return _running.get(scene.name_full) if scene is not None else None


def cancel_running_tasks() -> None:
    for task in list(_running.values()):
        task.cancel()
    _running.clear()


def target_problem(obj) -> str | None:
    """Why `obj` cannot receive a texture, or None."""
    if obj is None:
        return "no active object: select the mesh to texture"
    if obj.type != "MESH":
        return f"{obj.name} is a {obj.type.lower()}, not a mesh"
    if len(obj.data.uv_layers) == 0:
        return f"{obj.name} has no UV map: the texture needs the SMPL UV layout"
    return None


def topology_warning(obj, source: str = "iuv") -> str | None:
    """A mesh other than SMPL's: say what it gets, don't refuse."""
    if obj is None or obj.type != "MESH":
        return None
    count = len(obj.data.vertices)
    if count != SMPL_VERTEX_COUNT:
        if source == "projection":
            return f"{count} vertices, not SMPL's: unless its UV map is SMPL's, filled classically (no networks)"
        return f"{count} vertices, not SMPL's {SMPL_VERTEX_COUNT}: the texture uses the SMPL UV layout"
    return None


def output_note(context, object_name: str) -> str:
    """Where Generate will put this object's textures, said before it runs."""
    prefs = get_preferences(context)
    base = prefs.output_dir if prefs is not None and prefs.output_dir else DEFAULT_OUTPUT_DIR
    if base.startswith("//") and not bpy.data.filepath:
        return "Unsaved file: the textures will be packed into the .blend"
    folder, _ = resolve_output_dir(base, object_name)
    return f"Textures go to {bpy.path.relpath(folder) if bpy.data.filepath else folder}"


def resolve_output_dir(base: str, object_name: str) -> tuple[str, bool]:
    """(absolute folder for this object's PNGs, whether images must be packed).

    `//` means next to the .blend; an unsaved .blend has no such place, so the PNGs go to a temp
    folder and are packed, which keeps them when the user saves later.
    """
    force_pack = False
    if base.startswith("//") and not bpy.data.filepath:
        base = os.path.join(tempfile.gettempdir(), f"humantex-unsaved-{os.getpid()}")
        force_pack = True
    folder = os.path.join(bpy.path.abspath(base), bpy.path.clean_name(object_name))
    return os.path.normpath(folder), force_pack


# What to ask for when a source's field is empty (the property's name otherwise).
FIELD_LABELS = {"iuv": "DensePose IUV image"}


def build_request(obj, request: GenerateRequest, source: str, output_dir: str, scene=None,
                  depsgraph=None) -> tuple[GenerateRequest, bool]:
    """The panel's (or a batch job's) request for `source`, completed and checked once: with messages
    about Blender things first, then the request's own check.

    A source that needs the scene's mesh and camera gets the object's evaluated mesh and the scene
    camera written into the object's output folder (inputs/mesh.npz, inputs/camera.json) for the worker.
    """
    problem = target_problem(obj)
    if problem:
        raise InputError(problem, kind="bad_target")
    # (a request made elsewhere may bring its own mesh and camera files)
    needs_scene = any(name in SCENE_FIELDS and not getattr(request, name) for name in SOURCES[source].required)
    for key in SOURCES[source].required:
        if key not in SCENE_FIELDS and not getattr(request, key):
            raise InputError(f"choose a {FIELD_LABELS.get(key, key)}", kind="missing_input")
    for key in PATH_FIELDS:
        path = getattr(request, key)
        if path and not os.path.isfile(path):
            raise InputError(f"{key} file not found: {path}", kind="missing_file")
    out_dir, force_pack = resolve_output_dir(output_dir, obj.name)
    if needs_scene:
        request = dataclasses.replace(request, **_write_scene_inputs(obj, scene, depsgraph, out_dir))
    return dataclasses.replace(request, out_dir=out_dir).check(), force_pack


def _write_scene_inputs(obj, scene, depsgraph, out_dir: str) -> dict:
    """The object's evaluated mesh and the scene camera, as files in out_dir/inputs (mesh, camera fields)."""
    problem = projection.camera_problem(scene)
    if problem:
        raise InputError(problem, kind="no_camera")
    try:
        mesh_path, camera_path = projection.write_inputs(obj, scene, depsgraph, out_dir)
    except ValueError as e:
        raise InputError(str(e), kind="bad_target") from None
    except OSError as e:
        raise InputError(f"cannot write the projection inputs to {out_dir}: {e.strerror or e}", kind="bad_output") from None
    return {"mesh": mesh_path, "camera": camera_path}


class GenerationTask:
    """One texture generation for one object: submit, poll, apply the result to the material."""

    def __init__(self, object_name: str, request: GenerateRequest, settings, pack: bool):
        self.object_name = object_name
        self.request = request
        self.settings = settings
        self.pack = pack
        self.job = None
        self.result = None
        self.stage = "start"
        self.fraction = 0.0  # of the whole job: one bar that only grows (protocol.overall_fraction)
        self.cancelling = False

    @classmethod
    def from_context(cls, context, obj=None, request=None, **overrides):
        settings = worker_settings(context, **overrides)
        obj = context.active_object if obj is None else obj
        props = context.scene.humantex
        source = props.source_name
        if request is None:
            request = props.request()
        else:
            source = request.source
        depsgraph = context.evaluated_depsgraph_get() if source == "projection" else None
        request, force_pack = build_request(obj, request, source, settings.output_dir, context.scene, depsgraph)
        return cls(obj.name, request, settings, settings.pack_images or force_pack)

    # -- non-blocking (modal) --
    def start(self) -> None:
        self.job = worker_client(self.settings).submit(self.request)

    def _progress(self, stage: str, fraction: float) -> None:
        from ..worker.protocol import overall_fraction

        self.stage = stage or self.stage
        self.fraction = max(self.fraction, overall_fraction(stage, fraction))

    @property
    def progress_text(self) -> str:
        if self.cancelling:
            return STAGE_LABELS["cancelling"]
        return f"{STAGE_LABELS.get(self.stage, self.stage)} {int(100 * self.fraction)}%"

    def tick(self) -> str:
        """Drain the worker's events without waiting; returns the job's state in one word (its
        `done`, `cancelled` and `failed` say the same)."""
        for event in self.job.poll():
            if event.get("type") == "progress":
                self._progress(event.get("stage", ""), event.get("fraction", 0.0))
        if self.job.result is not None:
            self.result = self.job.result
            self.fraction = 1.0
        return self.job.state

    def cancel(self) -> None:
        if self.job is not None and not self.job.done:
            self.cancelling = True
            self.job.cancel()

    @property
    def error_message(self) -> str:
        error = self.job.error if self.job is not None else None
        return models.user_message(error) if error else "the worker failed without a message"

    # -- blocking (EXEC, batch) --
    def run_blocking(self, progress=None) -> dict:
        def on_progress(stage, fraction):
            self._progress(stage, fraction)
            if progress is not None:
                progress(self.stage, self.fraction)

        self.result = worker_client(self.settings).run(self.request, progress=on_progress)
        self.fraction = 1.0
        return self.result

    def where_outputs_went(self) -> str:
        """For the panel and the Info log: the folder of the PNGs, or that they were packed."""
        folder = os.path.dirname(self.result["outputs"]["final"]) if self.result else self.request.out_dir
        if self.pack and not bpy.data.filepath:
            return f"packed into the .blend (unsaved file; the PNGs are in the temporary folder {folder})"
        shown = bpy.path.relpath(folder) if bpy.data.filepath else folder
        return f"packed into the .blend (PNGs in {shown})" if self.pack else f"PNGs in {shown}"

    # -- both --
    def apply(self):
        """Put the result on the object's material (the step that touches Blender data)."""
        obj = bpy.data.objects.get(self.object_name)
        if obj is None:
            raise InputError(f"object {self.object_name!r} was removed while its texture was generated", kind="bad_target")
        return materials.apply_outputs(obj, self.result["outputs"], pack=self.pack)


def _set_status(context, props, stage="", fraction=0.0, message="", error=""):
    props.stage, props.fraction, props.message, props.error = stage, fraction, message, error
    screen = getattr(context, "screen", None)
    if screen is not None:
        for area in screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


class HUMANTEX_OT_generate(bpy.types.Operator):
    """Generate a complete SMPL-UV texture for the active mesh from the photo (DensePose runs in the worker)"""

    bl_idname = "humantex.generate"
    bl_label = "Generate Texture"
    bl_options = {"REGISTER", "UNDO"}  # one undo step per generation, pushed when it finishes

    _task = None
    _timer = None
    _scene_name = ""

    @classmethod
    def poll(cls, context):
        return context.scene is not None and running_task(context.scene) is None

    def _fail(self, context, scene, message: str):
        _set_status(context, scene.humantex, error=message)
        self.report({"ERROR"}, message)
        return {"CANCELLED"}

    def _done(self, context, scene, task, material):
        remember_worker_python(task.settings.python)
        message = f"{material.name}: {task.request.size} px texture from {os.path.basename(task.request.photo)}"
        meta = (task.result or {}).get("meta") or {}
        if meta.get("uv_layout") == "mesh":
            message += " (UV map not SMPL's: filled classically, no networks)"
        fit = (meta.get("projection") or {}).get("photo_fit") or {}
        if fit and not fit.get("same_aspect"):
            message += "; photo aspect differs from the render's: fitted as the camera's sensor fit does"
        message += f"; {task.where_outputs_went()}"
        _set_status(context, scene.humantex, stage="done", fraction=1.0, message=message)
        self.report({"INFO"}, message)
        return {"FINISHED"}

    def execute(self, context):
        """Synchronous: blocks until the texture is on the material (for `-b` and scripts)."""
        scene = context.scene
        try:
            task = GenerationTask.from_context(context)
            _set_status(context, scene.humantex, stage="start")
            task.run_blocking(lambda stage, fraction: _set_status(context, scene.humantex, stage, fraction))
            material = task.apply()
        except USER_ERRORS as e:
            return self._fail(context, scene, models.user_message(e))
        return self._done(context, scene, task, material)

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        scene = context.scene
        try:
            task = GenerationTask.from_context(context)
            task.start()
        except USER_ERRORS as e:
            return self._fail(context, scene, models.user_message(e))
        # The scene is remembered by name: the user may switch scenes while the job runs.
        self._task, self._scene_name = task, scene.name_full
        _running[self._scene_name] = task
        _set_status(context, scene.humantex, stage="start")
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_INTERVAL_S, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def _finish(self, context):
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        _running.pop(self._scene_name, None)
        if context.workspace is not None:
            context.workspace.status_text_set(None)

    def modal(self, context, event):
        task = self._task
        scene = bpy.data.scenes.get(self._scene_name) or context.scene
        if event.type == "ESC" and event.value == "PRESS":
            task.cancel()
            self._finish(context)
            _set_status(context, scene.humantex, message="cancelled")
            self.report({"WARNING"}, "HumanTex: generation cancelled")
            return {"CANCELLED"}
        if event.type != "TIMER":  # any timer will do: a tick is a cheap, non-blocking drain
            return {"PASS_THROUGH"}
        job = task.job
        try:
            task.tick()
            if task.result is not None:
                material = task.apply()
                self._finish(context)
                return self._done(context, scene, task, material)
        except USER_ERRORS as e:
            self._finish(context)
            return self._fail(context, scene, str(e))
        if job.cancelled:
            self._finish(context)
            _set_status(context, scene.humantex, message="cancelled")
            return {"CANCELLED"}
        if job.failed:
            self._finish(context)
            return self._fail(context, scene, task.error_message)
        _set_status(context, scene.humantex, task.stage, task.fraction, message=STAGE_LABELS["cancelling"] if task.cancelling else "")
        if context.workspace is not None:
            context.workspace.status_text_set(
                f"HumanTex: {task.progress_text}" + ("" if task.cancelling else "  (Esc to cancel)")
            )
        return {"PASS_THROUGH"}


class HUMANTEX_OT_photo_to_camera(bpy.types.Operator):
    """Show the photo as the scene camera's background and set the render size to the photo's,
    so you can pose the mesh onto the photo through the camera"""

    bl_idname = "humantex.photo_to_camera"
    bl_label = "Photo as Camera Background"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return context.scene is not None and projection.camera_problem(context.scene) is None

    def execute(self, context):
        props = context.scene.humantex
        path = bpy.path.abspath(props.photo) if props.photo else ""
        if not path or not os.path.isfile(path):
            message = "choose a photo first" if not path else f"photo file not found: {path}"
            _set_status(context, props, error=message)
            self.report({"ERROR"}, message)
            return {"CANCELLED"}
        try:
            image = projection.set_background_photo(context.scene, path)
        except RuntimeError as e:  # bpy.data.images.load on a file that is not an image
            message = f"cannot load the photo: {' '.join(str(e).split())}"
            _set_status(context, props, error=message)
            self.report({"ERROR"}, message)
            return {"CANCELLED"}
        width, height = image.size
        message = f"{image.name} behind camera {context.scene.camera.name}; render size {width}x{height}"
        _set_status(context, props, message=message)
        self.report({"INFO"}, message)
        return {"FINISHED"}


class HUMANTEX_OT_cancel(CancelOperator, bpy.types.Operator):
    """Cancel the running texture generation"""

    bl_idname = "humantex.cancel"

    @staticmethod
    def task(context):
        return running_task(context.scene)

    def execute(self, context):
        # The worker stops at its next progress report (a second or more on a big texture); say so
        # now. The modal operator sees the cancelled job on a later tick and cleans up.
        task = running_task(context.scene)
        task.cancel()
        _set_status(context, context.scene.humantex, "cancelling", task.fraction, message=STAGE_LABELS["cancelling"])
        if context.workspace is not None:
            context.workspace.status_text_set(f"HumanTex: {task.progress_text}")
        self.report({"INFO"}, "HumanTex: cancelling…")
        return {"FINISHED"}


class HUMANTEX_OT_message(bpy.types.Operator):
    """Copy this message to the clipboard"""

    bl_idname = "humantex.message"
    bl_label = "Copy Message"
    bl_options = {"INTERNAL"}

    message: bpy.props.StringProperty(options={"SKIP_SAVE", "HIDDEN"})

    @classmethod
    def description(cls, context, properties):
        # The tooltip: the message in full (the panel shows it wrapped, with file names only).
        return f"{properties.message}\n\nClick to copy this message"

    def execute(self, context):
        context.window_manager.clipboard = self.message
        self.report({"INFO"}, f"Copied: {self.message}")
        return {"FINISHED"}


class HUMANTEX_OT_preview_layer(bpy.types.Operator):
    """Show this layer as Base Color; click the shown layer again to go back to Final"""

    bl_idname = "humantex.preview_layer"
    bl_label = "Preview Layer"
    bl_options = {"REGISTER", "UNDO"}

    layer: bpy.props.EnumProperty(name="Layer", items=materials.PREVIEW_ITEMS)

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and bool(materials.humantex_nodes(bpy.data.materials.get(materials.material_name(obj))))

    def execute(self, context):
        material = bpy.data.materials[materials.material_name(context.active_object)]
        shown = materials.current_layer(material)
        layer = "final" if self.layer == shown else self.layer
        materials.set_preview_layer(material, layer)
        return {"FINISHED"}
