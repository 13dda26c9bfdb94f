"""The exceptions whose message is one line for the user: the panel and the Info log (or the batch's
stderr) show it, never a traceback. The add-on raises InputError for bad input of its own."""

from ..core.errors import HumantexError
from ..worker.client import WorkerError

USER_ERRORS = (HumantexError, WorkerError)
