"""One exception family for every failure a user can cause or fix.

`kind` is machine-readable (the worker protocol's error `kind`); the message is one line for a human.
The CLI and the worker print the message, never a traceback, for these.
"""


class HumantexError(Exception):
    kind = "error"

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        if kind is not None:
            self.kind = kind

    @property
    def message(self) -> str:
        return str(self)


class InputError(HumantexError):
    """Bad or unreadable user input (photo, IUV, INDS, partial, visibility, manifest...)."""

    kind = "bad_input"


class WeightsError(HumantexError):
    """Weights missing, corrupt, or not matching the architecture / UV layout."""

    kind = "weights"


class DependencyError(HumantexError):
    """A package the requested feature needs is not installed in this environment."""

    kind = "dependency"


class CancelledError(HumantexError):
    kind = "cancelled"
