"""The worker's model requests (worker/models.py) through the real client and a real worker
subprocess, against a real HTTP server on 127.0.0.1: status in hello, a download with progress that
fails its hash, a download cancelled mid-way, an install that fails its hash; the worker keeps
answering meanwhile and no file is left. (The pinned SHA-256 cannot be matched here: the successful
download is covered by test_densepose_store with a test spec.)"""

from __future__ import annotations

import sys
import time

import pytest
from helpers import http_server

from blender_humantex.core.densepose import store
from blender_humantex.worker.client import WorkerClient, WorkerError


@pytest.fixture(scope="module")
def server():
    with http_server(b"\0" * (3 << 20)) as (url, _):  # 3 MB; /slow takes 20 s
        yield url


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _client(monkeypatch, cache_dir, url, log):
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_dir))
    monkeypatch.setenv(store.URL_ENV, url)
    monkeypatch.delenv(store.MODEL_ENV, raising=False)
    return WorkerClient(sys.executable, device="cpu", log_path=log)


def _files(cache_dir):
    folder = cache_dir / "humantex" / "models"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_status_and_failed_fetch(server, cache_dir, monkeypatch, tmp_path):
    client = _client(monkeypatch, cache_dir, f"{server}/file", tmp_path / "w.log")
    try:
        hello = client.hello()
        assert "models" in hello["features"] and hello["densepose"]["installed"] is False
        assert "humantex models fetch densepose" in hello["densepose"]["message"]
        status = client.model_status()
        assert status["cache_dir"] == str(cache_dir / "humantex" / "models") and status["size_mb"] == 265
        job = client.fetch_model()
        with pytest.raises(WorkerError) as e:
            job.wait(timeout=120)
        assert e.value.kind == "bad_model" and "SHA-256" in e.value.message
        assert job.stage == "download" and job.fraction > 0.9  # progress arrived, all of it
        assert _files(cache_dir) == []
        bad = tmp_path / "other.torchscript"
        bad.write_bytes(b"x" * 1000)
        with pytest.raises(WorkerError, match="SHA-256"):
            client.install_model(bad).wait(timeout=60)
        assert _files(cache_dir) == []
    finally:
        client.close()


def test_cancelled_fetch_leaves_nothing(server, cache_dir, monkeypatch, tmp_path):
    client = _client(monkeypatch, cache_dir, f"{server}/slow", tmp_path / "w.log")
    try:
        job = client.fetch_model()
        deadline = time.monotonic() + 60
        while job.fraction <= 0.0:
            assert time.monotonic() < deadline and not job.done, job.error
            job.wait_for_event(1.0)
            job.poll()
        with pytest.raises(WorkerError, match="one at a time|already running"):
            client.fetch_model().wait(timeout=30)  # a second download of the same model is refused
        assert client.model_status()["installed"] is False  # the worker answers while it downloads
        job.cancel()
        with pytest.raises(WorkerError) as e:
            job.wait(timeout=60)
        assert job.cancelled and e.value.kind == "cancelled"
        assert _files(cache_dir) == []
    finally:
        client.close()
