"""The one bridge between a manifest line and the generate job.

A job's fields are a generate request's fields (the request type is defined once, elsewhere); this
module is the only place in core.farm that knows where that type lives and how core.job takes it.
"""

from __future__ import annotations

from ...worker.protocol import GENERATE_FIELDS, GenerateRequest, ProtocolError
from ..errors import InputError

# What a manifest line may carry besides "id": every request field but the output folder (the batch's).
REQUEST_FIELDS = tuple(name for name in GENERATE_FIELDS if name != "out_dir")


def to_request(fields: dict, base_dir) -> GenerateRequest:
    """A job's fields -> a checked request, relative paths taken from `base_dir` (the manifest's folder).

    InputError (kind bad_manifest) for fields of the wrong type or a wrong combination of sources."""
    try:
        request = GenerateRequest.from_message(dict(fields, out_dir=str(base_dir)))
    except ProtocolError as e:
        raise InputError(str(e), kind="bad_manifest") from None
    return request.with_absolute_paths(str(base_dir))


def generate(pipeline, request: GenerateRequest, out_dir, progress=None) -> dict:
    """core.job's generate for one request, writing into `out_dir` (a staging folder)."""
    from ..job import generate as generate_job

    inputs = {k: v for k, v in request.to_fields().items() if k != "out_dir"}
    return generate_job(pipeline, out_dir=out_dir, progress=progress, **inputs)


def request_fields(request: GenerateRequest) -> dict:
    """The request's given fields as plain data (what the job key and the actors see)."""
    return {k: v for k, v in request.to_fields().items() if k != "out_dir"}


def input_paths(request: GenerateRequest) -> dict:
    """{field: absolute path} of the request's input files."""
    from ...worker.protocol import PATH_FIELDS

    return {k: v for k, v in request_fields(request).items() if k in PATH_FIELDS}
