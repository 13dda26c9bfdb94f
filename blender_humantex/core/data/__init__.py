"""Training data: procedural SMPL-UV textures, visibility masks, datasets (no torch at import time).

- procedural.make_texture(seed, size): a clothed body texture, deterministic by seed;
- visibility.sample_visibility(rng, size): real (DensePose) or view-dependent synthetic masks with
  DensePose-like misalignment; the real masks ship in real_visibility_256.npz (CC BY-NC 4.0, see
  visibility.REAL_BANK_NOTE);
- datasets: ProceduralTextureDataset, FolderTextureDataset (the user's own textures), dev_eval_set.
"""

from .datasets import (
    FolderTextureDataset,
    ProceduralTextureDataset,
    RealTextureDataset,
    as_item,
    dev_eval_set,
)
from .procedural import make_texture
from .visibility import sample_visibility

__all__ = [
    "FolderTextureDataset",
    "ProceduralTextureDataset",
    "RealTextureDataset",
    "as_item",
    "dev_eval_set",
    "make_texture",
    "sample_visibility",
]
