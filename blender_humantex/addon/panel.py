"""View3D > Sidebar > HumanTex: target, inputs, size, Generate/Cancel with progress, layer previews."""

from __future__ import annotations

import bpy

from ..worker.protocol import SOURCES
from . import materials
from .operators import output_note, running_task, target_problem, topology_warning
from .projection import camera_problem
from .properties import SCENE_FIELDS
from .text import draw_message


def draw_field(col, props, name: str) -> None:
    """One request field's property, with what it needs said next to it."""
    if name == "person":
        row = col.row()
        row.enabled = bool(props.inds)
        row.prop(props, "person")
        if props.inds and props.person == 0:
            col.label(text="Person 0: the largest person", icon="BLANK1")
    elif name == "iuv_order":
        col.label(text="IUV channel order:")
        col.prop(props, "iuv_order", text="")
    else:
        col.prop(props, name)


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
        source = SOURCES[props.source]
        if "camera" in source.required:  # the scene camera stands in for the camera file
            cam_problem = camera_problem(context.scene)
            if cam_problem:
                draw_message(col, context, cam_problem, icon="ERROR", alert=True)
                problem = problem or cam_problem
            else:
                col.label(text=f"Camera: {context.scene.camera.name}", icon="CAMERA_DATA")
        for name in (*source.required, *source.optional):  # the source's fields, in the table's order
            if name not in SCENE_FIELDS:
                draw_field(col, props, name)
        if "camera" in source.required:
            col.operator("humantex.photo_to_camera", icon="IMAGE_BACKGROUND")
        layout.row().prop(props, "size", expand=True)

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
