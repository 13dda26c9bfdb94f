"""Photometric augmentation: make a clean training texture's partial look like a real photo's unwrap.

The training textures are Stable-Diffusion-made and evenly lit; a real photo unwrapped through DensePose
carries shading and folds, the camera's white balance and exposure, blur (the photo is usually lower
resolution than the texture), JPEG blocks, sensor noise, and pixels of whatever stood in front of the
body (an arm across the torso, a bag) that DensePose labelled as the body part behind it.

`augment(rng, target, visibility)` -> (target, partial), numpy float32 H×W×3 in [0, 1]:

- **global colour** (white balance, exposure, gamma) goes to the target AND the partial: it is the
  whole photo's colour, so the completed texture must continue it; a fill trained to undo it would
  leave a seam between the seen texels (kept as they are: the blend mask is 1 there) and the fill;
- **degradations** (shading and folds, blur, noise, JPEG, occluders) go to the partial only: the
  target stays clean, so the networks learn to fill with the albedo, not with the degradations.

Every choice is drawn from `rng` (numpy Generator), so an item is a function of its seed alone.
Degradations are applied in UV space at the texture's resolution; their scales are in texels of a
256² atlas, so they mean the same at any size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .procedural import low_freq_noise


@dataclass(frozen=True)
class PhotometricConfig:
    """How often and how strongly each effect is drawn (probabilities per item; ranges uniform)."""

    p_any: float = 0.8  # an item is augmented at all (the rest stay clean: validation is clean)
    p_colour: float = 0.6
    white_balance: float = 0.10  # σ of log per-channel gain
    exposure: float = 0.25  # σ of log overall gain
    gamma: float = 0.15  # σ of log gamma
    p_shading: float = 0.6
    shading: tuple[float, float] = (0.15, 0.45)  # amplitude of the log shading field
    p_folds: float = 0.4
    p_blur: float = 0.5
    blur_sigma: tuple[float, float] = (0.5, 2.0)  # texels at 256²
    p_noise: float = 0.5
    noise_sigma: tuple[float, float] = (0.005, 0.04)
    p_jpeg: float = 0.5
    jpeg_quality: tuple[int, int] = (25, 90)
    p_occluder: float = 0.3


def augment(rng, target: np.ndarray, visibility: np.ndarray, config: PhotometricConfig = PhotometricConfig()
            ) -> tuple[np.ndarray, np.ndarray]:
    """(target H×W×3, visibility H×W) -> (target, partial = degraded target · visibility), float32."""
    target = np.asarray(target, np.float32)
    seen = np.asarray(visibility, np.float32)[..., None]
    if rng.random() >= config.p_any:
        return target, target * seen
    if rng.random() < config.p_colour:
        target = global_colour(rng, target, config)  # (0 stays 0: outside the charts stays black)
    photo = target.copy()
    if rng.random() < config.p_shading:
        photo = photo * shading_field(rng, photo.shape[0], config)[..., None]
    if rng.random() < config.p_folds:
        photo = photo * folds(rng, photo.shape[0])[..., None]
    if rng.random() < config.p_occluder:
        photo = occlude(rng, photo, seen[..., 0])
    if rng.random() < config.p_blur:
        photo = blur_seen(photo, seen[..., 0], rng.uniform(*config.blur_sigma) * photo.shape[0] / 256)
    if rng.random() < config.p_noise:
        photo = photo + rng.normal(0.0, rng.uniform(*config.noise_sigma), photo.shape).astype(np.float32)
    if rng.random() < config.p_jpeg:
        photo = jpeg(np.clip(photo, 0, 1), int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1)))
    return target, np.clip(photo, 0.0, 1.0).astype(np.float32) * seen


def global_colour(rng, texture: np.ndarray, config: PhotometricConfig) -> np.ndarray:
    """The camera's white balance (per-channel gain), exposure (gain) and tone curve (gamma)."""
    gain = np.exp(rng.normal(0.0, config.white_balance, 3) + rng.normal(0.0, config.exposure)).astype(np.float32)
    gamma = float(np.exp(rng.normal(0.0, config.gamma)))
    return np.clip(np.clip(texture * gain, 0.0, 1.0) ** gamma, 0.0, 1.0).astype(np.float32)


def shading_field(rng, size: int, config: PhotometricConfig) -> np.ndarray:
    """A smooth multiplicative light field (one side of a limb darker, a highlight), mean about 1."""
    amplitude = rng.uniform(*config.shading)
    field = low_freq_noise(rng, size, int(rng.integers(2, 9)))  # about [-1, 1]
    return np.exp(amplitude * field).astype(np.float32)


def folds(rng, size: int) -> np.ndarray:
    """Cloth folds: a few soft dark creases (a multiplicative field, 1 away from them)."""
    field = np.ones((size, size), np.float32)
    unit = size / 256
    for _ in range(int(rng.integers(2, 8))):
        canvas = np.zeros((size, size), np.float32)
        start = rng.uniform(0, size, 2)
        angle = rng.uniform(0, np.pi)
        length = rng.uniform(10, 40) * unit
        end = start + length * np.array([np.cos(angle), np.sin(angle)])
        cv2.line(canvas, tuple(int(v) for v in start), tuple(int(v) for v in end), 1.0, max(1, int(2 * unit)))
        canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(1.0, 3.0) * unit)
        canvas /= max(float(canvas.max()), 1e-6)
        field *= 1.0 - rng.uniform(0.2, 0.5) * canvas
    return field


def occlude(rng, photo: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """1-3 blobs of something else (a flat colour, or another part of the texture) over seen texels:
    what DensePose labels as the body part behind an arm or a bag. Visibility stays as it is."""
    size = photo.shape[0]
    out = photo.copy()
    for _ in range(int(rng.integers(1, 4))):
        blob = low_freq_noise(rng, size, int(rng.integers(4, 10))) > rng.uniform(0.55, 0.85)
        blob &= seen > 0.5
        if not blob.any():
            continue
        if rng.random() < 0.5:
            colour = rng.uniform(0.05, 0.95, 3).astype(np.float32)
            out[blob] = colour * rng.uniform(0.8, 1.2, (int(blob.sum()), 1)).astype(np.float32)
        else:  # another region of the same person (e.g. an arm's skin over the shirt)
            dy, dx = rng.integers(-size // 3, size // 3 + 1, 2)
            out[blob] = np.roll(photo, (int(dy), int(dx)), axis=(0, 1))[blob]
    return out


def blur_seen(photo: np.ndarray, seen: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of the seen texels only (normalised by the blurred mask: no dark rim from the
    unseen zeros)."""
    weight = cv2.GaussianBlur(seen.astype(np.float32), (0, 0), sigma)
    blurred = cv2.GaussianBlur(photo * seen[..., None], (0, 0), sigma)
    return np.where(seen[..., None] > 0.5, blurred / np.maximum(weight, 1e-3)[..., None], photo)


def jpeg(photo: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip at `quality` (8×8 blocks and chroma subsampling, as a photo file has)."""
    bgr = cv2.cvtColor((photo * 255.0 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # (cannot happen for a uint8 image; keep the photo as it is)
        return photo
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
