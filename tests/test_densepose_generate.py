"""A photo alone, through the whole product: `humantex generate --photo P` (no --iuv) and a worker
generate request with only a photo run DensePose first, in the same process. The model is a
STAND-IN (core/densepose/standin.py, built from the example's real DensePose output; not DensePose).
The warm worker loads it once for many jobs."""

from __future__ import annotations

import json
import sys

import pytest
from helpers import CASES, assert_one_line_error, humantex

from blender_humantex.core.densepose import store

PR99 = CASES[0]
SIZE = 256


@pytest.fixture(autouse=True)
def no_installed_model(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(store.MODEL_ENV, raising=False)


def test_generate_from_a_photo_alone(samples, standin_pr99, random_weights, tmp_path):
    out = tmp_path / "out"
    r = humantex("generate", "--photo", samples / PR99[3], "--densepose-model", standin_pr99, "--size", SIZE,
                 "--weights", random_weights, "--out", out)
    assert r.returncode == 0, r.stderr
    assert {"final.png", "sheet.png", "meta.json"} <= {p.name for p in out.iterdir()}
    meta = json.loads((out / "meta.json").read_text())
    # meta.json records resolved paths (../shared may be a link)
    assert meta["inputs"] == {"photo": str((samples / PR99[3]).resolve()), "densepose_model": str(standin_pr99.resolve())}
    assert meta["densepose"]["persons_found"] == 1 and meta["densepose"]["licence"] == "CC BY-SA 3.0"
    assert meta["densepose"]["model_sha256"] == store.sha256_of(standin_pr99) and meta["densepose"]["device"] == "cpu"
    # the same person as DensePose's own files give: about the same coverage
    real = humantex("unwrap", "--photo", samples / PR99[3], "--iuv", samples / PR99[1], "--inds", samples / PR99[2],
                    "--size", SIZE, "--out", tmp_path / "real")
    assert real.returncode == 0, real.stderr
    real_coverage = json.loads((tmp_path / "real" / "meta.json").read_text())["coverage"]
    assert abs(meta["coverage"] - real_coverage) < 0.02, (meta["coverage"], real_coverage)


def test_generate_photo_alone_without_a_model_is_one_line(samples, tmp_path):
    out = tmp_path / "out"
    assert_one_line_error(humantex("generate", "--photo", samples / PR99[3], "--out", out),
                          "no DensePose model", "humantex models fetch densepose",
                          "humantex models install densepose FILE")
    assert_one_line_error(humantex("generate", "--photo", samples / PR99[3], "--inds", samples / PR99[2],
                                   "--out", out), "inds do not go with photo")
    assert not out.exists()


def test_worker_photo_alone_keeps_the_model_loaded(samples, standin_pr99, random_weights, tmp_path, monkeypatch):
    from blender_humantex.worker.client import WorkerClient

    monkeypatch.setenv(store.MODEL_ENV, str(standin_pr99))  # the worker inherits it: found by the environment
    worker = WorkerClient(sys.executable, device="cpu", weights_dir=random_weights, log_path=tmp_path / "w.log")
    try:
        assert worker.hello()["densepose"]["found_by"] == store.MODEL_ENV
        results = [worker.run(photo=samples / PR99[3], size=SIZE, out_dir=tmp_path / f"out{k}") for k in range(2)]
        first, second = (r["meta"]["densepose"] for r in results)
        assert first["persons_found"] == second["persons_found"] == 1
        assert first["model_loads_in_process"] == second["model_loads_in_process"] == 1  # loaded once, kept warm
        assert second["timings_s"]["load_s"] < 0.5 * max(first["timings_s"]["load_s"], 0.2)
        assert (tmp_path / "out1" / "final.png").is_file()
        stages = []
        worker.run(photo=samples / PR99[3], size=SIZE, out_dir=tmp_path / "out2",
                   progress=lambda stage, fraction: stages.append(stage))
        assert "unwrap" in stages and set(stages) <= {"load", "unwrap", "sample", "refine", "write"}
    finally:
        worker.close()
