"""The bpy-free core: the request and its sources, UV layout, models, pipeline, training, evaluation.

It never imports the worker or the CLI (tests/test_structure.py).

Submodules that need torch import it themselves; importing this package does not.
"""
