"""The worker and its client, for real: real worker subprocesses, real DensePose files, real pipes.

The networks' weights here are small random-weight safetensors files written on the fly (see the
`random_weights` fixture): these tests check the process boundary, not texture quality.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from blender_humantex.worker import protocol
from blender_humantex.worker.client import WorkerClient, WorkerError, get_client, package_root

STAGES = list(protocol.PROGRESS_STAGES)
SIZE = 128  # small and fast: these tests are about the boundary, not the picture


@pytest.fixture(scope="module")
def client(random_weights, tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "worker.log"
    worker = WorkerClient(sys.executable, device="cpu", weights_dir=random_weights, log_path=log)
    yield worker
    worker.close()
    assert not worker.alive


@pytest.fixture(scope="module")
def photo_job(samples) -> dict:
    folder = samples / "densepose_pr99"
    return {"photo": folder / "im.jpg", "iuv": folder / "IUV.png", "inds": folder / "INDS.png", "size": SIZE}


def read_png(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img)


def spawn_raw_worker(random_weights) -> subprocess.Popen:
    """The server on its own, without the client, for requests the client would never send.
    Started as `humantex worker` (the client covers `python -m blender_humantex.worker`)."""
    env = dict(os.environ, PYTHONPATH=package_root())
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "blender_humantex",
            "worker",
            "--device",
            "cpu",
            "--weights",
            str(random_weights),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def ask(proc: subprocess.Popen, line: str) -> dict:
    proc.stdin.write(line.encode() + b"\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def first_progress(job, timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in job.poll():
            if event["type"] == "progress":
                return event
            pytest.fail(f"job ended before any progress: {event}")
        time.sleep(0.002)
    pytest.fail("no progress event")


# ---- round trips --------------------------------------------------------------------------------
def test_hello_reports_versions_device_and_weights(client, random_weights):
    hello = client.start()
    assert hello["protocol"] == protocol.PROTOCOL_VERSION
    from blender_humantex import __version__

    assert hello["version"] == __version__
    assert hello["torch"].startswith("2.")
    assert hello["device"] == "cpu"
    assert hello["pid"] != os.getpid()
    assert Path(hello["package_path"]).resolve() == (Path(package_root()) / "blender_humantex").resolve()
    assert isinstance(hello["load_count"], int)
    assert hello["weights"]
    assert client.start() is hello  # handshake once, then cached


def test_generate_round_trip_with_ordered_progress(client, photo_job, tmp_path):
    events = []
    result = client.run(
        progress=lambda stage, fraction: events.append((stage, fraction)), out_dir=tmp_path, **photo_job
    )

    final = read_png(result["outputs"]["final"])
    assert final.shape == (SIZE, SIZE, 3)
    for path in result["outputs"].values():
        assert Path(path).parent == tmp_path and Path(path).is_file()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "staging folder left behind"
    assert all(isinstance(v, (int, float)) for v in result["timings"].values())
    json.dumps(result)  # plain data only

    # Progress: stages in pipeline order, each stage's fraction never going back.
    stages = [stage for stage, _ in events]
    assert set(stages) <= set(STAGES)
    order = [STAGES.index(s) for s in stages]
    assert order == sorted(order), stages
    assert {"unwrap", "refine", "write"} <= set(stages)
    for stage in set(stages):
        fractions = [f for s, f in events if s == stage]
        assert fractions == sorted(fractions) and all(0.0 <= f <= 1.0 for f in fractions)
    assert events[-1] == ("write", 1.0)


def test_partial_plus_visibility_request(client, photo_job, tmp_path):
    first = client.run(out_dir=tmp_path / "a", **photo_job)
    second = client.run(
        partial=first["outputs"]["partial"],
        visibility=first["outputs"]["visibility"],
        size=SIZE,
        out_dir=tmp_path / "b",
    )
    assert read_png(second["outputs"]["final"]).shape == (SIZE, SIZE, 3)


def test_second_job_reuses_loaded_weights(client, photo_job, tmp_path):
    first = client.run(out_dir=tmp_path / "1", **photo_job)
    second = client.run(out_dir=tmp_path / "2", **photo_job)
    assert first["load_count"] >= 1
    assert second["load_count"] == first["load_count"], "the second job read weights from disk again"
    # The counter is live: a method that needs another weights file loads it once, then never again.
    third = client.run(out_dir=tmp_path / "3", method="lazova", **photo_job)
    fourth = client.run(out_dir=tmp_path / "4", method="lazova", **photo_job)
    assert third["load_count"] > second["load_count"]
    assert fourth["load_count"] == third["load_count"]


# ---- cancel, crash, recovery ---------------------------------------------------------------------
def test_cancel_mid_job_leaves_no_files(client, photo_job, tmp_path):
    client.start()
    job = client.submit(out_dir=tmp_path, **dict(photo_job, size=1024))
    first_progress(job)
    job.cancel()
    with pytest.raises(WorkerError) as info:
        job.wait(timeout=60)
    assert info.value.kind == "cancelled"
    assert job.state == "cancelled" and job.done
    assert job.cancelled and not job.failed and job.result is None  # the future-like view says the same
    assert list(tmp_path.iterdir()) == [], "a cancelled job must leave no (half) files"
    # ... and the worker keeps serving.
    assert client.run(out_dir=tmp_path / "after", **photo_job)["outputs"]["final"]


def test_kill_9_mid_job_then_recovery(client, photo_job, tmp_path):
    old_pid = client.start()["pid"]
    job = client.submit(out_dir=tmp_path / "killed", **dict(photo_job, size=1024))
    first_progress(job)
    os.kill(old_pid, signal.SIGKILL)
    with pytest.raises(WorkerError) as info:
        job.wait(timeout=30)
    assert info.value.kind == "worker_died"
    assert "signal 9" in info.value.message
    assert job.done and job.failed and not job.cancelled and job.error is info.value
    assert not client.alive
    if sys.platform.startswith("linux"):
        assert not Path(f"/proc/{old_pid}").exists(), "the killed worker was not reaped (zombie)"

    result = client.run(out_dir=tmp_path / "recovered", **photo_job)
    assert client.hello()["pid"] != old_pid
    assert Path(result["outputs"]["final"]).is_file()
    # The next job into the killed job's folder clears its orphaned staging folder.
    client.run(out_dir=tmp_path / "killed", **photo_job)
    assert not [p for p in (tmp_path / "killed").iterdir() if p.name.startswith(".humantex-job-")]


def test_run_timeout_cancels_the_job(client, photo_job, tmp_path):
    client.start()
    with pytest.raises(WorkerError) as info:
        client.run(timeout=0.05, out_dir=tmp_path / "slow", **dict(photo_job, size=1024))
    assert info.value.kind == "timeout"
    assert client.run(out_dir=tmp_path / "next", **photo_job)["outputs"]["final"]
    assert not (tmp_path / "slow").exists() or list((tmp_path / "slow").iterdir()) == []


def test_close_during_a_job_ends_it_and_reaps_the_worker(random_weights, photo_job, tmp_path):
    worker = WorkerClient(sys.executable, device="cpu", weights_dir=random_weights, log_path=tmp_path / "w.log")
    pid = worker.start()["pid"]
    job = worker.submit(out_dir=tmp_path / "out", **dict(photo_job, size=1024))
    first_progress(job)
    worker.close()
    assert job.done and job.error is not None and job.error.kind in ("cancelled", "worker_closed")
    assert not worker.alive
    if sys.platform.startswith("linux"):
        assert not Path(f"/proc/{pid}").exists(), "the worker was not reaped (zombie)"


@pytest.mark.skipif(not hasattr(__import__("resource"), "prlimit"), reason="needs Linux prlimit")
def test_out_of_memory_is_reported_and_the_worker_keeps_serving(client, photo_job, tmp_path):
    """A real allocation failure: the idle worker's address space is capped a few hundred MB above
    its current size, then asked for the largest texture, whose arrays cannot fit."""
    import resource

    pid = client.start()["pid"]
    with open(f"/proc/{pid}/status") as f:
        vm_bytes = 1024 * next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
    resource.prlimit(pid, resource.RLIMIT_AS, (vm_bytes + 400_000_000, resource.RLIM_INFINITY))
    try:
        with pytest.raises(WorkerError) as info:
            client.run(out_dir=tmp_path / "huge", **dict(photo_job, size=4096))
    finally:
        resource.prlimit(pid, resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert info.value.kind == "out_of_memory" and "smaller output size" in info.value.message
    assert client.hello()["pid"] == pid
    assert client.run(out_dir=tmp_path / "after", **photo_job)["outputs"]["final"]


# ---- bad requests and inputs ---------------------------------------------------------------------
def test_missing_input_file_is_a_structured_error(client, samples, tmp_path):
    pid = client.start()["pid"]
    with pytest.raises(WorkerError) as info:
        client.run(
            photo=samples / "nope.jpg",
            iuv=samples / "densepose_pr99" / "IUV.png",
            size=SIZE,
            out_dir=tmp_path,
        )
    assert info.value.kind == "missing_file"
    assert "nope.jpg" in info.value.message and "\n" not in info.value.message
    assert client.alive and client.hello()["pid"] == pid


def test_unknown_field_is_refused_before_sending(client, photo_job, tmp_path):
    with pytest.raises(WorkerError) as info:
        client.submit(out_dir=tmp_path, colour="blue", **photo_job)
    assert info.value.kind == "bad_request" and "colour" in info.value.message


def test_raw_protocol_errors_keep_the_worker_serving(random_weights, samples, tmp_path):
    proc = spawn_raw_worker(random_weights)
    try:
        reply = ask(proc, "this is not json")
        assert reply["type"] == "error" and reply["kind"] == "bad_json" and reply["id"] is None

        reply = ask(proc, '{"id": "u1", "type": "frobnicate"}')
        assert (reply["id"], reply["type"], reply["kind"]) == ("u1", "error", "unknown_type")

        reply = ask(proc, '["a", "list"]')
        assert reply["type"] == "error" and reply["kind"] == "bad_request"

        reply = ask(
            proc, json.dumps({"id": "g1", "type": "generate", "photo": "x.jpg", "out_dir": str(tmp_path)})
        )
        assert (reply["id"], reply["kind"]) == ("g1", "missing_field")

        reply = ask(
            proc, json.dumps({"id": "g2", "type": "generate", "size": "big", "out_dir": str(tmp_path)})
        )
        assert (reply["id"], reply["kind"]) == ("g2", "bad_request")

        reply = ask(proc, '{"id": "c1", "type": "cancel", "target": "no-such-job"}')
        assert (reply["id"], reply["type"], reply["found"]) == ("c1", "ack", False)

        folder = samples / "densepose_pr99"
        request = {
            "id": "g3",
            "type": "generate",
            "photo": str(folder / "im.jpg"),
            "iuv": str(folder / "IUV.png"),
        }
        reply = ask(proc, json.dumps(dict(request, size=SIZE, out_dir=str(tmp_path))))
        while reply["type"] == "progress":
            assert reply["id"] == "g3"
            reply = json.loads(proc.stdout.readline())
        assert (reply["id"], reply["type"]) == ("g3", "result"), reply

        assert ask(proc, '{"id": "h1", "type": "hello"}')["type"] == "hello"
        assert ask(proc, '{"id": "s1", "type": "shutdown"}') == {"id": "s1", "type": "ack", "of": "shutdown"}
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stray_prints_cannot_reach_the_protocol_stream():
    code = (
        "import os, sys\n"
        "from blender_humantex.worker.server import _take_stdout\n"
        "out = _take_stdout()\n"
        "print('python-level noise')\n"
        "os.write(1, b'C-level noise\\n')\n"
        "out.write(b'protocol\\n')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        env=dict(os.environ, PYTHONPATH=package_root()),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"protocol\n"
    assert b"python-level noise" in done.stderr and b"C-level noise" in done.stderr


# ---- wrong interpreters ----------------------------------------------------------------------------
def test_nonexistent_interpreter(tmp_path):
    with pytest.raises(WorkerError) as info:
        WorkerClient(tmp_path / "no" / "python", log_path=tmp_path / "w.log").start()
    assert info.value.kind == "bad_interpreter"
    assert "not found" in info.value.message and "pip install" in info.value.message


def test_not_a_python(tmp_path):
    with pytest.raises(WorkerError) as info:
        WorkerClient("/bin/true", log_path=tmp_path / "w.log", startup_timeout=30).start()
    assert info.value.kind == "bad_interpreter" and "pip install" in info.value.message


def test_python_without_torch(tmp_path):
    """A real, bare virtual environment of this same Python: everything but torch & co."""
    venv = tmp_path / "bare"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    client = WorkerClient(python, log_path=tmp_path / "w.log", startup_timeout=60)
    with pytest.raises(WorkerError) as info:
        client.start()
    assert info.value.kind == "dependency"
    assert "torch is not installed" in info.value.message and "pip install" in info.value.message
    assert not client.alive


def find_old_python() -> str | None:
    """A working Python 3.6-3.9 on this machine (pyenv or PATH), if there is one."""
    import glob
    import shutil

    for minor in (9, 8, 7, 6):
        candidates = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.{minor}.*/bin/python")))
        candidates.append(shutil.which(f"python3.{minor}"))
        for python in filter(None, candidates):
            try:  # a pyenv shim for a version that is not selected exits with an error
                done = subprocess.run(
                    [python, "-c", "import sys; print(sys.version_info[1])"], capture_output=True
                )
            except OSError:
                continue
            if done.returncode == 0 and done.stdout.strip() == str(minor).encode():
                return python
    return None


OLD_PYTHON = find_old_python()


@pytest.mark.skipif(OLD_PYTHON is None, reason="no Python 3.6-3.9 on this machine")
def test_python_too_old(tmp_path):
    with pytest.raises(WorkerError) as info:
        WorkerClient(OLD_PYTHON, log_path=tmp_path / "w.log", startup_timeout=60).start()
    assert info.value.kind == "bad_interpreter"
    assert "too old" in info.value.message and "3.10+" in info.value.message


# ---- the client module itself ------------------------------------------------------------------------
def test_worker_modules_import_neither_torch_nor_bpy():
    """The client runs in Blender's Python; the server module imports torch only when serving."""
    code = (
        "import sys, blender_humantex.worker.client, blender_humantex.worker.server\n"
        "bad = sorted({'torch', 'bpy', 'numpy'} & set(sys.modules))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=package_root()),
    )
    assert done.returncode == 0, done.stderr


def test_get_client_reuses_and_replaces(tmp_path):
    first = get_client(sys.executable, device="cpu", weights_dir=tmp_path)
    assert get_client(sys.executable, device="cpu", weights_dir=tmp_path) is first
    other = get_client(sys.executable, device="auto", weights_dir=tmp_path)
    assert other is not first and not first.alive
    other.close()
