"""SamplerNet, RefinerNet, LazovaNet (the baseline), their config, and weights IO.

    from blender_humantex.core.models import ModelConfig, SamplerNet, RefinerNet, LazovaNet
    from blender_humantex.core.models import save_model, load_model, weights_id

Names are resolved lazily, so importing this package (or just ModelConfig) does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ModelConfig": "config",
    "KINDS": "config",
    "SamplerNet": "networks",
    "RefinerNet": "networks",
    "LazovaNet": "networks",
    "SamplerOutput": "networks",
    "RefinerOutput": "networks",
    "ResUNet": "networks",
    "ResBlock": "networks",
    "Down": "networks",
    "Up": "networks",
    "build_model": "networks",
    "count_parameters": "networks",
    "identity_grid": "networks",
    "sample_texture": "networks",
    "resize_partial": "resample",
    "PatchDiscriminator": "discriminators",
    "MultiscaleDiscriminator": "discriminators",
    "define_D": "discriminators",
    "define_method": "methods",
    "save_model": "weights",
    "average_weights": "weights",
    "select_checkpoint": "weights",
    "load_model": "weights",
    "read_metadata": "weights",
    "weights_id": "weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
