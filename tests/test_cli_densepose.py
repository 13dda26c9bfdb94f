"""`humantex densepose` and `humantex models` as subprocesses: the files, the folder rules, and every
bad input's one line (exit 2, nothing half-written). The model is a STAND-IN built from a real
DensePose output (core/densepose/standin.py); downloads go to a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from densepose_support import CASES, compare, read_case

from blender_humantex.core.densepose import store

PR99 = CASES[0]


def humantex(*args, env_extra=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "blender_humantex", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=_env(env_extra))


def _env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in (store.MODEL_ENV, store.URL_ENV)}
    env.update(OMP_NUM_THREADS="1", **(extra or {}))
    return env


def _one_line_error(r, *words):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("humantex: error:") and "Traceback" not in r.stderr, r.stderr
    for word in words:
        assert word in last, (word, last)


@pytest.fixture()
def cache(tmp_path):
    return {"XDG_CACHE_HOME": str(tmp_path / "cache")}


@pytest.fixture(scope="module")
def standin_pr99(samples, tmp_path_factory):
    from densepose_support import require_torchvision

    require_torchvision()
    from blender_humantex.core.densepose.standin import build_standin

    return build_standin(*read_case(samples, PR99), tmp_path_factory.mktemp("m") / "standin.pt")


def test_densepose_command_files_then_unwrap(samples, standin_pr99, tmp_path, cache):
    from blender_humantex.core.imageio import read_raw_u8
    from blender_humantex.core.sources.iuv import iuv_channels

    out = tmp_path / "dp"
    r = humantex("densepose", "--photo", samples / PR99[3], "--densepose-model", standin_pr99, "--out", out,
                 env_extra=cache)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["INDS.png", "IUV.png", "meta.json"]
    meta = json.loads((out / "meta.json").read_text())["densepose"]
    assert meta["persons_found"] == 1 and meta["licence"] == "CC BY-SA 3.0" and meta["device"] == "cpu"
    assert meta["model"] == str(standin_pr99) and len(meta["model_sha256"]) == 64
    iuv, order = iuv_channels(read_raw_u8(out / "IUV.png"))
    assert order == "vui" and compare(read_case(samples, PR99)[0], iuv)["part_agreement"] >= 0.99
    r = humantex("unwrap", "--photo", samples / PR99[3], "--iuv", out / "IUV.png", "--inds", out / "INDS.png",
                 "--size", 256, "--out", tmp_path / "unwrapped")
    assert r.returncode == 0 and "person 1" in r.stdout, r.stderr
    # the model from the environment; a rerun into the same folder replaces the earlier run's files
    r = humantex("densepose", "--photo", samples / PR99[3], "--out", out,
                 env_extra=cache | {store.MODEL_ENV: str(standin_pr99)})
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "meta.json").read_text())["densepose"]["model_found_by"] == store.MODEL_ENV


def test_densepose_command_bad_inputs(samples, standin_pr99, tmp_path, cache):
    photo = samples / PR99[3]
    out = tmp_path / "out"
    _one_line_error(humantex("densepose", "--photo", photo, "--out", out, env_extra=cache),
                    "no DensePose model", "humantex models fetch densepose", "humantex models install densepose FILE")
    junk = tmp_path / "junk.torchscript"
    junk.write_bytes(b"\x00" * 100)
    _one_line_error(humantex("densepose", "--photo", photo, "--densepose-model", junk, "--out", out, env_extra=cache),
                    "is not a TorchScript model")
    _one_line_error(humantex("densepose", "--photo", photo, "--densepose-model", tmp_path / "gone.pt", "--out", out),
                    "does not exist", "--densepose-model")
    _one_line_error(humantex("densepose", "--photo", tmp_path / "nope.jpg", "--densepose-model", standin_pr99,
                             "--out", out), "file not found")
    from blender_humantex.core.densepose.standin import build_standin

    nobody = build_standin(np.zeros((90, 60, 3), np.uint8), None, tmp_path / "nobody.pt")
    _one_line_error(humantex("densepose", "--photo", photo, "--densepose-model", nobody, "--out", out),
                    "found no person")
    assert not out.exists()  # nothing half-written by any of them
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "IUV.png").write_bytes(b"mine")
    _one_line_error(humantex("densepose", "--photo", photo, "--densepose-model", standin_pr99, "--out", foreign),
                    "--overwrite")
    assert (foreign / "IUV.png").read_bytes() == b"mine"


# ---- models: the CLI's fetch/install can only succeed with the real file (the hash is pinned), so
# here they fail as they must; store's own tests cover success with a test spec.


class _Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path == "/missing":
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(50 << 20))
        self.end_headers()
        for _ in range(50 if self.path == "/fast" else 500):  # /slow: trickles for a minute
            try:
                self.wfile.write(b"\0" * (1 << 20) if self.path == "/fast" else b"\0" * (1 << 16))
                if self.path != "/fast":
                    time.sleep(0.1)
            except OSError:
                return

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_models_fetch_failures_leave_nothing(server, tmp_path, cache):
    folder = tmp_path / "cache" / "humantex" / "models"
    r = humantex("models", "fetch", "densepose", env_extra=cache | {store.URL_ENV: f"{server}/fast"})
    _one_line_error(r, "fails the SHA-256 check")
    assert "fetch" in r.stderr  # the progress bar ran
    _one_line_error(humantex("models", "fetch", "densepose", env_extra=cache | {store.URL_ENV: f"{server}/missing"}),
                    "HTTP 404")
    assert not folder.exists() or not list(folder.iterdir())
    wrong = tmp_path / "wrong.torchscript"
    wrong.write_bytes(b"something else")
    _one_line_error(humantex("models", "install", "densepose", wrong, env_extra=cache), "fails the SHA-256 check")
    _one_line_error(humantex("models", "install", "densepose", env_extra=cache), "takes a FILE")
    assert not folder.exists() or not list(folder.iterdir())
    r = humantex("models", "status", "densepose", env_extra=cache)
    assert r.returncode == 0 and "not installed" in r.stdout and "models fetch densepose" in r.stdout


def test_models_fetch_ctrl_c_leaves_nothing(server, tmp_path, cache):
    folder = tmp_path / "cache" / "humantex" / "models"
    proc = subprocess.Popen([sys.executable, "-m", "blender_humantex", "models", "fetch", "densepose", "--quiet"],
                            env=_env(cache | {store.URL_ENV: f"{server}/slow"}), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            # a shell's background job ignores SIGINT, and its children would inherit that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not (folder.exists() and any(p.stat().st_size > 0 for p in folder.iterdir())):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err, err
    assert list(folder.iterdir()) == []
