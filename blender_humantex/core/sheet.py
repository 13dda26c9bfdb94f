"""Contact sheet: every layer of one result side by side, labelled, like Figure 1 of Cha et al. 2022.

    [photo] | partial | visibility | T_sample | T_refine | M | T_final
"""

from __future__ import annotations

import numpy as np

PANELS = ("partial", "visibility", "sample", "refine", "mask", "final")  # layer names, left to right
LABEL_HEIGHT = 22
GAP = 4
BACKGROUND = 24  # dark grey, so black unseen texels stay distinguishable from the margins


def _panel(image: np.ndarray, height: int):
    from PIL import Image

    from .imageio import to_u8

    if image.shape[0] > 3 * height:  # shrink a big layer by area first (a 2048² layer in ms), Lanczos finishes
        import cv2

        if image.dtype == np.uint8:  # (the job's layers) area-average in float: one rounding, as from float layers
            image = image.astype(np.float32) * np.float32(1 / 255)
        image = cv2.resize(image, (round(image.shape[1] * 3 * height / image.shape[0]), 3 * height),
                           interpolation=cv2.INTER_AREA)
    u8 = to_u8(image) if image.dtype != np.uint8 else image
    if u8.ndim == 2:
        u8 = np.repeat(u8[..., None], 3, axis=2)
    pil = Image.fromarray(np.ascontiguousarray(u8), "RGB")
    width = max(1, round(pil.width * height / pil.height))
    return pil.resize((width, height), Image.Resampling.LANCZOS if pil.height > height else Image.Resampling.NEAREST)


def contact_sheet(layers, photo: np.ndarray | None = None, panel_size: int = 256) -> np.ndarray:
    """uint8 H×W×3 sheet of every layer of `layers` (pipeline.Layers), after the photo if given."""
    from PIL import Image, ImageDraw

    from .layers import BY_NAME

    entries = [("photo", photo)] if photo is not None else []
    entries += [(BY_NAME[name].label, getattr(layers, name)) for name in PANELS]
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
