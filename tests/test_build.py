"""The extension package: manifest, wheels/, build.py, and Blender's own validator on the zip.

Everything here runs Blender's real extension CLI (blender_ext.py from the bpy module); nothing
is parsed by hand that Blender itself would check.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]


def _load_build_script():
    # build.py lives at the repository root, outside the package.
    spec = importlib.util.spec_from_file_location("humantex_build_script", REPO / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build_script()


@pytest.fixture(scope="module")
def manifest() -> dict:
    return tomllib.loads((REPO / "blender_manifest.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def blender_ext() -> Path:
    return build.find_blender_ext()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("dist")
    has_weights = bool(list((REPO / "blender_humantex" / "weights").glob("*.safetensors")))
    command = [sys.executable, str(REPO / "build.py"), "--output-dir", str(out)]
    if not has_weights:
        command.append("--allow-no-weights")  # before the default weights are trained
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_manifest_contract(manifest):
    import blender_humantex

    assert manifest["schema_version"] == "1.0.0"
    assert manifest["id"] == "blender_humantex"
    assert manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0"
    assert manifest["version"] == blender_humantex.__version__
    assert isinstance(manifest["permissions"]["files"], str) and manifest["permissions"]["files"].strip()
    assert "network" not in manifest["permissions"]  # it runs with no network: nothing is downloaded
    # Issue 12 item 8: the website pointed to a repository that does not exist. There is no public
    # page for this project, so the manifest names none (the field is optional).
    assert "website" not in manifest


def test_worker_requirements_match_pyproject():
    """The worker packages are listed for pip twice: pyproject's `worker` extra (a checkout) and
    worker/requirements.txt (shipped in the extension, for the add-on's setup command)."""
    extra = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]["worker"]
    lines = (REPO / "blender_humantex" / "worker" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert [line for line in lines if line.strip() and not line.startswith("#")] == extra


def test_wheels_listed_exactly(manifest):
    present = sorted(f"./wheels/{p.name}" for p in (REPO / "wheels").glob("*.whl"))
    assert sorted(manifest.get("wheels", [])) == present
    assert (REPO / "wheels" / "README.md").is_file()
    # No wheel may bring torch (or any compiled ML stack) into Blender's Python.
    assert not [w for w in present if "torch" in w.lower()]


def test_build_prints_zip_and_size(built, manifest):
    out, stdout = built
    zips = sorted(out.glob("*.zip"))
    assert len(zips) == 1  # no platform-specific wheels -> one zip for every platform
    zip_path = zips[0]
    assert zip_path.name == f"{manifest['id']}-{manifest['version']}.zip"
    assert str(zip_path) in stdout and "MB" in stdout


def test_zip_layout(built):
    out, _ = built
    names = zipfile.ZipFile(next(out.glob("*.zip"))).namelist()
    for required in ("blender_manifest.toml", "__init__.py", "addon/__init__.py", "addon/materials.py",
                     "worker/client.py", "worker/protocol.py", "worker/requirements.txt", "batch.py", "core/errors.py",
                     "core/request.py"):  # fmt: skip
        assert required in names, required
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith("tests/") or n.startswith(".venv")]
    shipped_weights = sorted(p.name for p in (REPO / "blender_humantex" / "weights").glob("*.safetensors"))
    assert sorted(n.split("/")[-1] for n in names if n.startswith("weights/") and n.endswith(".safetensors")) == shipped_weights


def test_blender_validates_zip(built, blender_ext):
    out, _ = built
    proc = subprocess.run(
        [sys.executable, str(blender_ext), "validate", str(next(out.glob("*.zip")))],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "success" in (proc.stdout + proc.stderr).lower()


def test_blender_rejects_broken_manifest(tmp_path, blender_ext):
    """The validator the build relies on does catch problems (so the passing test above means something)."""
    text = (REPO / "blender_manifest.toml").read_text(encoding="utf-8")
    (tmp_path / "blender_manifest.toml").write_text(text.replace('blender_version_min = "4.2.0"', 'blender_version_min = "four"'))
    (tmp_path / "__init__.py").write_text("def register():\n    pass\n\n\ndef unregister():\n    pass\n")
    proc = subprocess.run([sys.executable, str(blender_ext), "validate", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "blender_version_min" in proc.stdout + proc.stderr


def test_build_refuses_wheel_mismatch(tmp_path, monkeypatch):
    """A wheel in wheels/ that the manifest does not list stops the build with one clear line."""
    fake_wheels = tmp_path / "wheels"
    fake_wheels.mkdir()
    (fake_wheels / "example-1.0-py3-none-any.whl").write_bytes(b"")
    monkeypatch.setattr(build, "WHEELS", fake_wheels)
    with pytest.raises(build.BuildError, match="wheels"):
        build.build(tmp_path / "out", build.find_blender_ext(), allow_no_weights=True)


def test_build_refuses_missing_weights_without_flag(tmp_path, monkeypatch):
    empty_package = tmp_path / "pkg"
    (empty_package / "weights").mkdir(parents=True)
    (empty_package / "__init__.py").write_text((REPO / "blender_humantex" / "__init__.py").read_text())
    (empty_package / "version.py").write_text((REPO / "blender_humantex" / "version.py").read_text())
    monkeypatch.setattr(build, "PACKAGE", empty_package)
    with pytest.raises(build.BuildError, match="weights"):
        build.build(tmp_path / "out", build.find_blender_ext())
