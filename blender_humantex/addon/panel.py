"""View3D > Sidebar > HumanTex: target, inputs, size, Generate/Cancel with progress, layer previews."""

from __future__ import annotations

import bpy

from ..worker.protocol import SOURCES
from . import materials, models
from .operators import output_note, running_task, target_problem, topology_warning
from .projection import camera_problem
from .properties import IUV_FIELDS, PHOTO_FIELDS, SCENE_FIELDS
from .text import draw_message


def draw_field(col, props, name: str) -> None:
    """One request field's property, with what it needs said next to it."""
    if name not in props.bl_rna.properties:
        return  # a request field the panel does not offer (e.g. a model path: the preferences' business)
    if name == "person":
        row = col.row()
        runs_densepose = props.source_name != "iuv"  # DensePose's own INDS tells the persons apart
        row.enabled = bool(props.inds) or runs_densepose
        row.prop(props, "person")
        if (props.inds or runs_densepose) and props.person == 0:
            col.label(text="Person 0: the largest person", icon="BLANK1")
    elif name == "iuv_order":
        col.label(text="IUV channel order:")
        col.prop(props, "iuv_order", text="")
    else:
        col.prop(props, name)


def draw_source(col, context, props, source):
    """A source's fields in the table's order; what stops Generate, or None."""
    problem = None
    if "camera" in source.required:  # the scene camera stands in for the camera file
        problem = camera_problem(context.scene)
        if problem:
            draw_message(col, context, problem, icon="ERROR", alert=True)
        else:
            col.label(text=f"Camera: {context.scene.camera.name}", icon="CAMERA_DATA")
    for name in (*source.required, *source.optional):
        if name not in SCENE_FIELDS:
            draw_field(col, props, name)
    if "camera" in source.required:
        col.operator("humantex.photo_to_camera", icon="IMAGE_BACKGROUND")
    return problem


def densepose_line(props, installed, online: bool):
    """(icon, text, alert) saying how the Photo source gets its DensePose, or None when nothing needs saying.

    `installed`: the cached model status (None: the worker was not asked yet). One line without a model."""
    if props.iuv:
        return ("INFO", "Using the IUV file: DensePose does not run", False)
    if installed is False:
        return ("ERROR", models.no_model_message(online), True)
    if installed:
        return ("CHECKMARK", "DensePose runs in the worker", False)
    return None


def draw_photo(col, context, props) -> None:
    """The Photo source: the photo (DensePose runs in the worker), an IUV file as an advanced option."""
    for name in PHOTO_FIELDS:
        draw_field(col, props, name)
    line = densepose_line(props, models.installed(), models.online_access())
    if line is not None:
        draw_message(col, context, line[1], icon=line[0], alert=line[2])
    box = col.box()
    box.prop(props, "show_iuv", icon="TRIA_DOWN" if props.show_iuv or props.iuv else "TRIA_RIGHT", emboss=False)
    if props.show_iuv or props.iuv:
        for name in IUV_FIELDS:
            draw_field(box, props, name)


class HUMANTEX_PT_generate(bpy.types.Panel):
    bl_label = "HumanTex"
    bl_idname = "HUMANTEX_PT_generate"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HumanTex"

    def draw(self, context):
        layout = self.layout
        props = context.scene.humantex
        obj = context.active_object

        box = layout.box()
        box.label(text=f"Target: {obj.name}" if obj else "Target: none", icon="OUTLINER_OB_MESH")
        problem = target_problem(obj)
        if problem:
            draw_message(box, context, problem, icon="ERROR", alert=True)
        elif warning := topology_warning(obj, props.source):
            draw_message(box, context, warning, icon="INFO")

        col = layout.column()
        col.prop(props, "source")
        if props.source == "photo":
            draw_photo(col, context, props)
        else:
            problem = draw_source(col, context, props, SOURCES[props.source]) or problem
        layout.row().prop(props, "size", expand=True)
        draw_run(layout, context, props, obj, problem)


def draw_run(layout, context, props, obj, problem) -> None:
    """Generate (or the running job's bar and Cancel), then the last message."""
    task = running_task(context.scene)
    if task is not None:
        # One bar for the whole job that only grows; the stage is its text.
        layout.progress(factor=task.fraction, type="BAR", text=task.progress_text)
        row = layout.row()
        row.enabled = not task.cancelling
        row.operator("humantex.cancel", icon="CANCEL", text="Cancelling…" if task.cancelling else "Cancel")
    else:
        row = layout.row()
        row.scale_y = 1.4
        row.enabled = problem is None
        row.operator("humantex.generate", icon="TEXTURE")
        if obj is not None and problem is None:
            draw_message(layout, context, output_note(context, obj.name), icon="FILE_FOLDER")
    if props.error:
        draw_message(layout, context, props.error, icon="ERROR", alert=True)
    elif props.message and task is None:
        draw_message(layout, context, props.message, icon="CHECKMARK" if props.stage == "done" else "INFO")


class HUMANTEX_PT_layers(bpy.types.Panel):
    bl_label = "Layer Preview"
    bl_idname = "HUMANTEX_PT_layers"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HumanTex"
    bl_parent_id = "HUMANTEX_PT_generate"

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and bpy.data.materials.get(materials.material_name(obj)) is not None

    def draw(self, context):
        material = bpy.data.materials[materials.material_name(context.active_object)]
        shown = materials.current_layer(material)
        grid = self.layout.grid_flow(columns=2, even_columns=True, align=True)
        for layer, label, _ in materials.PREVIEW_ITEMS:
            grid.operator("humantex.preview_layer", text=label, depress=(layer == shown)).layer = layer
