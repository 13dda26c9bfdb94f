"""What every source makes: a partial SMPL-UV texture and its visibility (PartialTexture), its files,
and the `partial` source itself (a partial texture PNG and its visibility PNG, made earlier)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..files import write_json
from ..imageio import DEFAULT_MAX_PIXELS, read_gray, read_rgb, write_png
from ..pipeline import VISIBLE_EPS
from ..uv_layout import get_layout

# What `humantex unwrap` and `humantex project` write (write_partial).
PARTIAL_FILES = ("partial.png", "visibility.png", "meta.json")


@dataclass(frozen=True, eq=False)
class PartialTexture:
    """A source's result. Frozen: a step that adds something makes a new one (dataclasses.replace)."""

    partial: np.ndarray  # float32 S×S×3 in [0, 1], sRGB as in the photo; unseen texels exactly 0
    visibility: np.ndarray  # float32 S×S in [0, 1] (1 = seen)
    meta: dict = field(default_factory=dict)  # what the source measured (meta.json of unwrap / project)
    photo: np.ndarray | None = None  # float32 H×W×3, the photo as the source read it (for contact sheets)
    # bool S×S: the texture's own UV charts when its layout is not SMPL's (then the classical fill, no networks)
    chart_mask: np.ndarray | None = None
    job_meta: dict = field(default_factory=dict)  # what a generate job's meta.json records about the source

    @property
    def size(self) -> int:
        return int(self.partial.shape[0])

    @property
    def coverage(self) -> float | None:
        """Seen texels / texels of the UV charts, when the source could measure it."""
        return self.meta.get("coverage")


def as_photo(photo: np.ndarray) -> np.ndarray:
    """A photo array as float32 H×W×3 in [0, 1] (grey repeated, uint8 scaled, alpha over black), or InputError."""
    photo = np.asarray(photo)
    if photo.ndim == 2:
        photo = np.repeat(photo[..., None], 3, axis=2)
    if photo.ndim != 3 or photo.shape[2] not in (3, 4):
        raise InputError(f"photo must be H×W×3 (or ×4), got shape {photo.shape}", kind="bad_photo")
    if photo.dtype == np.uint8:
        photo = photo.astype(np.float32) / 255.0
    photo = photo.astype(np.float32, copy=False)
    if photo.shape[2] == 4:  # composite over black, as imageio.read_rgb does for files
        photo = photo[..., :3] * photo[..., 3:4]
    if not np.isfinite(photo).all():
        raise InputError("photo contains NaN or infinite values", kind="bad_photo")
    return np.ascontiguousarray(np.clip(photo, 0.0, 1.0))


def coverage_of(visibility) -> float:
    """Seen texels / texels of the SMPL UV charts, for a visibility mask in the SMPL layout."""
    vis = np.asarray(visibility)
    charts = get_layout(int(vis.shape[0])).chart_mask
    return float(((vis > VISIBLE_EPS) & charts).sum() / max(int(charts.sum()), 1))


def write_partial(out_dir, result: PartialTexture) -> dict[str, Path]:
    """Write partial.png, visibility.png and meta.json (the CLI contract) into out_dir."""
    out_dir = Path(out_dir)
    return {
        "partial": write_png(out_dir / "partial.png", result.partial),
        "visibility": write_png(out_dir / "visibility.png", result.visibility),
        "meta": write_json(out_dir / "meta.json", result.meta),
    }


def read(request, size=None, progress=None) -> PartialTexture:
    """The `partial` source: a partial texture PNG and its visibility PNG (size: the completion resizes)."""
    limit = request.max_pixels or DEFAULT_MAX_PIXELS
    partial = read_rgb(request.partial, max_pixels=limit, exif_transpose=False)
    vis = read_gray(request.visibility, max_pixels=limit)
    meta = {}
    if (vis.ndim == 2 and vis.shape[0] == vis.shape[1] and partial.shape[:2] == vis.shape
            and (vis > 0).any() and not (vis == vis.max()).all()):
        # (other shapes, and empty or full masks, get the completion's own messages)
        meta["coverage"] = coverage_of(vis)
    return PartialTexture(partial=partial, visibility=vis, meta=meta)
