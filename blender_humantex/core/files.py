"""Where the package's own files are, and atomic file writes: a temporary file in the same folder,
then a rename over the target, so a crash, a full disk or a cancel never leaves half a file where a
whole one was expected.

Standard library only: the add-on (Blender's Python) uses it too.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

# The weights shipped with the package: the default for the CLI, the worker and the add-on.
DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write(path, save) -> Path:
    """`save(tmp)` writes the content to the path `tmp` beside `path`; then `tmp` replaces `path`.

    The folder is made if missing. On any error (or cancel) the temporary file is removed and the
    old `path`, if any, is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix + ".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs should get the usual permissions
    try:
        save(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text(path, text: str) -> Path:
    def save(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    return atomic_write(path, save)


def write_json(path, obj) -> Path:
    """Indented, keys sorted, one newline at the end: diffable, and the same bytes for the same data."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


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
