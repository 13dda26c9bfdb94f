"""The batch manifest: JSON lines, one job a line, checked whole before anything runs.

    {"id": "alice", "photo": "alice.jpg", "iuv": "alice_IUV.png", "inds": "alice_INDS.png", "person": 0, "size": 1024}
    {"id": "bob", "partial": "bob/partial.png", "visibility": "bob/visibility.png"}
    {"id": "carol", "photo": "carol.jpg", "mesh": "carol.obj", "camera": "carol_camera.json"}

A job is an "id" plus a generate request's fields (any source the worker accepts); relative paths are
relative to the manifest's folder. Blank lines are skipped. Any bad line (not JSON, not an object,
an unknown field, a bad or duplicate id, a wrong combination of sources) is an InputError naming its
line: the batch refuses before writing anything. A missing or unreadable *file* is not a manifest
error: that job fails on its own and the others run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .adapter import REQUEST_FIELDS, to_request

# An id names the job's output folder DIR/<id>: one safe path component, portable to every filesystem.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
STATUS_FILE = "batch.status.jsonl"
RESERVED_IDS = {STATUS_FILE.lower()}


@dataclass(frozen=True)
class FarmJob:
    id: str
    request: object  # the generate request (adapter.to_request)
    line: int  # 1-based line of the manifest, for messages


def read_manifest(path) -> list[FarmJob]:
    """Every job of the manifest at `path`, or InputError (kind bad_manifest) with one line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"manifest not found: {path}", kind="missing_file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read manifest {path}: {getattr(e, 'strerror', None) or e}", kind="bad_manifest") from None
    base = path.resolve().parent
    jobs: list[FarmJob] = []
    seen: dict[str, int] = {}  # lower-cased id -> line (ids differing in case share a folder on macOS/Windows)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        job = parse_line(line, number, base, path.name)
        first = seen.setdefault(job.id.lower(), number)
        if first != number:
            raise InputError(f"{path.name} line {number}: duplicate id {job.id!r} (also on line {first})",
                             kind="bad_manifest")
        jobs.append(job)
    if not jobs:
        raise InputError(f"{path.name} has no jobs: one JSON object a line, e.g."
                         ' {"id": "a", "photo": "a.jpg", "iuv": "a_IUV.png"}', kind="bad_manifest")
    return jobs


def parse_line(line: str, number: int, base: Path, name: str = "manifest") -> FarmJob:
    where = f"{name} line {number}"
    try:
        fields = json.loads(line)
    except ValueError as e:
        raise InputError(f"{where}: not JSON ({e})", kind="bad_manifest") from None
    if not isinstance(fields, dict):
        raise InputError(f"{where}: a job is a JSON object, got {type(fields).__name__}", kind="bad_manifest")
    job_id = fields.pop("id", None)
    check_id(job_id, where)
    unknown = sorted(set(fields) - set(REQUEST_FIELDS))
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}; a job takes id, {', '.join(REQUEST_FIELDS)}",
                         kind="bad_manifest")
    try:
        request = to_request(fields, base)
    except InputError as e:
        raise InputError(f"{where} ({job_id}): {e}", kind="bad_manifest") from None
    return FarmJob(job_id, request, number)


def check_id(job_id, where: str) -> None:
    if not isinstance(job_id, str):
        raise InputError(f'{where}: every job needs an "id" string (it names the folder DIR/<id>)', kind="bad_manifest")
    if not ID_PATTERN.fullmatch(job_id) or ".." in job_id or job_id.lower() in RESERVED_IDS:
        raise InputError(
            f"{where}: id {job_id!r} cannot name a folder: use 1-128 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit, no '..'",
            kind="bad_manifest",
        )
