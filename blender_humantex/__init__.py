"""blender_humantex: one photo of a person -> a complete SMPL-UV texture.

Rooms, kept apart:
  core/    numpy/torch, no bpy  (the request and its sources, UV layout, models, pipeline, training, evaluation)
  worker/  the process boundary (server needs torch; client needs neither torch nor bpy)
  addon/   bpy only (preferences, panel, operators, materials, batch)
  cli/     the `humantex` command line (imports core and the worker; nothing imports it)

This file imports neither bpy nor torch, so `import blender_humantex` works in Blender's
Python, in the worker's Python, and in a plain interpreter. Blender calls register()/unregister().
"""

from .version import __version__  # noqa: F401  (the package's public version)


def register():
    from .addon import register as _register

    _register()


def unregister():
    from .addon import unregister as _unregister

    _unregister()
