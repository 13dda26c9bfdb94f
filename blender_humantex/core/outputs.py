"""A job's output folder: checked before any computation, and written all at once.

    out = prepare_output_dir(args.out, OUTPUT_NAMES, overwrite=args.overwrite)   # before computing
    with staged(out) as staging:
        report = ...(out_dir=staging)                                           # every file, hidden
        outputs = publish(staging, out, report["outputs"])                      # then all into place

The CLI (`generate`, `complete`, `unwrap`, `project`) and the worker use these same functions.

Reusing a folder. A job writes fixed names (final.png, ..., meta.json). In a folder where an earlier
humantex run left its meta.json, those names are this tool's own files and a new run replaces them.
A same-named file that humantex did not write (no humantex meta.json beside it) is never replaced:
the job refuses before computing, unless told to overwrite (`--overwrite`). Other files in the
folder are never touched.

All or nothing. Files are written into a hidden folder inside out_dir (`.humantex-job-<pid>-...`,
same filesystem, so publishing is a rename per file, meta.json last). A run killed while writing
leaves the previous set of layers as it was, plus its hidden folder, which the next run in that
folder removes (its process is gone), together with any `.<name>.*.tmp` left by an older version.

Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import InputError

STAGING_PREFIX = ".humantex-job-"
META_FILE = "meta.json"
# A meta.json with one of these keys was written by humantex (unwrap, project and generate record the
# UV layout; densepose, which makes no texture, its "densepose" section).
META_MARKS = ("uv_layout", "densepose")


def prepare_output_dir(out_dir, names, overwrite: bool = False) -> Path:
    """The output folder, known to be writable (or creatable), with no file in the way.

    `names`: the files the job will write there. Raises InputError (kind bad_output or
    would_overwrite) with one line for the user; call it before the computation. A missing folder
    is not made here (a job that fails later leaves nothing behind): `staged` makes it."""
    if out_dir is None or not str(out_dir).strip():
        raise InputError("the output folder is empty: give one (--out DIR)", kind="bad_output")
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"output path {out} exists and is not a folder", kind="bad_output")
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise InputError(f"cannot make output folder {out}: {existing} is a file, not a folder", kind="bad_output")
    try:  # what os.access cannot tell (root, read-only mounts, /proc): try it
        fd, probe = tempfile.mkstemp(prefix=".humantex-probe-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise InputError(f"cannot write to output folder {out}: {e.strerror or e}", kind="bad_output") from None
    if out.is_dir():
        if not overwrite:
            foreign = [name for name in names if (out / name).exists() and not _written_by_humantex(out)]
            if foreign:
                raise InputError(
                    f"{out} already holds {', '.join(foreign)}, not written by humantex (no humantex meta.json"
                    " beside them): choose another output folder, or pass --overwrite to replace them",
                    kind="would_overwrite",
                )
        remove_leftovers(out, names)
    return out


def _written_by_humantex(out: Path) -> bool:
    try:
        with open(out / META_FILE, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and any(mark in meta for mark in META_MARKS)


def remove_leftovers(out: Path, names=()) -> None:
    """Staging folders of runs whose process is gone, and temporary files of our names (`.final.*.png.tmp`)."""
    for stale in out.glob(STAGING_PREFIX + "*"):
        pid = stale.name[len(STAGING_PREFIX) :].split("-")[0]
        if stale.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    for name in names:
        stem, suffix = os.path.splitext(name)
        for tmp in out.glob(f".{stem}.*{suffix}.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()


def pid_alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_staging_dir(out_dir) -> Path:
    """A hidden folder inside out_dir (same filesystem, so publishing is a rename)."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        remove_leftovers(out)
        return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=out))
    except OSError as e:
        raise InputError(f"cannot write to output folder {out}: {e.strerror or e}", kind="bad_output") from None


@contextlib.contextmanager
def staged(out_dir):
    """A staging folder for one job, removed afterwards whatever happened; an output folder made
    for a job that then failed is removed too (when empty)."""
    out = Path(out_dir)
    created = not out.exists()
    staging = make_staging_dir(out)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, out_dir: Path, outputs: dict) -> dict:
    """Move every staged file into out_dir (meta.json last, so its presence means the set is
    complete) and return the outputs with their final paths."""
    staging, out_dir = Path(staging), Path(out_dir)
    files = sorted((p for p in staging.rglob("*") if p.is_file()), key=lambda p: (p.name == META_FILE, str(p)))
    try:
        for path in files:
            target = out_dir / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
    except OSError as e:
        raise InputError(f"cannot write to output folder {out_dir}: {e.strerror or e}", kind="bad_output") from None
    published = {}
    for name, path in outputs.items():
        path = Path(path)
        try:
            published[name] = str(out_dir / path.resolve().relative_to(staging.resolve()))
        except ValueError:  # written outside the staging folder: report as is
            published[name] = str(path)
    return published
