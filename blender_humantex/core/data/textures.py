"""The real training textures in ../shared/data, and the fixed train / validation split.

- `train_textures/` (98 SMPLitex textures, 512²) is split once, here, into 84 for training and 14 for
  validation (every 7th file in name order, starting at the 4th). Everything tuned in this project is
  tuned on the validation split; nothing here ever reads `dev_textures/` (those are for reporting).
- `train_textures_texdreamer/` (9 TexDreamer textures, 1024²) are training-only; their alpha channel,
  where there is one, marks the valid texels.

Items are (texture H×W×3 float32 in [0, 1], valid H×W bool), zero and invalid outside the UV charts.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

SMPLITEX_DIR = "train_textures"
TEXDREAMER_DIR = "train_textures_texdreamer"
VALIDATION_EVERY, VALIDATION_FIRST = 7, 3  # 98 files -> 14 validation textures
DATA_CREDIT = (
    "SMPLitex textures (Casas and Comino-Trinidad, BMVC 2023; research data, no licence file) and "
    "TexDreamer textures (ggxxii/texdreamer, MIT; i2uv made from Market-1501 photos, research use)"
)


def shared_data_dir() -> Path:
    """../shared/data beside the checkout, or $HUMANTEX_SHARED_DATA."""
    env = os.environ.get("HUMANTEX_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


def _pngs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"training texture folder not found: {folder} (set HUMANTEX_SHARED_DATA)", kind="missing_file")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")


def texture_files(split: str, data_dir=None) -> list[Path]:
    """"train" (84 SMPLitex + 9 TexDreamer), "validation" (14 SMPLitex) or "smplitex-train" (the 84)."""
    root = Path(data_dir) if data_dir else shared_data_dir()
    smplitex = _pngs(root / SMPLITEX_DIR)
    validation = smplitex[VALIDATION_FIRST::VALIDATION_EVERY]
    if split == "validation":
        return validation
    train = [p for p in smplitex if p not in validation]
    if split == "smplitex-train":
        return train
    if split == "train":
        return train + _pngs(root / TEXDREAMER_DIR)
    raise InputError(f"split must be train, validation or smplitex-train, got {split!r}", kind="bad_argument")


@lru_cache(maxsize=512)
def _load(path: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    from ..uv_layout import get_layout

    with Image.open(path) as img:
        img.load()
    rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
    has_alpha = img.mode in ("RGBA", "LA")
    rgb, alpha = rgba[..., :3], (rgba[..., 3] if has_alpha else np.ones(rgba.shape[:2], np.float32))
    if rgb.shape[0] != size:
        interp = cv2.INTER_AREA if rgb.shape[0] > size else cv2.INTER_CUBIC
        # premultiplied resize, so transparent texels do not darken their neighbours
        weighted = cv2.resize(np.dstack([rgb * alpha[..., None], alpha]), (size, size), interpolation=interp)
        alpha = np.clip(weighted[..., 3], 0, 1)
        rgb = weighted[..., :3] / np.maximum(alpha[..., None], 1e-6)
    chart = get_layout(size).chart_mask
    valid = chart & (alpha > 0.5)
    texture = np.clip(rgb, 0, 1) * valid[..., None]
    texture.setflags(write=False)
    valid.setflags(write=False)
    return texture.astype(np.float32), valid


def load_textures(split: str, size: int, data_dir=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(textures N×H×W×3, valid N×H×W, names) of a split at size²."""
    files = texture_files(split, data_dir)
    items = [_load(str(p), size) for p in files]
    return np.stack([t for t, _ in items]), np.stack([v for _, v in items]), [p.stem for p in files]
