"""The one bridge between a manifest line and the generate job: the request (core/request.py) and
core.job.generate, used here exactly as `humantex generate` and the worker use them."""

from __future__ import annotations

import dataclasses

from ..errors import InputError
from ..request import GENERATE_FIELDS, GenerateRequest, RequestError

# What a manifest line may carry besides "id": every request field but the output folder (the batch's).
REQUEST_FIELDS = tuple(name for name in GENERATE_FIELDS if name != "out_dir")


def to_request(fields: dict, base_dir) -> GenerateRequest:
    """A job's fields -> a checked request (any source the worker accepts), relative paths taken from
    `base_dir` (the manifest's folder). InputError (kind bad_manifest) for a bad field or mix of sources."""
    try:
        request = GenerateRequest.from_fields(fields, need_out_dir=False)
    except RequestError as e:
        raise InputError(str(e), kind="bad_manifest") from None
    return request.with_absolute_paths(str(base_dir))


def generate(pipeline, request: GenerateRequest, out_dir, progress=None) -> dict:
    """core.job's generate for one request, writing into `out_dir` (a staging folder)."""
    from ..job import generate as generate_job

    return generate_job(pipeline, dataclasses.replace(request, out_dir=str(out_dir)), progress=progress)


def request_fields(request: GenerateRequest) -> dict:
    """The request's given fields as plain data (what the job key sees)."""
    return {k: v for k, v in request.to_fields().items() if k != "out_dir"}


def input_paths(request: GenerateRequest) -> dict:
    """{field: absolute path} of the request's input files."""
    return request.inputs()
