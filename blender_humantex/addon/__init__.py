"""The Blender side (bpy only; never imports torch). Filled by the add-on issue."""


def register():
    pass


def unregister():
    pass
