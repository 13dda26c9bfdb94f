"""The Blender side (bpy only; never imports torch).

register()/unregister() are built with bpy.utils.register_classes_factory. The package is
installed either as the extension `bl_ext.<repo>.blender_humantex` or, in a checkout, as
`blender_humantex`; every module finds "its" top package from `__package__`, never by a
hard-coded name.
"""

from __future__ import annotations

import sys

import bpy

from . import operators, panel, preferences, properties

_classes = (
    preferences.HUMANTEX_OT_check_worker,
    preferences.HumantexPreferences,
    properties.HumantexSettings,
    operators.HUMANTEX_OT_generate,
    operators.HUMANTEX_OT_cancel,
    operators.HUMANTEX_OT_photo_to_camera,
    operators.HUMANTEX_OT_preview_layer,
    panel.HUMANTEX_PT_generate,
    panel.HUMANTEX_PT_layers,
)

_register_classes, _unregister_classes = bpy.utils.register_classes_factory(_classes)


def register():
    _register_classes()
    bpy.types.Scene.humantex = bpy.props.PointerProperty(type=properties.HumantexSettings)
    # `blender -b scene.blend --python-expr "import blender_humantex.batch"` must work in a stock
    # Blender where the extension lives at bl_ext.<repo>.blender_humantex: give it its short name
    # too, unless a checkout already provides one.
    top = preferences.TOP_PACKAGE
    if top != "blender_humantex" and top in sys.modules:
        sys.modules.setdefault("blender_humantex", sys.modules[top])


def unregister():
    operators.cancel_running_tasks()
    del bpy.types.Scene.humantex
    _unregister_classes()
    top = preferences.TOP_PACKAGE
    if top != "blender_humantex" and sys.modules.get("blender_humantex") is sys.modules.get(top):
        del sys.modules["blender_humantex"]
