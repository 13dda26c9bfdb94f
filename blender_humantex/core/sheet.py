"""Contact sheet: every layer of one result side by side, labelled, like Figure 1 of Cha et al. 2022.

    [photo] | partial | visibility | T_sample | T_refine | M | T_final
"""

from __future__ import annotations

import numpy as np

PANELS = (
    ("partial", "partial texture"),
    ("visibility", "visibility"),
    ("sample", "T_sample"),
    ("refine", "T_refine"),
    ("mask", "M (blend mask)"),
    ("final", "T_final"),
)
LABEL_HEIGHT = 22
GAP = 4
BACKGROUND = 24  # dark grey, so black unseen texels stay distinguishable from the margins


def _panel(image: np.ndarray, height: int):
    from PIL import Image

    from .imageio import to_u8

    u8 = to_u8(image) if image.dtype != np.uint8 else image
    if u8.ndim == 2:
        u8 = np.repeat(u8[..., None], 3, axis=2)
    pil = Image.fromarray(np.ascontiguousarray(u8), "RGB")
    width = max(1, round(pil.width * height / pil.height))
    return pil.resize((width, height), Image.Resampling.LANCZOS if pil.height > height else Image.Resampling.NEAREST)


def contact_sheet(layers: dict, photo: np.ndarray | None = None, panel_size: int = 256) -> np.ndarray:
    """uint8 H×W×3 sheet of the layers present in `layers` (and the photo first, if given)."""
    from PIL import Image, ImageDraw

    entries = [("photo", photo)] if photo is not None else []
    entries += [(label, layers[name]) for name, label in PANELS if name in layers]
    panels = [(label, _panel(image, panel_size)) for label, image in entries]
    width = sum(p.width for _, p in panels) + GAP * (len(panels) + 1)
    height = panel_size + LABEL_HEIGHT + 2 * GAP
    sheet = Image.new("RGB", (width, height), (BACKGROUND,) * 3)
    draw = ImageDraw.Draw(sheet)
    x = GAP
    for label, panel in panels:
        sheet.paste(panel, (x, GAP))
        draw.text((x + 2, GAP + panel_size + 4), label, fill=(235, 235, 235))
        x += panel.width + GAP
    return np.asarray(sheet)
