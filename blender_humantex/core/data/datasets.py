"""Training and evaluation sets: complete textures, each masked with a visibility.

Every item is dict(target (3,H,W), partial (3,H,W) = target · visibility, visibility (1,H,W)), float32
torch tensors in [0, 1], zero outside the SMPL UV charts. The classes are plain map-style datasets
(`__len__` + `__getitem__`), which torch's DataLoader takes as they are; torch is imported only when
an item is made, so importing this module stays cheap.

Determinism: item i of a split is a function of (seed, split, i) only, never of the worker or the
order of calls. Train and test texture seeds are disjoint by construction (even / odd).
Never train on ../shared/data/dev_textures: `dev_eval_set` is the only reader of them, for evaluation.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from .procedural import body_geometry, make_texture
from .visibility import load_real_bank, prepare, sample_visibility

SPLITS = {"train": 0, "test": 1}
TEXTURE_SUFFIXES = (".png", ".jpg", ".jpeg")


def as_item(target: np.ndarray, visibility: np.ndarray, partial: np.ndarray | None = None) -> dict:
    """numpy target H×W×3 and visibility H×W -> the dict of CHW float32 tensors every dataset returns.
    `partial` (H×W×3, e.g. photometrically augmented) defaults to target · visibility."""
    import torch

    # The layout work is done in numpy: small torch ops in DataLoader workers pay thread-pool overheads.
    target_chw = np.ascontiguousarray(np.asarray(target, np.float32).transpose(2, 0, 1))
    visibility_chw = np.ascontiguousarray(visibility, dtype=np.float32)[None]
    partial_chw = (target_chw * visibility_chw if partial is None
                   else np.ascontiguousarray(np.asarray(partial, np.float32).transpose(2, 0, 1)))
    return {
        "target": torch.from_numpy(target_chw),
        "partial": torch.from_numpy(partial_chw),
        "visibility": torch.from_numpy(visibility_chw),
    }


def _check_index(index: int, length: int) -> int:
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"index {index} out of range for a dataset of {length}")
    return index


class ProceduralTextureDataset:
    """Procedural clothed-body textures (see procedural.py) with real or synthetic visibilities.

    split: "train" or "test" (disjoint texture seeds). length: number of items (any size; items are
    made on the fly, a few ms each). real_fraction: share of masks drawn from the real DensePose bank.
    """

    def __init__(self, split: str = "train", size: int = 256, length: int = 100_000, seed: int = 0,
                 real_fraction: float = 0.5):
        if split not in SPLITS:
            raise InputError(f"split must be one of {', '.join(SPLITS)}, got {split!r}", kind="bad_argument")
        if length < 1:
            raise InputError(f"dataset length must be at least 1, got {length}", kind="bad_argument")
        if seed < 0:
            raise InputError(f"seed must be ≥ 0, got {seed}", kind="bad_argument")
        self.split, self.size, self.length, self.seed = split, int(size), int(length), int(seed)
        self.real_fraction = float(real_fraction)
        prepare(self.size)  # fail early (bad size, missing layout package) and build caches before workers fork

    def __len__(self) -> int:
        return self.length

    def texture_seed(self, index: int) -> int:
        """The make_texture seed of item `index`: even for train, odd for test, so the splits never share one."""
        return ((self.seed * 1_000_003 + index) * 2 + SPLITS[self.split]) % (1 << 63)

    def numpy_item(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(target H×W×3, visibility H×W) as numpy, for evaluation code that wants arrays."""
        index = _check_index(index, self.length)
        target = make_texture(self.texture_seed(index), self.size)
        rng = np.random.default_rng([self.seed, SPLITS[self.split], index])
        return target, sample_visibility(rng, self.size, self.real_fraction)

    def __getitem__(self, index: int) -> dict:
        return as_item(*self.numpy_item(index))


def _texture_files(folder, what: str) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{what} folder not found: {folder}", kind="missing_file")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TEXTURE_SUFFIXES)
    if not files:
        raise InputError(f"no {'/'.join(TEXTURE_SUFFIXES)} textures in {folder}", kind="empty_folder")
    return files


def _check_square(files: list[Path]) -> None:
    from PIL import Image, UnidentifiedImageError

    for path in files:
        try:
            with Image.open(path) as img:  # reads the header only
                w, h = img.size
        except (UnidentifiedImageError, OSError) as e:
            raise InputError(f"cannot read texture {path.name}: {e}", kind="unreadable") from None
        if w != h:
            raise InputError(f"{path.name} is {w}×{h}: an SMPL-UV texture must be square", kind="not_square")


def load_texture(path, size: int) -> np.ndarray:
    """A complete SMPL-UV texture file at size², float32 H×W×3, zeroed outside the UV charts."""
    from ..imageio import read_rgb

    texture = read_rgb(path)
    if texture.shape[:2] != (size, size):
        shrink = texture.shape[0] > size
        texture = cv2.resize(texture, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return np.clip(texture, 0.0, 1.0) * body_geometry(size).chart_mask[..., None]


class FolderTextureDataset:
    """The user's own complete SMPL-UV textures (PNG / JPG, square, any resolution; e.g. from scans).

    Item i uses texture i mod N, mirrored left/right for odd rounds (i // N), with a visibility drawn
    from (seed, i): a `length` larger than N gives every texture many different masks.
    """

    def __init__(self, folder, size: int = 256, length: int | None = None, seed: int = 0,
                 real_fraction: float = 0.5, mirror: bool = True):
        self.files = _texture_files(folder, "texture")
        _check_square(self.files)
        self.size, self.seed, self.real_fraction, self.mirror = int(size), int(seed), float(real_fraction), mirror
        self.length = int(length) if length is not None else len(self.files)
        if self.length < 1:
            raise InputError(f"dataset length must be at least 1, got {self.length}", kind="bad_argument")
        prepare(self.size)

    def __len__(self) -> int:
        return self.length

    def numpy_item(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        from ..uv_layout import get_layout, mirror_image

        index = _check_index(index, self.length)
        round_, k = divmod(index, len(self.files))
        target = load_texture(self.files[k], self.size)
        if self.mirror and round_ % 2 == 1:  # texels without a mirror keep their own colour
            target = mirror_image(target, get_layout(self.size), fill=target)
        rng = np.random.default_rng([self.seed, 2, index])
        return target, sample_visibility(rng, self.size, self.real_fraction)

    def __getitem__(self, index: int) -> dict:
        return as_item(*self.numpy_item(index))


def dev_eval_set(dev_dir, size: int = 256, masks_per_texture: int = 3, masks=None) -> list[dict]:
    """Evaluation textures (e.g. ../shared/data/dev_textures), each masked with fixed REAL visibilities.

    With `masks` (indices into the shipped bank, e.g. visibility.DEV_PROTOCOL_MASKS) every texture gets
    exactly those; otherwise texture k (sorted by file name) gets real masks (k·m + j) mod N, j < m.
    No flips, no jitter: DensePose's own masks. Returns a list of dicts with numpy arrays: name,
    target H×W×3, partial H×W×3, visibility H×W (float32), mask_name.
    """
    files = _texture_files(dev_dir, "evaluation texture")
    _check_square(files)
    bank = load_real_bank(size)
    n = len(bank.masks)
    samples = []
    for k, path in enumerate(files):
        target = load_texture(path, size)
        chosen = list(masks) if masks is not None else [(k * masks_per_texture + j) % n for j in range(masks_per_texture)]
        for m in chosen:
            visibility = bank.masks[m].astype(np.float32)
            samples.append({
                "name": f"{path.stem}__mask{m:02d}",
                "target": target,
                "partial": target * visibility[..., None],
                "visibility": visibility,
                "mask_name": bank.names[m],
            })
    return samples


class RealTextureDataset:
    """The real training textures (core.data.textures) with training masks, for the shipped weights.

    Item i: texture i mod N of the split, mirrored left/right (through the UV mirror table) for odd
    rounds, with a mask drawn from (seed, i): a real DensePose mask other than the dev protocol's
    (flipped and jittered) with probability `real_fraction`, else a view-dependent synthetic one
    (front, three-quarter, side, back), with DensePose-like misalignment. Also returns `valid`
    (texels the texture defines: TexDreamer's alpha), for the losses. With `photometric`, the partial
    looks like a real photo's unwrap (photometric.augment, drawn from (seed, i)): shading, folds, blur,
    noise, JPEG and occluders on the partial only, the camera's colour on both.
    """

    def __init__(self, split: str = "train", size: int = 256, length: int = 100_000, seed: int = 0,
                 real_fraction: float = 0.5, data_dir=None, photometric: bool = False):
        from .textures import load_textures
        from .visibility import training_real_masks

        self.textures, self.valid, self.names = load_textures(split, size, data_dir)
        self.size, self.length, self.seed, self.real_fraction = int(size), int(length), int(seed), float(real_fraction)
        self.photometric = bool(photometric)
        self.real_masks = training_real_masks(self.size)
        prepare(self.size)

    def __len__(self) -> int:
        return self.length

    def numpy_item(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from ..uv_layout import get_layout, mirror_image

        index = _check_index(index, self.length)
        round_, k = divmod(index, len(self.textures))
        target, valid = self.textures[k], self.valid[k]
        if round_ % 2 == 1:
            layout = get_layout(self.size)
            target = mirror_image(target, layout, fill=target)
            valid = mirror_image(valid.astype(np.float32), layout, fill=0.0) > 0.5
        rng = np.random.default_rng([self.seed, 3, index])
        visibility = sample_visibility(rng, self.size, self.real_fraction, real_masks=self.real_masks)
        return target, visibility * valid, valid

    def __getitem__(self, index: int) -> dict:
        target, visibility, valid = self.numpy_item(index)
        partial = None
        if self.photometric:
            from .photometric import augment

            target, partial = augment(np.random.default_rng([self.seed, 4, _check_index(index, self.length)]),
                                      target, visibility)
        item = as_item(target, visibility, partial)
        import torch

        item["valid"] = torch.from_numpy(valid.astype(np.float32))[None]
        return item


def validation_eval_set(size: int = 256, data_dir=None, photometric: bool = False) -> list[dict]:
    """The validation split (core.data.textures, 14 textures), each with three fixed masks: two real
    DensePose masks that are not the dev protocol's (the second mirrored), and one synthetic side,
    back or three-quarter view with DensePose-like misalignment. The only set anything is tuned on.
    `photometric`: every partial made to look like a real photo's unwrap (photometric.augment, every
    case augmented, seeded by its index), the target with the same camera colour: robustness."""
    from .textures import load_textures
    from .visibility import flip_visibility, misalign, synthetic_visibility, training_real_masks

    textures, valid, names = load_textures("validation", size, data_dir)
    bank = load_real_bank(size)
    real = training_real_masks(size)
    chart = body_geometry(size).chart_mask
    rng = np.random.default_rng(123)
    samples = []
    for i, (target, name) in enumerate(zip(textures, names, strict=True)):
        first = bank.masks[real[(2 * i) % len(real)]].astype(np.float32)
        second = flip_visibility(bank.masks[real[(2 * i + 1) % len(real)]].astype(np.float32))
        view = float(rng.choice([90, -90, 180, 45]))
        third = (misalign(synthetic_visibility(rng, size, view=view), rng) * chart).astype(np.float32)
        for label, visibility in (("real", first), ("real-mirrored", second), (f"view{view:+.0f}", third)):
            samples.append({"name": f"{name}__{label}", "target": target, "partial": target * visibility[..., None],
                            "visibility": visibility, "mask_name": label})
    if photometric:
        from .photometric import PhotometricConfig, augment

        always = PhotometricConfig(p_any=1.0)
        for i, sample in enumerate(samples):
            sample["target"], sample["partial"] = augment(np.random.default_rng([PHOTOMETRIC_VALIDATION_SEED, i]),
                                                          sample["target"], sample["visibility"], always)
            sample["name"] += "__photometric"
    return samples


PHOTOMETRIC_VALIDATION_SEED = 77
