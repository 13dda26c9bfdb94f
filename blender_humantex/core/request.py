"""The one generate request and the one table of input sources. Standard library only.

Blender's Python imports this (through the worker client), so nothing here may import numpy or
torch: a source's reader is named by its module path and imported only when a job reads it.

    request = GenerateRequest.from_fields({"photo": "im.jpg", "iuv": "IUV.png", "out_dir": "out"})
    request.source                       # "iuv": the one source its fields make up
    texture = SOURCES[request.source].read(request, size=1024)   # -> sources.partial.PartialTexture

A request is checked once, when it is built (from_fields, or check() on a hand-made one): field
types, exactly one source with all its required fields, the size. Everything downstream trusts it.

Adding a source: one module in core/sources/ with a `read(request, size, progress, **options)`,
one row in SOURCES (in the order sources are recognised), and its item in the add-on's source menu.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from numbers import Integral
from typing import Optional

from .errors import InputError

# MIN_SIZE..MAX_SIZE: the UV layout's sizes, the output sizes and the camera projection's.
MIN_SIZE, MAX_SIZE = 64, 4096
DEFAULT_SIZE = 1024  # the output size when a request gives none
# The methods a request may name, and each one's networks in the order models.methods.define_method
# passes them to the method object.
METHODS = {"full": ("sampler", "refiner"), "lazova": ("lazova",)}


class RequestError(InputError):
    """A generate request that is not well formed; `request_id` is the wire id it came with (or None)."""

    kind = "bad_request"

    def __init__(self, message: str, kind: str | None = None, request_id=None):
        super().__init__(message, kind)
        self.request_id = request_id


def check_size(size, what: str = "texture size", low: int = MIN_SIZE, high: int = MAX_SIZE) -> int:
    """`size` as an int, or InputError(kind="bad_size") when it is not an integer in low..high.

    The one size check: every caller passes its range (MIN_SIZE..MAX_SIZE unless it has a narrower one).
    """
    if isinstance(size, bool) or not isinstance(size, Integral) or not low <= int(size) <= high:
        raise InputError(f"{what} must be an integer in {low}..{high}, got {size!r}", kind="bad_size")
    return int(size)


@dataclass(frozen=True)
class Source:
    """One input source: which request fields make it up, and the reader that turns them into a PartialTexture."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    # "module:function" of the reader, imported on first use: read(request, size, progress, **options)
    reader: str
    label: str  # for messages: what the user gives
    # the fields that say a request means this source (the first row, in table order, with one given)
    keys: tuple[str, ...]
    # reader options outside the request (the CLI's flags): the keyword arguments its reader takes
    options: tuple[str, ...] = ()
    # the output size when the request gives none: DEFAULT_SIZE, or None for the input's own size
    default_size: Optional[int] = DEFAULT_SIZE

    def read(self, request: GenerateRequest, size=None, progress=None, **options):
        """The request's inputs -> a sources.partial.PartialTexture (options not this source's are left out)."""
        module, function = self.reader.split(":")
        read: Callable = getattr(importlib.import_module(module), function)
        mine = {k: v for k, v in options.items() if k in self.options and v is not None}
        return read(request, size=size, progress=progress, **mine)


_SOURCES_PACKAGE = __name__.rsplit(".", 1)[0] + ".sources"

# name -> Source, in the order a request's fields are recognised (more specific sources first).
SOURCES = {
    source.name: source
    for source in (
        Source("projection", ("photo", "mesh", "camera"), ("mask",), f"{_SOURCES_PACKAGE}.projection:read",
               "photo + mesh + camera (camera projection)", keys=("mesh", "camera"),
               options=("y_up", "margin_px", "max_angle_deg")),
        Source("partial", ("partial", "visibility"), (), f"{_SOURCES_PACKAGE}.partial:read",
               "partial + visibility", keys=("partial", "visibility"), default_size=None),
        Source("iuv", ("photo", "iuv"), ("inds", "person", "iuv_order"), f"{_SOURCES_PACKAGE}.iuv:read",
               "photo + iuv (DensePose)", keys=("iuv",), options=("on_size_mismatch", "erode_px")),
    )
}
# A request whose fields name no source yet (only a photo, or nothing): its missing fields are this one's.
FALLBACK_SOURCE = "iuv"
# Older spellings of source names in files users wrote (the batch manifest's "source"), accepted forever.
SOURCE_ALIASES = {"densepose": "iuv", "camera": "projection"}


def source_name(name: str) -> str:
    """A source name as a user may spell it (an alias included) -> its name in SOURCES; RequestError if none."""
    name = SOURCE_ALIASES.get(name, name)
    if name not in SOURCES:
        spellings = sorted(SOURCES) + sorted(SOURCE_ALIASES)
        raise RequestError(f"unknown source {name!r}: use one of {', '.join(spellings)}", kind="bad_source")
    return name


def _path(doc):
    return field(default=None, metadata={"type": "path", "doc": doc})


def _text(doc):
    return field(default=None, metadata={"type": "text", "doc": doc})


def _int(doc):
    return field(default=None, metadata={"type": "int", "doc": doc})


@dataclass(frozen=True)
class GenerateRequest:
    """The inputs of one generate job. None means "not given" (the default) and is left out of a
    message; paths are absolute on the wire (the worker's cwd is not the client's).

    Exactly one source per request (see SOURCES):
      iuv:         photo, iuv, inds?, person?, iuv_order?   (a DensePose IUV image made elsewhere)
      partial:     partial, visibility
      projection:  photo, mesh (OBJ/PLY/GLB, or the add-on's .npz of world-space arrays),
                   camera (camera JSON, see core/sources/cameras.py), mask?
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
    def from_fields(cls, values: dict, request_id=None, need_out_dir: bool = True) -> GenerateRequest:
        """A dict of fields (a generate message: "id" and "type" are ignored) -> a checked request."""
        unknown = sorted(set(values) - set(GENERATE_FIELDS) - {"id", "type"})
        if unknown:
            raise RequestError("unknown generate field(s): {}".format(", ".join(unknown)), request_id=request_id)
        typed = {}
        for f in fields(cls):
            value = values.get(f.name)
            if value is None:
                continue
            if f.metadata["type"] == "int":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise RequestError(f"generate field {f.name!r} must be an integer", request_id=request_id)
            else:
                if isinstance(value, os.PathLike):
                    value = os.fspath(value)
                if not isinstance(value, str):
                    raise RequestError(f"generate field {f.name!r} must be a string", request_id=request_id)
            typed[f.name] = value
        return cls(**typed).check(request_id, need_out_dir=need_out_dir)

    @property
    def given(self) -> set[str]:
        return {name for name in GENERATE_FIELDS if getattr(self, name) not in (None, "")}

    @property
    def source(self) -> str:
        """The name of the source its fields make up (check() makes sure they make up exactly one)."""
        given = self.given
        return next((s.name for s in SOURCES.values() if given & set(s.keys)), FALLBACK_SOURCE)

    def check(self, request_id=None, need_out_dir: bool = True) -> GenerateRequest:
        """self, or RequestError: an out_dir (unless not needed yet), exactly one source, a known method,
        a size in range."""
        if need_out_dir and not self.out_dir:
            raise RequestError("generate needs out_dir", kind="missing_field", request_id=request_id)
        source = SOURCES[self.source]
        given = self.given
        missing = [name for name in source.required if name not in given]
        foreign = sorted(given - set(source.required) - set(source.optional) - set(COMMON_FIELDS))
        if missing or foreign:
            raise RequestError(
                "generate needs exactly one of: " + ", ".join(s.label for s in SOURCES.values()) + "; "
                + ("missing {}".format(", ".join(missing)) if missing else "")
                + ("; " if missing and foreign else "")
                + ("{} do not go with {}".format(", ".join(foreign), source.name) if foreign else ""),
                kind="missing_field",
                request_id=request_id,
            )
        if self.method is not None and self.method not in METHODS:
            raise RequestError(f"unknown method {self.method!r}: use one of {', '.join(METHODS)}", kind="bad_method",
                               request_id=request_id)
        if self.size is not None:
            try:
                check_size(self.size, what="output size")
            except InputError as e:
                raise RequestError(str(e), kind=e.kind, request_id=request_id) from None
        return self

    @property
    def output_size(self) -> Optional[int]:
        """The size to make: the request's, else its source's default (None: the input's own size)."""
        return self.size if self.size is not None else SOURCES[self.source].default_size

    def inputs(self) -> dict[str, str]:
        """The source's input files, by field name, in the table's order (what meta.json records)."""
        source = SOURCES[self.source]
        return {name: getattr(self, name) for name in (*source.required, *source.optional)
                if name in PATH_FIELDS and getattr(self, name) is not None}

    def with_absolute_paths(self, base=None) -> GenerateRequest:
        """A copy whose path fields are absolute (relative ones taken from `base`, default the cwd)."""
        values = self.to_fields()
        for name in PATH_FIELDS:
            if values.get(name):
                path = os.path.expanduser(os.fspath(values[name]))
                values[name] = os.path.normpath(os.path.join(base, path)) if base else os.path.abspath(path)
        return type(self)(**values)

    def to_fields(self) -> dict:
        """The given fields as a plain dict (None left out)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


GENERATE_FIELDS = tuple(f.name for f in fields(GenerateRequest))
PATH_FIELDS = tuple(f.name for f in fields(GenerateRequest) if f.metadata["type"] == "path")
COMMON_FIELDS = ("out_dir", "size", "method", "max_pixels")
