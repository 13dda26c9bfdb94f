"""Where the DensePose model file lives, and the only two ways it arrives (fetch, install).

Standard library only: the CLI's `models` command, the worker and the add-on's status all use it,
and none of them may need torch to say whether the model is there.

Where the file is looked for, in this order (the first that applies wins; see `locate`):
  1. `--densepose-model PATH` (CLI) or the request's `densepose_model` field (worker)
  2. the environment variable HUMANTEX_DENSEPOSE_MODEL
  3. the worker's models folder: `<the worker's Python environment>/share/humantex/models/`
     (sys.prefix: a virtual environment's own folder, so it goes when that environment goes)
  4. the user's cache: `$XDG_CACHE_HOME/humantex/models/`, else `~/.cache/humantex/models/`
     (`~/Library/Caches/humantex/models/` on macOS, `%LOCALAPPDATA%\\humantex\\cache\\models\\` on Windows)
A file in folder 3 or 4 arrived through fetch or install, so it must match the pinned SHA-256; a
file named by 1 or 2 is the user's choice (another export, a stand-in) and is only hashed for meta.json.

Downloads happen only when asked (`humantex models fetch densepose`, the add-on's button): from the
pinned revision, streamed into a hidden temporary file beside the destination, SHA-256 checked,
then renamed into place. Whatever fails (network, HTTP error, interrupted body, wrong hash, full
disk, Ctrl-C, a cancel from the progress callback), the temporary file is removed: nothing that
looks like a model is left behind.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import HumantexError, InputError

MODEL_ENV = "HUMANTEX_DENSEPOSE_MODEL"
MODEL_FLAG = "--densepose-model"
# A studio mirror of the same file (the SHA-256 stays pinned, so a mirror cannot change the model).
URL_ENV = "HUMANTEX_DENSEPOSE_URL"
CHUNK_BYTES = 1 << 20
DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class ModelSpec:
    """One downloadable model: the pinned file and what to credit."""

    name: str
    file_name: str
    url: str
    sha256: str
    size_mb: int
    licence: str
    credit: str


# The TorchScript export of DensePose R-CNN R_50_FPN_DL_s1x used by ComfyUI's and sd-webui's
# ControlNet preprocessors and imaginAIry (which pins this revision in its config.py). The SHA-256
# is the one reported in issue 20; it could not be checked against any indexed source offline.
DENSEPOSE_REVISION = "65446422ea6225b9d72f93f3d2e2ad55e78b0b78"
DENSEPOSE = ModelSpec(
    name="densepose",
    file_name="densepose_r50_fpn_dl.torchscript",
    url=("https://huggingface.co/LayerNorm/DensePose-TorchScript-with-hint-image/resolve/"
         f"{DENSEPOSE_REVISION}/densepose_r50_fpn_dl.torchscript"),
    sha256="4f7260daa498ce8d4b4679f0692ef2f1f426e39121a907181eab37b8b0585878",
    size_mb=265,
    licence="CC BY-SA 3.0",
    credit=("DensePose R-CNN R_50_FPN_DL_s1x (detectron2 DensePose model zoo; Güler, Neverova, Kokkinos,"
            " DensePose: Dense Human Pose Estimation In The Wild, CVPR 2018), TorchScript export"
            " LayerNorm/DensePose-TorchScript-with-hint-image"),
)
MODELS = {DENSEPOSE.name: DENSEPOSE}

# The names of the places a model is found, as meta.json and the messages say them.
FROM_FLAG, FROM_ENV, FROM_WORKER, FROM_CACHE = MODEL_FLAG, MODEL_ENV, "worker models folder", "user cache"
FOLDER_KINDS = ("cache", "worker")  # where fetch/install may put a file (default: cache)


def worker_models_dir() -> Path:
    """The models folder of the Python environment this process runs in (the worker's)."""
    return Path(sys.prefix) / "share" / "humantex" / "models"


def user_cache_dir() -> Path:
    """The user's cache folder for humantex models (XDG_CACHE_HOME wins on every system)."""
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "humantex" / "models"
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "humantex" / "cache" / "models"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "humantex" / "models"
    return Path.home() / ".cache" / "humantex" / "models"


def models_dir(kind: str = "cache") -> Path:
    if kind not in FOLDER_KINDS:
        raise InputError(f"models folder must be one of {', '.join(FOLDER_KINDS)}, got {kind!r}", kind="bad_argument")
    return user_cache_dir() if kind == "cache" else worker_models_dir()


@dataclass(frozen=True)
class Located:
    path: Path
    found_by: str  # FROM_FLAG, FROM_ENV, FROM_WORKER or FROM_CACHE

    @property
    def managed(self) -> bool:
        """In one of our folders, so it came through fetch/install and must match the pinned hash."""
        return self.found_by in (FROM_WORKER, FROM_CACHE)


def how_to_get(spec: ModelSpec = DENSEPOSE) -> str:
    return (f"download it with `humantex models fetch {spec.name}` ({spec.size_mb} MB), or install a copy you have"
            f" with `humantex models install {spec.name} FILE`")


def locate(explicit=None, environ=None, spec: ModelSpec = DENSEPOSE) -> Located:
    """The model file to use, by the order in this module's docstring; InputError(kind no_model) if none."""
    environ = os.environ if environ is None else environ
    for given, found_by in ((explicit, FROM_FLAG), (environ.get(MODEL_ENV) or None, FROM_ENV)):
        if given:
            path = Path(given).expanduser()
            if not path.is_file():
                what = "is a folder, not a file" if path.is_dir() else "does not exist"
                raise InputError(f"the DensePose model {path} (from {found_by}) {what}", kind="no_model")
            return Located(path, found_by)
    folders = ((worker_models_dir(), FROM_WORKER), (user_cache_dir(), FROM_CACHE))
    for folder, found_by in folders:
        if (folder / spec.file_name).is_file():
            return Located(folder / spec.file_name, found_by)
    looked = " and ".join(str(folder) for folder, _ in folders)
    raise InputError(f"no DensePose model (looked in {looked}): {how_to_get(spec)}; or name a file with"
                     f" {MODEL_FLAG} or {MODEL_ENV}", kind="no_model")


class _Copy:
    """Streams read(n) chunks into a file (or nowhere), hashing them and reporting progress(done, total)."""

    def __init__(self, progress=None, total=None):
        self.digest, self.done, self.total, self.progress = hashlib.sha256(), 0, total, progress

    def run(self, read, f=None) -> str:
        while chunk := read(CHUNK_BYTES):
            if f is not None:
                f.write(chunk)
            self.digest.update(chunk)
            self.done += len(chunk)
            if self.progress:
                self.progress(self.done, self.total)
        return self.digest.hexdigest()


def sha256_of(path, progress=None) -> str:
    """The file's SHA-256 as hex; progress(done_bytes, total_bytes) while reading."""
    path = Path(path)
    with open(path, "rb") as f:
        return _Copy(progress, path.stat().st_size).run(f.read)


def _hash_error(what: str, got: str, want: str) -> InputError:
    return InputError(f"{what} fails the SHA-256 check (got {got[:16]}..., expected {want[:16]}...):"
                      " it is not the pinned DensePose export, so it was not kept", kind="bad_model")


def _temporary_beside(dest: Path) -> Path:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as e:
        raise InputError(f"cannot write to {dest.parent}: {e.strerror or e}", kind="bad_output") from None
    os.close(fd)
    return Path(tmp)


def _write_atomically(dest: Path, fill) -> Path:
    """`fill(file)` writes into a hidden temporary file beside dest; renamed onto dest only if it returns."""
    tmp = _temporary_beside(dest)
    try:
        with open(tmp, "wb") as f:
            fill(f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except OSError as e:
        raise InputError(f"cannot write {dest}: {e.strerror or e}", kind="bad_output") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def download(url: str, dest, sha256: str, progress=None, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download url to dest: streamed, SHA-256 checked, renamed into place; nothing left on failure.

    progress(done_bytes, total_bytes or None) is called per chunk; it may raise (a cancel) to stop.
    Errors: HumantexError(kind download_failed) for the network, InputError(kind bad_model) for a wrong hash,
    InputError(kind bad_output) for the disk.
    """
    dest = Path(dest)

    def fill(f):
        got = _stream(url, f, progress, timeout)
        if got != sha256.lower():
            raise _hash_error(f"the file downloaded from {_host(url)}", got, sha256)

    return _write_atomically(dest, fill)


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def _stream(url: str, f, progress, timeout: float) -> str:
    """Copy the body of url into f; the SHA-256 of what was written."""
    from ...version import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"humantex/{__version__}"})
    copy = _Copy(progress)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            copy.total = int(length) if length and length.isdigit() else None
            got = copy.run(response.read, f)
    except urllib.error.HTTPError as e:
        raise HumantexError(f"download failed: HTTP {e.code} {e.reason} from {url}", kind="download_failed") from None
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as e:
        reason = getattr(e, "reason", None) or e.__class__.__name__
        raise HumantexError(f"download from {_host(url)} failed after {copy.done / 1e6:.1f} MB: {reason}",
                            kind="download_failed") from None
    if copy.total is not None and copy.done != copy.total:  # the server closed the connection early
        raise HumantexError(f"download from {_host(url)} interrupted: {copy.done / 1e6:.1f} of"
                            f" {copy.total / 1e6:.1f} MB", kind="download_failed")
    return got


def install_file(source, dest, sha256: str, progress=None) -> Path:
    """Copy a model file the user has to dest, after the same SHA-256 check as a download."""
    source = Path(source).expanduser()
    if not source.is_file():
        raise InputError(f"file not found: {source}", kind="missing_file")
    total = source.stat().st_size

    def fill(f):
        with open(source, "rb") as src:
            got = _Copy(progress, total).run(src.read, f)  # the hash of what was copied, not of a first read
        if got != sha256.lower():
            raise _hash_error(str(source), got, sha256)

    dest = Path(dest)
    if dest.exists() and os.path.samefile(source, dest):
        raise InputError(f"{source} is already the installed file", kind="bad_argument")
    return _write_atomically(dest, fill)


def fetch(spec: ModelSpec = DENSEPOSE, folder: str = "cache", progress=None, url: str | None = None,
          force: bool = False) -> tuple[Path, bool]:
    """Download the pinned model into a models folder; (its path, whether it was downloaded now).

    A file already there with the right hash is kept (no download) unless `force`. The URL is the
    pinned one, or the HUMANTEX_DENSEPOSE_URL mirror, or `url` (tests); the hash is always the pin.
    """
    dest = models_dir(folder) / spec.file_name
    if not force and dest.is_file() and sha256_of(dest) == spec.sha256:
        return dest, False
    url = url or os.environ.get(URL_ENV) or spec.url
    return download(url, dest, spec.sha256, progress=progress), True


def install(source, spec: ModelSpec = DENSEPOSE, folder: str = "cache", progress=None) -> Path:
    return install_file(source, models_dir(folder) / spec.file_name, spec.sha256, progress=progress)


def status(spec: ModelSpec = DENSEPOSE, explicit=None) -> dict:
    """Plain data for a status line: where the model would be taken from, or what to do."""
    try:
        found = locate(explicit, spec=spec)
    except InputError as e:
        return {"installed": False, "message": str(e), "size_mb": spec.size_mb, "licence": spec.licence}
    return {"installed": True, "path": str(found.path), "found_by": found.found_by,
            "size_mb": spec.size_mb, "licence": spec.licence}
