"""The Blender side (bpy only; never imports torch).

register()/unregister() are built with bpy.utils.register_classes_factory. The package is
installed either as the extension `bl_ext.<repo>.blender_humantex` or, in a checkout, as
`blender_humantex`; every module finds "its" top package from `__package__`, never by a
hard-coded name, and nothing is registered under a second module name (Blender flags that as a
policy violation).

The headless batch is a Blender command-line command (Blender 4.2+):
    blender -b -c humantex_batch --blend scene.blend --manifest jobs.json
"""

from __future__ import annotations

import bpy

from . import model_ops, models, operators, panel, preferences, properties

CLI_COMMAND = "humantex_batch"

_classes = (
    preferences.HUMANTEX_OT_check_worker,
    preferences.HUMANTEX_OT_copy_setup_command,
    *model_ops.CLASSES,
    preferences.HumantexPreferences,
    properties.HumantexSettings,
    operators.HUMANTEX_OT_generate,
    operators.HUMANTEX_OT_cancel,
    operators.HUMANTEX_OT_photo_to_camera,
    operators.HUMANTEX_OT_preview_layer,
    operators.HUMANTEX_OT_message,
    panel.HUMANTEX_PT_generate,
    panel.HUMANTEX_PT_layers,
)

_register_classes, _unregister_classes = bpy.utils.register_classes_factory(_classes)
_cli_handle = None


def run_batch_command(argv) -> int:
    """`blender -c humantex_batch ARGS`: the batch, with the exit code Blender should return."""
    from .batch import main

    try:
        return main(list(argv))
    except SystemExit as e:  # argparse's --help and usage errors: an exit code, not a traceback
        return e.code if isinstance(e.code, int) else 2


def register():
    global _cli_handle
    _register_classes()
    bpy.types.Scene.humantex = bpy.props.PointerProperty(type=properties.HumantexSettings)
    _cli_handle = bpy.utils.register_cli_command(CLI_COMMAND, run_batch_command)


def unregister():
    global _cli_handle
    operators.cancel_running_tasks()
    models.cancel_running()
    if _cli_handle is not None:
        bpy.utils.unregister_cli_command(_cli_handle)
        _cli_handle = None
    del bpy.types.Scene.humantex
    _unregister_classes()
