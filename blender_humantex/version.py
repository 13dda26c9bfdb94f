"""The package version: one line, read by the CLI, the worker's hello, meta.json and build.py."""

__version__ = "0.1.0"
