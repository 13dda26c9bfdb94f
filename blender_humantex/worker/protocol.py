"""The worker's wire format: one JSON object per line, UTF-8, over the worker's stdin/stdout.

Shared by the server and the client, so it imports nothing but the standard library (Blender's
Python imports the client). `__main__` imports it before its Python version check, so it sticks
to Python 3.6 syntax.

Requests (client -> worker), each with a client-chosen string "id":
  hello      {}                                    -> hello
  generate   the fields of core.request.GenerateRequest  -> progress*, then result | error
  cancel     {target: <id of a generate request>}  -> ack (the job itself ends with error kind "cancelled")
  shutdown   {}                                    -> ack, then the worker exits
Replies (worker -> client) carry the id of the request they answer:
  hello      {protocol, version, torch, python, executable, device, weights, load_count, pid, package_path}
  progress   {stage: load|unwrap|sample|refine|write, fraction: 0..1}
  result     {outputs: {name: path}, timings: {...}, meta: {...}, load_count}
  error      {message: <one line for a human>, kind: <machine-readable>}
  ack        {of: "cancel"|"shutdown", target?, found?}
A request that cannot be parsed at all gets an error reply with id null.
"""

import json
import os
import sys

PROTOCOL_VERSION = 1

REQUEST_TYPES = ("hello", "generate", "cancel", "shutdown")
REPLY_TYPES = ("hello", "progress", "result", "error", "ack")
PROGRESS_STAGES = ("load", "unwrap", "sample", "refine", "write")
# Each progress stage's share of a whole job, as (start, end) of the overall fraction. A progress reply's
# fraction is within its stage; overall_fraction() maps it onto one bar that never goes back.
STAGE_SPANS = {
    "load": (0.0, 0.05),
    "unwrap": (0.05, 0.25),
    "sample": (0.25, 0.55),
    "refine": (0.55, 0.85),
    "write": (0.85, 1.0),
}

# Exit codes of a worker that cannot start. The server also prints one line
# "humantex-worker: fatal: <reason>" on stderr before exiting with one of these.
EXIT_OK = 0
EXIT_PYTHON_TOO_OLD = 3
EXIT_NO_TORCH = 4
EXIT_IMPORT_FAILED = 5
EXIT_BAD_ARGUMENTS = 2
FATAL_PREFIX = "humantex-worker: fatal: "

MIN_PYTHON = (3, 10)
# The worker environment's packages, pinned (pyproject's `worker` extra lists the same; a test
# checks). The file ships inside the package, so an installed extension can name its own copy.
REQUIREMENTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "requirements.txt")
INSTALL_HINT = f'the worker packages: pip install -r "{REQUIREMENTS_FILE}"'


def overall_fraction(stage, fraction):
    """A stage's own fraction (0..1) -> the whole job's fraction (0..1); unknown stages give 0."""
    start, end = STAGE_SPANS.get(stage, (0.0, 0.0))
    return start + (end - start) * min(1.0, max(0.0, float(fraction or 0.0)))


class ProtocolError(ValueError):
    """A line that is not a valid message. `kind` goes into the error reply."""

    def __init__(self, message, kind="bad_request", request_id=None):
        super().__init__(message)
        self.kind = kind
        self.request_id = request_id


def encode(message):
    """One message -> one line of bytes (compact JSON, ASCII-safe, newline-terminated)."""
    return (json.dumps(to_plain(message), ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


def decode(line, allowed_types):
    """One line -> a dict with a "type" among `allowed_types` and a string or null "id"."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("message is not UTF-8 text", kind="bad_json") from None
    text = line.strip()
    try:
        message = json.loads(text)
    except ValueError as e:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise ProtocolError(f"not a JSON message ({e}): {shown!r}", kind="bad_json") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a message must be a JSON object, got {type(message).__name__}")
    request_id = message.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError("message id must be a string")
    message_type = message.get("type")
    if message_type not in allowed_types:
        raise ProtocolError(
            "unknown message type {!r} (expected one of {})".format(message_type, ", ".join(allowed_types)),
            kind="unknown_type",
            request_id=request_id,
        )
    return message


# The generate request is core/request.py's (one definition for the client, the server, the batch and
# the add-on). __main__ imports this module on any Python, to say "too old", before anything else.
if sys.version_info >= MIN_PYTHON:
    from ..core.files import to_plain
    from ..core.request import (  # noqa: F401  (re-exported: the wire's generate fields)
        GENERATE_FIELDS,
        PATH_FIELDS,
        SOURCES,
        GenerateRequest,
        RequestError,
    )


def generate_message(request, request_id):
    """A checked GenerateRequest -> its generate message (the given fields, an id and the type)."""
    return dict(request.to_fields(), id=request_id, type="generate")
