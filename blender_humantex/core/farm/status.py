"""DIR/batch.status.jsonl: one record per job, and the key that says whether a job is already done.

A record: {"id", "status": "done" | "failed", "error": one line or null, "kind", "seconds", "key",
"attempts", "finished"}. Records are appended (and flushed) as jobs finish, so a killed batch keeps
every finished job; a later record for an id replaces an earlier one, and a truncated last line is
ignored. At the end of a run the file is rewritten, one line per id, atomically.

The key is a hash of what decides a job's output bytes: its fields (size, method, person, ...), the
content of every input file, the weights files and the package version. A rerun skips a job whose
last record has the same key and is "done" with a whole output set in its folder, or "failed" because
of its input files (INPUT_FAILURES: a bad IUV, too little coverage; `--retry-failed` reruns those);
everything else runs again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path

from ...version import __version__
from ..errors import InputError
from ..files import write_text
from ..outputs import missing_outputs
from .adapter import input_paths, request_fields
from .manifest import STATUS_FILE

# Failures the same input files give again (their content is in the key): a rerun reports these jobs
# as failed without running them. Any other failure (a dead worker, no DensePose model or weights yet,
# a full disk, a bug) may not happen again: those jobs run again.
INPUT_FAILURES = frozenset({
    "missing_file", "unreadable", "too_large", "bad_photo", "not_iuv", "ambiguous_iuv", "bad_inds", "no_person",
    "no_such_person", "size_mismatch", "aspect_mismatch", "not_square", "bad_shape", "bad_values", "bad_size",
    "empty_visibility", "full_visibility", "no_visible_texels", "low_coverage", "bad_camera", "bad_mesh", "no_uvs",
    "degenerate_mesh", "camera_inside", "not_in_view",
})


def file_digest(path, cache: dict | None = None) -> str | None:
    """sha256 of a file's content (None if it cannot be read: that job will fail and say why)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    memo = (str(path), stat.st_size, stat.st_mtime_ns)  # many jobs often share one IUV or mesh
    if cache is not None and memo in cache:
        return cache[memo]
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    if cache is not None:
        cache[memo] = digest.hexdigest()
    return digest.hexdigest()


def weights_key(weights_dir) -> str:
    """One id for every weights file in the folder (the networks, the prior and the PCA)."""
    from ..models.weights import weights_id

    files = sorted(Path(weights_dir).glob("*.safetensors"))
    ids = {p.name: weights_id(p) for p in files}
    return hashlib.sha256(json.dumps(ids, sort_keys=True).encode()).hexdigest()[:16]


def job_key(request, weights: str, cache: dict | None = None) -> str:
    paths = input_paths(request)
    identity = {
        "version": __version__,
        "weights": weights,
        "fields": {k: v for k, v in request_fields(request).items() if k not in paths},
        "inputs": {k: file_digest(p, cache) for k, p in sorted(paths.items())},
        "densepose": densepose_digest(request, cache),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


def densepose_digest(request, cache: dict | None = None) -> str | None:
    """A photo-only job's DensePose model (content), found as the job will find it when the request
    names none (HUMANTEX_DENSEPOSE_MODEL, the models folders): installing or replacing it reruns the job."""
    if request.source != "photo" or request.densepose_model:  # a named model file is one of the inputs
        return None
    from ..densepose.store import locate

    try:
        return file_digest(locate().path, cache)
    except InputError:  # no model yet: the job fails and says how to get one
        return None


class StatusFile:
    """The records of DIR/batch.status.jsonl, by id (the latest wins)."""

    def __init__(self, out_dir):
        self.path = Path(out_dir) / STATUS_FILE
        self.records: dict[str, dict] = {}
        self.written: list[str] = []  # ids recorded by this run, in order
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:  # the half-written last line of a killed run
                continue
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                self.records[record["id"]] = record

    def settled(self, job_id: str, key: str, job_dir, names) -> str | None:
        """"done" (same key, outputs whole), "failed" (same key, a failure the same inputs would
        repeat: bad input, too little coverage...), or None: the job must run."""
        record = self.records.get(job_id, {})
        if record.get("key") != key:
            return None
        if record.get("status") == "done" and not missing_outputs(job_dir, names):
            return "done"
        if record.get("status") == "failed" and record.get("kind") in INPUT_FAILURES:
            return "failed"
        return None

    def append(self, record: dict) -> None:
        record = {**record, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.records[record["id"]] = record
        self.written.append(record["id"])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def compact(self, order=()) -> None:
        """Rewrite the file with one line per id (the manifest's order first), atomically."""
        if not self.records:
            return
        ids = [i for i in order if i in self.records] + [i for i in self.records if i not in set(order)]
        write_text(self.path, "".join(json.dumps(self.records[i], sort_keys=True) + "\n" for i in ids))


@contextlib.contextmanager
def batch_lock(out_dir):
    """One batch at a time per output folder (two would run the same jobs twice and interleave the
    status file). An OS lock on DIR/.batch.lock: released when the process ends, however it ends."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    path = Path(out_dir) / ".batch.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InputError(f"another humantex batch is writing into {out_dir}: wait for it, or choose another --out",
                             kind="busy") from None
        yield
