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
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable
