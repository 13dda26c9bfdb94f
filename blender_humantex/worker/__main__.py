"""`python -m blender_humantex.worker [--device auto|cpu|cuda] [--weights DIR]`: the worker server.

The client may point any interpreter at this module, so the Python version is checked before
the server (3.10+ syntax) is imported: a Python 3.6-3.9 gets one clear line on stderr and a
distinct exit code (see protocol.EXIT_*), not a SyntaxError traceback.
"""

import sys

from .protocol import EXIT_PYTHON_TOO_OLD, FATAL_PREFIX, INSTALL_HINT, MIN_PYTHON

if sys.version_info < MIN_PYTHON:
    found, needed = "{}.{}".format(*sys.version_info[:2]), "{}.{}".format(*MIN_PYTHON)
    sys.stderr.write(
        f"{FATAL_PREFIX}Python {found} is too old for the worker (needs {needed}+): {INSTALL_HINT}\n"
    )
    sys.exit(EXIT_PYTHON_TOO_OLD)

from .server import main  # noqa: E402  (only after the version check)

sys.exit(main())
