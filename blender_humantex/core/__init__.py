"""The bpy-free core: UV layout, unwrapping, models, pipeline, training, evaluation and CLI.

Submodules that need torch import it themselves; importing this package does not.
"""
