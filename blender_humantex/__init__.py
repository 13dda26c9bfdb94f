"""blender_humantex: one photo of a person -> a complete SMPL-UV texture.

Three rooms, kept apart:
  core/    numpy/torch, no bpy  (UV layout, unwrap, models, pipeline, training, evaluation, CLI)
  worker/  the process boundary (server needs torch; client needs neither torch nor bpy)
  addon/   bpy only (preferences, panel, operators, materials, batch)

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
