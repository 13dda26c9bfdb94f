"""`humantex models fetch|install|status NAME`: the only ways a third-party model file arrives
(core/densepose/store.py: pinned revision, SHA-256 checked, written atomically)."""

from __future__ import annotations

import sys

from ..core.densepose import store
from ..core.errors import InputError

ACTIONS = ("fetch", "install", "status")


def add_arguments(name: str, parser) -> None:
    parser.add_argument("action", choices=ACTIONS,
                        help="fetch: download the pinned file; install: copy FILE after the same SHA-256 check;"
                             " status: where the model is found")
    parser.add_argument("model", choices=sorted(store.MODELS), help="which model")
    parser.add_argument("file", nargs="?", default=None, help="install: the model file you already have")
    parser.add_argument("--into", choices=store.FOLDER_KINDS, default="cache",
                        help=f"cache (default): {store.user_cache_dir()}; worker: this Python environment's"
                             f" models folder, {store.worker_models_dir()}")
    parser.add_argument("--force", action="store_true", help="fetch: download again even if a good file is there")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(name: str, args) -> int:
    spec = store.MODELS[args.model]
    if (args.file is not None) != (args.action == "install"):
        raise InputError("`models install` takes a FILE; `fetch` and `status` take none", kind="bad_argument")
    if args.action == "status":
        return _status(spec)
    bar = _ProgressBar(args.action, quiet=args.quiet)
    try:
        if args.action == "fetch":
            path, fetched = store.fetch(spec, folder=args.into, progress=bar, force=args.force)
        else:
            path, fetched = store.install(args.file, spec, folder=args.into, progress=bar), True
    finally:
        bar.close()
    done = ("downloaded" if args.action == "fetch" else "installed") if fetched else "already there"
    print(f"{spec.name}: {done}: {path} (SHA-256 verified; licence {spec.licence}, not bundled)")
    _say_which_is_used(spec, path)
    return 0


def _status(spec) -> int:
    info = store.status(spec)
    if info["installed"]:
        print(f"{spec.name}: {info['path']} (found by: {info['found_by']})")
    else:
        print(f"{spec.name}: not installed: {info['message']}")
    return 0


def _say_which_is_used(spec, path) -> None:
    """The file just written may be shadowed by one found earlier in the search order: say so."""
    try:
        found = store.locate(spec=spec)
    except InputError:
        return
    if found.path.resolve() != path.resolve():
        print(f"note: {found.path} (from {found.found_by}) comes first in the search order and is the one used",
              file=sys.stderr)


class _ProgressBar:
    """store's progress(done, total) as a tqdm bar on stderr."""

    def __init__(self, action: str, quiet: bool = False):
        self.action, self.quiet, self.bar = action, quiet, None

    def __call__(self, done: int, total) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=self.action,
                            file=sys.stderr, leave=True)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
