"""`humantex densepose` and `humantex models` as subprocesses: the files, the folder rules, and every
bad input's one line (exit 2, nothing half-written). The model is a STAND-IN built from a real
DensePose output (core/densepose/standin.py); downloads go to a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import CASES, assert_one_line_error, compare, http_server, humantex, read_case

from blender_humantex.core.densepose import store

PR99 = CASES[0]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """An empty user cache, and neither the model nor the mirror from the environment (the runner copies it)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(store.MODEL_ENV, raising=False)
    monkeypatch.delenv(store.URL_ENV, raising=False)
    return tmp_path / "cache" / "humantex" / "models"


def test_densepose_command_files_then_unwrap(samples, standin_pr99, tmp_path, monkeypatch):
    from blender_humantex.core.imageio import read_raw_u8
    from blender_humantex.core.sources.iuv import iuv_channels

    out = tmp_path / "dp"
    r = humantex("densepose", "--photo", samples / PR99[3], "--densepose-model", standin_pr99, "--out", out)
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
    monkeypatch.setenv(store.MODEL_ENV, str(standin_pr99))
    r = humantex("densepose", "--photo", samples / PR99[3], "--out", out)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "meta.json").read_text())["densepose"]["model_found_by"] == store.MODEL_ENV


def test_densepose_command_bad_inputs(samples, standin_pr99, tmp_path):
    photo = samples / PR99[3]
    out = tmp_path / "out"
    assert_one_line_error(humantex("densepose", "--photo", photo, "--out", out),
                    "no DensePose model", "humantex models fetch densepose", "humantex models install densepose FILE")
    junk = tmp_path / "junk.torchscript"
    junk.write_bytes(b"\x00" * 100)
    assert_one_line_error(humantex("densepose", "--photo", photo, "--densepose-model", junk, "--out", out),
                    "is not a TorchScript model")
    assert_one_line_error(humantex("densepose", "--photo", photo, "--densepose-model", tmp_path / "gone.pt", "--out", out),
                    "does not exist", "--densepose-model")
    assert_one_line_error(humantex("densepose", "--photo", tmp_path / "nope.jpg", "--densepose-model", standin_pr99,
                             "--out", out), "file not found")
    from blender_humantex.core.densepose.standin import build_standin

    nobody = build_standin(np.zeros((90, 60, 3), np.uint8), None, tmp_path / "nobody.pt")
    assert_one_line_error(humantex("densepose", "--photo", photo, "--densepose-model", nobody, "--out", out),
                    "found no person")
    assert not out.exists()  # nothing half-written by any of them
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "IUV.png").write_bytes(b"mine")
    assert_one_line_error(humantex("densepose", "--photo", photo, "--densepose-model", standin_pr99, "--out", foreign),
                    "--overwrite")
    assert (foreign / "IUV.png").read_bytes() == b"mine"


# ---- models: the CLI's fetch/install can only succeed with the real file (the hash is pinned), so
# here they fail as they must; store's own tests cover success with a test spec.


@pytest.fixture(scope="module")
def server():
    with http_server(os.urandom(3 << 20)) as (url, _):  # 3 MB; /slow takes 20 s
        yield url


def test_models_fetch_failures_leave_nothing(server, tmp_path, cache, monkeypatch):
    folder = cache
    monkeypatch.setenv(store.URL_ENV, f"{server}/file")
    r = humantex("models", "fetch", "densepose")
    assert_one_line_error(r, "fails the SHA-256 check")
    assert "fetch" in r.stderr  # the progress bar ran
    monkeypatch.setenv(store.URL_ENV, f"{server}/missing")
    assert_one_line_error(humantex("models", "fetch", "densepose"), "HTTP 404")
    assert not folder.exists() or not list(folder.iterdir())
    wrong = tmp_path / "wrong.torchscript"
    wrong.write_bytes(b"something else")
    assert_one_line_error(humantex("models", "install", "densepose", wrong), "fails the SHA-256 check")
    assert_one_line_error(humantex("models", "install", "densepose"), "takes a FILE")
    assert not folder.exists() or not list(folder.iterdir())
    r = humantex("models", "status", "densepose")
    assert r.returncode == 0 and "not installed" in r.stdout and "models fetch densepose" in r.stdout


def test_models_fetch_ctrl_c_leaves_nothing(server, cache, monkeypatch):
    folder = cache
    monkeypatch.setenv(store.URL_ENV, f"{server}/slow")
    proc = subprocess.Popen([sys.executable, "-m", "blender_humantex", "models", "fetch", "densepose", "--quiet"],
                            env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.PIPE,
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
