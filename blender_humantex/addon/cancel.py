"""The add-on's Cancel buttons: one shape for every long task (texture generation, model download/install)."""

from __future__ import annotations


class CancelOperator:
    """Mixin for an INTERNAL "Cancel" operator: available while its task runs and is not yet cancelling.
    A subclass names its task (`task(context)`, the object with .cancel() and .cancelling) and says what
    cancelling does in `execute`."""

    bl_label = "Cancel"
    bl_options = {"INTERNAL"}

    @staticmethod
    def task(context):
        raise NotImplementedError

    @classmethod
    def poll(cls, context):
        task = cls.task(context)
        return task is not None and not task.cancelling
