"""Where the DensePose model is found and how it arrives (core/densepose/store.py), against a real
HTTP server on 127.0.0.1: success, wrong hash, a body cut short, 404, a full disk, a cancel; and in
every failure no file that looks like a model is left. Standard library only (no torch needed)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import http_server

from blender_humantex.core.densepose import store
from blender_humantex.core.errors import HumantexError, InputError

BODY = os.urandom(3 * store.CHUNK_BYTES + 12345)  # several chunks, so progress and cuts happen mid-file
BODY_SHA = hashlib.sha256(BODY).hexdigest()


@pytest.fixture(scope="module")
def served():
    with http_server(BODY) as (url, hits):
        yield url, hits


@pytest.fixture(scope="module")
def server(served):
    return served[0]


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_success_with_progress(server, tmp_path):
    seen = []
    dest = store.download(f"{server}/file", tmp_path / "m.torchscript", BODY_SHA, progress=lambda d, t: seen.append((d, t)))
    assert dest.read_bytes() == BODY and _left(tmp_path) == ["m.torchscript"]
    assert seen[-1] == (len(BODY), len(BODY)) and len(seen) >= 4
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


@pytest.mark.parametrize("path, sha, kind, words", [
    ("/file", "0" * 64, "bad_model", "SHA-256"),
    ("/cut", BODY_SHA, "download_failed", "interrupted"),
    ("/missing", BODY_SHA, "download_failed", "HTTP 404"),
])
def test_download_failures_leave_nothing(server, tmp_path, path, sha, kind, words):
    old = tmp_path / "m.torchscript"
    old.write_bytes(b"the previous file")
    with pytest.raises(HumantexError) as e:
        store.download(server + path, old, sha)
    assert e.value.kind == kind and words in str(e.value) and "\n" not in str(e.value)
    assert _left(tmp_path) == ["m.torchscript"] and old.read_bytes() == b"the previous file"


def test_unreachable_and_cancel(server, tmp_path):
    with pytest.raises(HumantexError, match="failed") as e:
        store.download("http://127.0.0.1:9/none", tmp_path / "m", BODY_SHA, timeout=5)  # port 9: refused
    assert e.value.kind == "download_failed"

    def cancel(done, total):
        if done > store.CHUNK_BYTES:
            raise KeyboardInterrupt  # Ctrl-C, or the worker's cancel, arrives mid-download
    with pytest.raises(KeyboardInterrupt):
        store.download(f"{server}/file", tmp_path / "m", BODY_SHA, progress=cancel)
    assert _left(tmp_path) == []


def test_disk_full_leaves_nothing(server, tmp_path):
    """A real write error mid-file: the process may write at most 1 MB per file (RLIMIT_FSIZE)."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # EFBIG as an OSError, as ENOSPC would be
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        from blender_humantex.core.densepose import store
        from blender_humantex.core.errors import HumantexError
        try:
            store.download({f"{server}/file"!r}, {str(tmp_path / "m")!r}, {BODY_SHA!r})
        except HumantexError as e:
            print(e.kind, e, file=sys.stderr)
            sys.exit(2)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("bad_output cannot write") and r.stderr.count("\n") == 1, r.stderr
    assert _left(tmp_path) == []


def _spec(server) -> store.ModelSpec:
    return store.ModelSpec(name="densepose", file_name="dp.torchscript", url=f"{server}/file/pinned",
                           sha256=BODY_SHA, size_mb=3, licence="test", credit="test")


def test_fetch_into_cache_then_keep(served, tmp_path, monkeypatch):
    server, hits = served
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(store.URL_ENV, raising=False)
    spec = _spec(server)
    path, fetched = store.fetch(spec)
    assert fetched and path == tmp_path / "cache" / "humantex" / "models" / "dp.torchscript"
    assert path.read_bytes() == BODY
    before = hits.get("/file/pinned", 0)
    assert store.fetch(spec) == (path, False) and hits["/file/pinned"] == before  # no second download
    monkeypatch.setenv(store.URL_ENV, f"{server}/file/mirror")  # a studio mirror: same pinned hash
    assert store.fetch(spec, force=True) == (path, True) and hits["/file/mirror"] == 1
    monkeypatch.setenv(store.URL_ENV, f"{server}/cut")
    with pytest.raises(HumantexError, match="interrupted"):
        store.fetch(spec, force=True)
    assert path.read_bytes() == BODY and _left(path.parent) == ["dp.torchscript"]  # the good file stays


def test_install_checks_the_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spec = store.ModelSpec("densepose", "dp.torchscript", "http://unused", BODY_SHA, 3, "t", "t")
    good, bad = tmp_path / "good.bin", tmp_path / "bad.bin"
    good.write_bytes(BODY)
    bad.write_bytes(BODY[:-1] + b"x")
    folder = tmp_path / "cache" / "humantex" / "models"
    with pytest.raises(InputError, match="SHA-256") as e:
        store.install(bad, spec)
    assert e.value.kind == "bad_model" and _left(folder) == []
    assert store.install(good, spec).read_bytes() == BODY and _left(folder) == ["dp.torchscript"]
    with pytest.raises(InputError, match="not found"):
        store.install(tmp_path / "nope.bin", spec)


def test_locate_order(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "env"))  # the worker's environment
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(store.MODEL_ENV, raising=False)
    with pytest.raises(InputError) as e:
        store.locate()
    message = str(e.value)
    assert e.value.kind == "no_model" and "\n" not in message
    assert "humantex models fetch densepose" in message and "humantex models install densepose FILE" in message

    files = {}
    for name, folder in (("cache", store.user_cache_dir()), ("worker", store.worker_models_dir()),
                         ("env", tmp_path / "e"), ("flag", tmp_path / "f")):
        folder.mkdir(parents=True, exist_ok=True)
        files[name] = folder / store.DENSEPOSE.file_name
        files[name].write_bytes(b"x")
    assert store.worker_models_dir() == tmp_path / "env" / "share" / "humantex" / "models"
    files["worker"].unlink()
    assert store.locate() == store.Located(files["cache"], store.FROM_CACHE)
    files["worker"].write_bytes(b"x")
    assert store.locate() == store.Located(files["worker"], store.FROM_WORKER)
    monkeypatch.setenv(store.MODEL_ENV, str(files["env"]))
    assert store.locate() == store.Located(files["env"], store.FROM_ENV)
    assert store.locate(files["flag"]) == store.Located(files["flag"], store.FROM_FLAG)
    assert store.locate(files["flag"]).managed is False and store.locate(None, environ={}).managed is True
    for explicit, env, named in ((tmp_path / "gone", None, "--densepose-model"),
                                 (None, str(tmp_path / "gone"), "HUMANTEX_DENSEPOSE_MODEL")):
        with pytest.raises(InputError, match=named) as e:  # a path given but wrong never falls through
            store.locate(explicit, environ={} if env is None else {store.MODEL_ENV: env})
        assert "does not exist" in str(e.value)
    assert store.status(explicit=files["flag"])["installed"] is True
