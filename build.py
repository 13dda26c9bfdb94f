"""Build the Blender extension zip with Blender's own builder.

    python build.py [--output-dir dist] [--blender-ext PATH] [--allow-no-weights]

Assembles a staging folder (the package blender_humantex/ with its bundled weights, the
top-level blender_manifest.toml, and wheels/*.whl), then runs Blender's extension CLI
`blender_ext.py build` on it with this Python: no Blender binary is needed, the script ships
inside the bpy module (bpy/<ver>/scripts/addons_core/bl_pkg/cli/blender_ext.py). When wheels
are platform-specific, one zip per platform is built (`--split-platforms`). Prints each zip's
path and size.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parent
PACKAGE = REPO / "blender_humantex"
MANIFEST = REPO / "blender_manifest.toml"
WHEELS = REPO / "wheels"
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".*", "*.egg-info")


class BuildError(Exception):
    pass


def find_blender_ext(explicit: str | None = None) -> Path:
    """Blender's extension CLI: --blender-ext, $BLENDER_EXT, or the copy inside the bpy module."""
    candidates = [explicit, os.environ.get("BLENDER_EXT")]
    spec = importlib.util.find_spec("bpy")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            candidates += sorted(glob.glob(os.path.join(root, "*", "scripts", "addons_core", "bl_pkg", "cli", "blender_ext.py")))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise BuildError("Blender's blender_ext.py not found: install the bpy module (pip install -e '.[blender]') or pass --blender-ext")


def wheel_files() -> list[Path]:
    return sorted(WHEELS.glob("*.whl"))


def check_manifest(manifest: dict) -> None:
    """The manifest must name exactly the wheels in wheels/, and match the package version."""
    listed = sorted(manifest.get("wheels", []))
    present = sorted(f"./wheels/{p.name}" for p in wheel_files())
    if listed != present:
        raise BuildError(f"blender_manifest.toml wheels {listed} != wheels/ contents {present}")
    namespace: dict = {}
    exec((PACKAGE / "version.py").read_text(encoding="utf-8"), namespace)
    if manifest["version"] != namespace["__version__"]:
        raise BuildError(f"manifest version {manifest['version']} != package __version__ {namespace['__version__']}")


def stage(staging: Path) -> None:
    """The extension's layout: package files at the root, next to the manifest."""
    shutil.copytree(PACKAGE, staging, ignore=IGNORED, dirs_exist_ok=True)
    shutil.copy2(MANIFEST, staging / "blender_manifest.toml")
    wheels = wheel_files()
    if wheels:
        (staging / "wheels").mkdir()
        for wheel in wheels:
            shutil.copy2(wheel, staging / "wheels" / wheel.name)


def build(output_dir: Path, blender_ext: Path, allow_no_weights: bool = False) -> list[Path]:
    manifest = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    check_manifest(manifest)
    if not allow_no_weights and not list((PACKAGE / "weights").glob("*.safetensors")):
        raise BuildError("blender_humantex/weights/ has no .safetensors: train or copy the default weights first (or --allow-no-weights)")
    output_dir.mkdir(parents=True, exist_ok=True)
    split = any(not p.name.endswith("-any.whl") for p in wheel_files())
    with tempfile.TemporaryDirectory(prefix="humantex-ext-") as tmp:
        staging = Path(tmp) / "blender_humantex"
        stage(staging)
        before = set(output_dir.glob("*.zip"))
        command = [sys.executable, str(blender_ext), "build", "--source-dir", str(staging)]
        if split:
            command += ["--output-dir", str(output_dir), "--split-platforms"]
        else:
            command += ["--output-filepath", str(output_dir / f"{manifest['id']}-{manifest['version']}.zip")]
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(f"blender_ext.py build failed: {(proc.stdout + proc.stderr).strip()}")
    if split:
        zips = sorted(set(output_dir.glob(f"{manifest['id']}-{manifest['version']}-*.zip")) | (set(output_dir.glob("*.zip")) - before))
    else:
        zips = [output_dir / f"{manifest['id']}-{manifest['version']}.zip"]
    return zips


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default=str(REPO / "dist"), help="where the zip(s) go (default: dist/)")
    parser.add_argument("--blender-ext", help="path to Blender's blender_ext.py (default: found in the bpy module)")
    parser.add_argument("--allow-no-weights", action="store_true", help="build without bundled weights (tests only)")
    args = parser.parse_args(argv)
    try:
        zips = build(Path(args.output_dir).resolve(), find_blender_ext(args.blender_ext), args.allow_no_weights)
    except BuildError as e:
        print(f"build.py: error: {e}", file=sys.stderr)
        return 2
    for path in zips:
        print(f"{path}  {path.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
