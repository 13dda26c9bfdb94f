import sys

from blender_humantex.core.cli import main

sys.exit(main())
