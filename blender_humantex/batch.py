"""Headless batch entry point (bpy needed; see blender_humantex.addon.batch for the manifest).

    blender -b scene.blend --python-expr "import blender_humantex.batch as b; b.main()" -- --manifest jobs.json
    python -m blender_humantex.batch --blend scene.blend --manifest jobs.json
"""

import sys


def main(argv=None) -> int:
    from .addon.batch import main as _main

    return _main(argv)


if __name__ == "__main__":
    sys.exit(main())
