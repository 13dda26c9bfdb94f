"""The worker's wire format: one JSON object per line, UTF-8, over the worker's stdin/stdout.

Shared by the server and the client, so it imports nothing but the standard library (Blender's
Python imports the client). `__main__` imports it before its Python version check, so it sticks
to Python 3.6 syntax.

Requests (client -> worker), each with a client-chosen string "id":
  hello      {}                                    -> hello
  generate   the fields of GenerateRequest (below) -> progress*, then result | error
  cancel     {target: <id of a generate or model_fetch/model_install request>}
                                                   -> ack (the job itself ends with error kind "cancelled")
  shutdown   {}                                    -> ack, then the worker exits
  model_status  {model: "densepose"}               -> result {model: {installed, path?, found_by?, message?, ...}}
  model_fetch   {model, into?: cache|worker, force?} -> progress* (stage "download"), then result | error
  model_install {model, file, into?}               -> progress* (stage "install"), then result | error
  (the model requests are worker/models.py's; their progress replies add done_bytes and total_bytes)
Replies (worker -> client) carry the id of the request they answer:
  hello      {protocol, version, torch, python, executable, device, weights, load_count, pid, package_path,
              features, densepose}   (features lists what this worker does beyond protocol 1's first
              version, e.g. "models"; densepose is model_status's answer for the DensePose model)
  progress   {stage: load|unwrap|sample|refine|write, fraction: 0..1}
  result     {outputs: {name: path}, timings: {...}, meta: {...}, load_count}
  error      {message: <one line for a human>, kind: <machine-readable>}
  ack        {of: "cancel"|"shutdown", target?, found?}
A request that cannot be parsed at all gets an error reply with id null.
"""

import json
import os
from typing import Optional

try:
    from dataclasses import dataclass, field, fields
except ImportError:  # Python 3.6: __main__ only needs the constants below to say "too old", then exits

    def dataclass(cls):
        return cls

    def field(**kwargs):
        return kwargs.get("default")

    def fields(cls):
        return ()

PROTOCOL_VERSION = 1

# New request types are additions: a client that never sends them sees protocol 1 unchanged, and
# hello's "features" tells a newer client what this worker understands.
REQUEST_TYPES = ("hello", "generate", "cancel", "shutdown", "model_status", "model_fetch", "model_install")
FEATURES = ("models",)
REPLY_TYPES = ("hello", "progress", "result", "error", "ack")
STAGES = ("load", "unwrap", "sample", "refine", "write")
# Each stage's share of a whole job, as (start, end) of the overall fraction. A progress reply's
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


def to_plain(obj):
    """Plain JSON data only crosses the boundary: numpy scalars become numbers, paths become
    strings, anything else unknown becomes its str(). Never a tensor or array by accident."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    size = getattr(obj, "size", None)
    if hasattr(obj, "item") and (size is None or size == 1):
        try:
            return to_plain(obj.item())
        except (TypeError, ValueError):
            pass
    return str(obj)


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
    kind = message.get("type")
    if kind not in allowed_types:
        raise ProtocolError(
            "unknown message type {!r} (expected one of {})".format(kind, ", ".join(allowed_types)),
            kind="unknown_type",
            request_id=request_id,
        )
    return message


# ---- the generate request: defined once, used by the client, the server, the batch and the add-on


def _path(doc):
    return field(default=None, metadata={"kind": "path", "doc": doc})


def _text(doc):
    return field(default=None, metadata={"kind": "text", "doc": doc})


def _int(doc):
    return field(default=None, metadata={"kind": "int", "doc": doc})


# Which fields make up each input kind: exactly one kind per request, with all its required fields.
SOURCES = {
    # source: (required fields, optional fields that belong to it)
    "photo": (("photo", "iuv"), ("inds", "person", "iuv_order")),
    "partial": (("partial", "visibility"), ()),
    "projection": (("photo", "mesh", "camera"), ("mask",)),
}


@dataclass
class GenerateRequest:
    """The inputs of one generate job. Paths are absolute on the wire (the worker's cwd is not the
    client's); None means "not given" (the worker's default) and is left out of the message.

    Three kinds of input, exactly one per request (see SOURCES):
      photo + DensePose:   photo, iuv, inds?, person?, iuv_order?
      partial texture:     partial, visibility
      camera projection:   photo, mesh (OBJ/PLY/GLB, or the add-on's .npz of world-space arrays),
                           camera (camera JSON, see core/projection.py), mask?
    """

    out_dir: Optional[str] = _path("output folder (made if missing)")
    photo: Optional[str] = _path("photo of the person")
    iuv: Optional[str] = _path("DensePose IUV image of the photo")
    inds: Optional[str] = _path("DensePose INDS person-index image")
    person: Optional[int] = _int("person index in INDS")
    iuv_order: Optional[str] = _text("IUV channel order: auto, vui or iuv")
    partial: Optional[str] = _path("partial texture PNG")
    visibility: Optional[str] = _path("visibility mask PNG")
    mesh: Optional[str] = _path("posed mesh, world space")
    camera: Optional[str] = _path("camera JSON")
    mask: Optional[str] = _path("person mask PNG for the photo (white = person)")
    size: Optional[int] = _int("output size in texels")
    method: Optional[str] = _text("full or lazova")
    max_pixels: Optional[int] = _int("largest input image accepted, in pixels")

    @classmethod
    def from_message(cls, message, request_id=None):
        """A generate message (or a plain dict of fields) -> a checked request; ProtocolError if bad."""
        unknown = sorted(set(message) - set(GENERATE_FIELDS) - {"id", "type"})
        if unknown:
            raise ProtocolError("unknown generate field(s): {}".format(", ".join(unknown)), request_id=request_id)
        values = {}
        for f in fields(cls):
            value = message.get(f.name)
            if value is None:
                continue
            if f.metadata["kind"] == "int":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ProtocolError(f"generate field {f.name!r} must be an integer", request_id=request_id)
            else:
                if isinstance(value, os.PathLike):
                    value = os.fspath(value)
                if not isinstance(value, str):
                    raise ProtocolError(f"generate field {f.name!r} must be a string", request_id=request_id)
            values[f.name] = value
        request = cls(**values)
        request.check(request_id)
        return request

    @property
    def source(self):
        """"photo", "partial" or "projection" (from the fields present; check() makes it unambiguous)."""
        if self.mesh or self.camera:
            return "projection"
        if self.partial or self.visibility:
            return "partial"
        return "photo"

    def check(self, request_id=None):
        if not self.out_dir:
            raise ProtocolError("generate needs out_dir", kind="missing_field", request_id=request_id)
        given = {name for name in GENERATE_FIELDS if getattr(self, name) not in (None, "")}
        source = self.source
        required, optional = SOURCES[source]
        missing = [name for name in required if name not in given]
        foreign = sorted(given - set(required) - set(optional) - set(COMMON_FIELDS))
        if missing or foreign:
            raise ProtocolError(
                "generate needs exactly one of: photo + iuv (DensePose), partial + visibility, or"
                " photo + mesh + camera (camera projection); "
                + ("missing {}".format(", ".join(missing)) if missing else "")
                + ("; " if missing and foreign else "")
                + ("{} do not go with {}".format(", ".join(foreign), source) if foreign else ""),
                kind="missing_field",
                request_id=request_id,
            )
        return self

    def with_absolute_paths(self, base=None):
        """A copy whose path fields are absolute (relative ones taken from `base`, default the cwd)."""
        values = self.to_fields()
        for name in PATH_FIELDS:
            if values.get(name):
                path = os.path.expanduser(os.fspath(values[name]))
                values[name] = os.path.normpath(os.path.join(base, path)) if base else os.path.abspath(path)
        return type(self)(**values)

    def to_fields(self):
        """The given fields as a plain dict (None left out)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def to_message(self, request_id):
        return dict(self.to_fields(), id=request_id, type="generate")

    def job_inputs(self):
        """The fields a generate job takes besides out_dir, as keyword arguments."""
        return {k: v for k, v in self.to_fields().items() if k != "out_dir"}


GENERATE_FIELDS = tuple(f.name for f in fields(GenerateRequest))
PATH_FIELDS = tuple(f.name for f in fields(GenerateRequest) if f.metadata["kind"] == "path")
COMMON_FIELDS = ("out_dir", "size", "method", "max_pixels")
