"""The layers one generation makes, named once: the pipeline's result fields, the output keys and
file names, the contact sheet's captions and the add-on's image nodes and preview buttons all come
from LAYERS.

    T_final = T_sample ⊙ M + T_refine ⊙ (1 − M)          (Cha et al. 2022)
    final     sample           refine       mask          (the names used in the code)

plus the partial texture and the visibility mask the networks completed. Standard library only:
the add-on (Blender's Python, no numpy needed) reads this table too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    name: str  # field of pipeline.Layers, key in a job's outputs, file stem
    label: str  # caption on the contact sheet, label of the image node in Blender
    button: str  # the add-on's preview button
    tooltip: str  # ... and its tooltip
    colour: bool  # an sRGB colour image; False: a 0..1 weight stored as grey (Non-Color in Blender)

    @property
    def file(self) -> str:
        return f"{self.name}.png"


# In the add-on's order (its image nodes and preview buttons).
LAYERS = (
    Layer("final", "T_final", "Final", "T_final as generated", colour=True),
    Layer("sample", "T_sample", "T_sample", "Sampled texture (visible texels kept, the rest sampled)", colour=True),
    Layer("refine", "T_refine", "T_refine", "Refiner output", colour=True),
    Layer("mask", "Blend mask M", "Mask M", "Blend mask M (white: T_sample, black: T_refine)", colour=False),
    Layer("partial", "Partial texture", "Partial", "Partial texture unwrapped from the photo", colour=True),
    Layer("visibility", "Visibility", "Visibility", "Texels seen in the photo", colour=False),
)
LAYER_NAMES = tuple(layer.name for layer in LAYERS)
BY_NAME = {layer.name: layer for layer in LAYERS}
