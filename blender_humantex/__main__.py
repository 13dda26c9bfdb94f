import sys

from blender_humantex.cli import main

sys.exit(main())
