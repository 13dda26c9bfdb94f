"""Headless batch entry point for a checkout with the bpy module (see blender_humantex.addon.batch).

    python -m blender_humantex.batch --blend scene.blend --manifest jobs.json

In a stock Blender with the extension installed, use the command the add-on registers:
    blender -b -c humantex_batch --blend scene.blend --manifest jobs.json
"""

import sys


def main(argv=None) -> int:
    from .addon.batch import main as _main

    return _main(argv)


if __name__ == "__main__":
    sys.exit(main())
