"""Resizing textures and partial textures: the one resampling every model and the prior share.

Its own module so that the networks, the grid prior, the correspondence prior and the texture PCA can all
use it without importing each other (no import cycles).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Below this sampled visibility weight a grid position fell on unobserved texels only: its colour is
# unknown and is left at 0 (the refiner fills it) rather than divided into noise.
SAMPLE_WEIGHT_EPS = 1e-3


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area average when shrinking (no aliasing), bilinear when enlarging (the outputs are smooth)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    if size[0] <= image.shape[-2] and size[1] <= image.shape[-1]:
        return F.interpolate(image, size=size, mode="area")
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False)


def resize_partial(
    partial_texture: torch.Tensor, visibility: torch.Tensor, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize a partial texture weighted by its visibility, so unseen black never bleeds into colours.

    Returns (partial, visibility) at `size`; the partial stays 0 where nothing was seen.
    """
    if tuple(partial_texture.shape[-2:]) == tuple(size):
        return partial_texture, visibility
    # colour and weight resized apart (per channel, so the same values as resizing them together): the
    # returned weight is then its own tensor, not a view keeping a 4-channel buffer alive (192 MB at 4096²)
    colour, weight = resize(partial_texture * visibility, size), resize(visibility, size)
    seen = weight > SAMPLE_WEIGHT_EPS
    if torch.is_grad_enabled():
        return colour / weight.clamp_min(SAMPLE_WEIGHT_EPS) * seen, weight
    return colour.div_(weight.clamp_min(SAMPLE_WEIGHT_EPS)).mul_(seen), weight  # inference: in place, same values
