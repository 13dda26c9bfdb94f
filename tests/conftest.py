"""Shared fixtures. The real data lives in ../shared/data beside the checkout (read-only)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HUMANTEX_SHARED_DATA", REPO.parent / "shared" / "data"))
SAMPLES = SHARED_DATA / "densepose_samples"

# Blender's module must never touch the user's real config in tests.
os.environ.setdefault("BLENDER_USER_RESOURCES", str(Path(os.environ.get("TMPDIR", "/tmp")) / f"humantex-bur-{os.getpid()}"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"../shared/data not found at {SHARED_DATA}: tests need the real DensePose samples")
    return SHARED_DATA


@pytest.fixture(scope="session")
def samples(shared_data) -> Path:
    return shared_data / "densepose_samples"


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory) -> Path:
    """RANDOM-weight sampler / refiner / lazova files in small configs (helpers.write_random_weights)."""
    from helpers import write_random_weights

    return write_random_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable


# bpy 4.2's module segfaults during interpreter shutdown once Python classes have been registered
# (5 lines of plain bpy reproduce it). Keep pytest's real exit status by leaving with os._exit
# after pytest has finished reporting, only on those Blender versions.
_session_status = {}


def pytest_sessionfinish(session, exitstatus):
    _session_status["code"] = int(exitstatus)


def pytest_unconfigure(config):
    bpy = sys.modules.get("bpy")
    if bpy is not None and tuple(bpy.app.version) < (4, 3, 0) and "code" in _session_status:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_session_status["code"])
