"""One object per completion method, used by inference (core.pipeline) and evaluation alike.

    method = define_method("full", {"sampler": sampler_net, "refiner": refiner_net})
    layers = method(partial, visibility)          # Completion(t_final, t_sample, t_refine, blend_mask)

    "full"    partial ──SamplerNet──► T_sample ──RefinerNet──► T_refine, M ──► T_final = T_sample⊙M + T_refine⊙(1−M)
    "lazova"  partial ──LazovaNet───► texture   (reported as T_final = T_refine = texture, M = 0, T_sample = partial)

CycleGAN's `define_G` in spirit: the caller names a method, the factory wires its networks. The
training side has the same shape per network (core.train.STAGES).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class Completion(NamedTuple):
    t_final: torch.Tensor  # N×3×H×W
    t_sample: torch.Tensor  # N×3×H×W
    t_refine: torch.Tensor  # N×3×H×W
    blend_mask: torch.Tensor  # N×1×H×W, 1 = keep T_sample


class FullMethod(nn.Module):
    """Cha et al. 2022: sample the seen texels, then refine and blend."""

    def __init__(self, sampler: nn.Module, refiner: nn.Module):
        super().__init__()
        self.sampler, self.refiner = sampler, refiner

    def forward(self, partial_texture, visibility, after_stage=None) -> Completion:
        """`after_stage(name)` is called when the sampling stage is done (for progress and timings)."""
        t_sample = self.sampler(partial_texture, visibility).t_sample
        if after_stage is not None:
            after_stage("sample")
        t_final, t_refine, blend_mask = self.refiner(t_sample, visibility)
        return Completion(t_final, t_sample, t_refine, blend_mask)


class LazovaMethod(nn.Module):
    """The Lazova et al. 2019-style baseline: one network predicts the whole texture."""

    def __init__(self, lazova: nn.Module):
        super().__init__()
        self.lazova = lazova

    def forward(self, partial_texture, visibility, after_stage=None) -> Completion:
        if after_stage is not None:
            after_stage("sample")  # no sampling stage
        texture = self.lazova(partial_texture, visibility)
        return Completion(texture, partial_texture, texture, torch.zeros_like(visibility))


METHOD_CLASSES = {"full": FullMethod, "lazova": LazovaMethod}


def define_method(name: str, networks: dict) -> nn.Module:
    """The method `name` over its loaded networks ({kind: network}; which kinds: core.pipeline.METHODS,
    the torch-free table the CLI and the add-on read)."""
    from ..request import METHODS

    return METHOD_CLASSES[name](*(networks[kind] for kind in METHODS[name]))
