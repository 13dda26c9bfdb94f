"""View3D > Sidebar > HumanTex: target, inputs, size, Generate/Cancel with progress, layer previews."""

from __future__ import annotations

import bpy

from . import materials
from .operators import running_task, target_problem, topology_warning
from .projection import camera_problem


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
            box.label(text=problem, icon="ERROR")
        elif warning := topology_warning(obj, props.source):
            box.label(text=warning, icon="INFO")

        col = layout.column()
        col.prop(props, "source")
        if props.source == "CAMERA":
            cam_problem = camera_problem(context.scene)
            if cam_problem:
                col.label(text=cam_problem, icon="ERROR")
                problem = problem or cam_problem
            else:
                col.label(text=f"Camera: {context.scene.camera.name}", icon="CAMERA_DATA")
            col.prop(props, "photo")
            col.prop(props, "mask")
            col.operator("humantex.photo_to_camera", icon="IMAGE_BACKGROUND")
        else:
            col.prop(props, "photo")
            col.prop(props, "iuv")
            col.prop(props, "inds")
            row = col.row()
            row.enabled = bool(props.inds)
            row.prop(props, "person")
            col.prop(props, "iuv_order")
        layout.row().prop(props, "size", expand=True)

        task = running_task(context.scene)
        if task is not None:
            layout.progress(factor=task.fraction, type="BAR", text=f"{task.stage} {int(100 * task.fraction)}%")
            layout.operator("humantex.cancel", icon="CANCEL")
        else:
            row = layout.row()
            row.scale_y = 1.4
            row.enabled = problem is None
            row.operator("humantex.generate", icon="TEXTURE")
        if props.error:
            layout.label(text=props.error, icon="ERROR")
        elif props.message and task is None:
            layout.label(text=props.message, icon="CHECKMARK" if props.stage == "done" else "INFO")


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
        for layer, label, _ in materials.LAYERS:
            grid.operator("humantex.preview_layer", text=label, depress=(layer == shown)).layer = layer
