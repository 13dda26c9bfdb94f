"""Inference: partial texture + visibility -> T_sample, T_refine, M, T_final (arrays in, arrays out).

    pipeline = Pipeline()                       # weights from blender_humantex/weights, device auto
    layers = pipeline.complete(partial, visibility, size=1024)

Files in, files out (unwrap, layers, meta.json, contact sheet) is core.job's work.

The networks run at their own net_size (sampler 128², refiner 256²). For any output size up to 4096
the predicted sampling grid is upsampled and applied to the *full-resolution* partial texture, so
T_sample keeps the photo's detail; T_refine and M are upsampled (they are smooth).

Method "lazova" runs the direct-prediction baseline instead. Its layers are reported through the
same blend equation with M = 0: final = refine = the baseline's texture, sample = the partial.

torch is imported inside functions, so importing this module stays fast.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .device import resolve_device
from .errors import HumantexError, InputError, WeightsError
from .files import DEFAULT_WEIGHTS_DIR
from .layers import LAYER_NAMES
from .request import MAX_SIZE, METHODS, MIN_SIZE, check_method, check_size

WEIGHT_FILES = {"sampler": "sampler.safetensors", "refiner": "refiner.safetensors", "lazova": "lazova.safetensors"}
PADDED_LAYERS = ("final", "mask", "sample", "refine")
BATCH_CHUNK = 4  # textures per forward pass in complete_batch; bounds memory at large sizes
# A visibility value this small is "unseen": PNG masks are 8-bit, so anything under half a step.
VISIBLE_EPS = 0.5 / 255


def check_inputs(partial_texture, visibility, label: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Validate one partial texture (H×W×3) and visibility (H×W, 1 = observed) -> float32 arrays that meet the
    contract: the inputs themselves when they already do (never written to), copies where a value had to change."""
    where = f" ({label})" if label else ""
    partial = np.asarray(partial_texture)
    vis = np.asarray(visibility)
    if vis.ndim == 3 and vis.shape[2] == 1:
        vis = vis[..., 0]
    if partial.ndim != 3 or partial.shape[2] != 3:
        raise InputError(f"partial texture must be H×W×3 (RGB), got shape {partial.shape}{where}", kind="bad_shape")
    if vis.ndim != 2:
        raise InputError(f"visibility must be an H×W grey mask, got shape {vis.shape}{where}", kind="bad_shape")
    if partial.shape[:2] != vis.shape:
        raise InputError(
            f"partial texture is {partial.shape[1]}×{partial.shape[0]} but visibility is {vis.shape[1]}×{vis.shape[0]}"
            f"{where}: they must be the same size",
            kind="size_mismatch",
        )
    if partial.shape[0] != partial.shape[1]:
        raise InputError(
            f"textures in the SMPL UV layout are square, got {partial.shape[1]}×{partial.shape[0]}{where}",
            kind="not_square",
        )
    if not MIN_SIZE // 4 <= partial.shape[0] <= MAX_SIZE:
        raise InputError(
            f"partial texture is {partial.shape[0]}², outside {MIN_SIZE // 4}..{MAX_SIZE}{where}", kind="bad_size"
        )
    partial = partial.astype(np.float32) / 255 if partial.dtype == np.uint8 else partial.astype(np.float32, copy=False)
    vis = vis.astype(np.float32) / 255 if vis.dtype == np.uint8 else vis.astype(np.float32, copy=False)
    # min and max carry any NaN or infinity: one pass each finds those and decides whether to clip
    ranges = [(float(a.min()), float(a.max())) for a in (partial, vis)]
    if not np.isfinite(ranges).all():
        raise InputError(f"partial texture or visibility contains NaN or infinity{where}", kind="bad_values")
    vis = _clipped(vis, *ranges[1])
    if vis.max() < VISIBLE_EPS:
        raise InputError(
            f"the visibility mask is empty: no texel was observed, so there is nothing to complete from{where}",
            kind="empty_visibility",
        )
    if vis.min() > 1 - VISIBLE_EPS:
        raise InputError(
            "the visibility mask is all ones: it marks every texel as observed, so there is nothing to fill"
            f" (a partial texture's mask is white only where the photo saw the body){where}",
            kind="full_visibility",
        )
    # Unseen texels are 0 by contract; enforce it so stray colour under vis=0 cannot leak in.
    partial = _clipped(partial, *ranges[0])
    unseen = vis < VISIBLE_EPS
    # partial ≥ 0 here, so its colour under the unseen texels sums to 0 only where it is all 0: one BLAS pass
    # (a per-texel max over 3 channels is a slow short-axis reduce in numpy: 0.3 s at 2048²)
    if np.dot(unseen.reshape(-1).astype(np.float32), partial.reshape(-1, 3)).any():
        partial = partial * ~unseen[..., None]
    return partial, vis


def _clipped(array: np.ndarray, low: float, high: float) -> np.ndarray:
    """array (whose least and greatest values are low and high) clipped to [0, 1]: the array itself when it
    already lies there (a 4096² job's input is not held twice); a copy when it does not, or when it is read-only
    (the layers are computed in arrays we may own)."""
    if low >= 0 and high <= 1 and array.flags.writeable:
        return array
    return np.clip(array, 0.0, 1.0)


@dataclass
class Layers:
    """One completed texture: every layer as an array in [0, 1] at the output size S: float32, or uint8 (value·255,
    rounded as the PNGs are: imageio.to_u8) when Pipeline.run was asked for uint8 (the job: a 4096² job's six
    layers are then 0.24 GiB, not 0.94 GiB, and its PNGs are the same bytes).

    The field names are core.layers' LAYER_NAMES (files, outputs and the add-on's nodes use them too).
    """

    final: np.ndarray  # S×S×3  T_final = sample * mask + refine * (1 - mask)
    sample: np.ndarray  # S×S×3  T_sample: seen texels kept, the rest sampled from seen ones
    refine: np.ndarray  # S×S×3  T_refine
    mask: np.ndarray  # S×S    blend mask M, 1 = keep T_sample
    partial: np.ndarray  # S×S×3  the partial texture the networks completed (resized to S)
    visibility: np.ndarray  # S×S    1 = seen in the photo

    def as_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in LAYER_NAMES}


class Pipeline:
    """Loads the networks once and completes textures; safe to keep alive for many jobs (the worker does)."""

    def __init__(self, weights_dir=None, device="auto"):
        self.weights_dir = Path(weights_dir).expanduser().resolve() if weights_dir else DEFAULT_WEIGHTS_DIR
        self.device = resolve_device(device)
        self.load_count = 0
        self._models: dict = {}
        self._weights: dict = {}  # kind -> {"id", "file", ...} of the loaded file

    # -------------------------------------------------------------- weights

    def weights_path(self, kind: str) -> Path:
        return self.weights_dir / WEIGHT_FILES[kind]

    def load(self, method: str = "full") -> None:
        """Load the networks `method` needs (once; later calls reuse them)."""
        from .models import load_model, weights_id

        for kind in METHODS[check_method(method)]:
            if kind in self._models:
                continue
            path = self.weights_path(kind)
            if not path.is_file():
                raise WeightsError(
                    f"no trained {kind} weights are installed: {path} does not exist. Train them with"
                    f" `humantex train {kind}` (see weights/MODEL_CARD.md) or point --weights (add-on:"
                    " Preferences > Weights folder) at a folder holding "
                    + ", ".join(WEIGHT_FILES[k] for k in METHODS[method])
                )
            model = load_model(path, kind=kind, device=self.device)
            self.load_count += 1
            self._models[kind] = model
            meta = model.metadata
            self._weights[kind] = {
                "id": weights_id(path),
                "file": str(path),
                "data": meta.get("data", ""),
                "command": meta.get("command", ""),
                "created": meta.get("created", ""),
                "config": json.loads(meta["config"]),
            }

    def weights_meta(self, method: str) -> dict:
        """The loaded weights `method` runs on, as meta.json records them (the config is in the files)."""
        return {kind: {k: v for k, v in self._weights[kind].items() if k != "config"} for kind in METHODS[method]}

    def weights_info(self) -> dict:
        """Plain data about the weights: loaded ones in full, others as present/missing (never raises)."""
        info = {"dir": str(self.weights_dir)}
        for kind, name in WEIGHT_FILES.items():
            if kind in self._weights:
                info[kind] = {k: v for k, v in self._weights[kind].items() if k != "config"} | {"loaded": True}
                continue
            path = self.weights_dir / name
            entry = {"file": str(path), "loaded": False}
            if path.is_file():
                try:
                    from .models import weights_id

                    entry["id"] = weights_id(path)
                except HumantexError as e:
                    entry["error"] = str(e)
            else:
                entry["missing"] = True
            info[kind] = entry
        return info

    # -------------------------------------------------------------- inference

    def complete(self, partial_texture, visibility, size=None, method="full", progress=None) -> Layers:
        """One texture: every layer at `size` (default: the input's size)."""
        results, _ = self.run([partial_texture], [visibility], size=size, method=method, progress=progress)
        return results[0]

    def complete_batch(self, partial_textures, visibilities, size=None, method="full", progress=None) -> list[Layers]:
        """Many textures, run through the networks BATCH_CHUNK at a time (same-size groups)."""
        results, _ = self.run(partial_textures, visibilities, size=size, method=method, progress=progress)
        return results

    def run(self, partial_textures, visibilities, size=None, method="full", progress=None, dtype=np.float32):
        """complete_batch, plus {"sample": s, "refine": s} timings. Progress stages: sample, refine.
        `dtype`: the layers' dtype, float32 or uint8 (see Layers)."""
        import torch

        check_method(method)
        if size is not None:
            size = check_size(size, what="output size")
        if len(partial_textures) != len(visibilities):
            raise InputError(
                f"{len(partial_textures)} partial textures but {len(visibilities)} visibility masks", kind="bad_batch"
            )
        if not partial_textures:
            return [], {"sample": 0.0, "refine": 0.0}
        inputs = [
            check_inputs(p, v, label=f"texture {i}" if len(partial_textures) > 1 else "")
            for i, (p, v) in enumerate(zip(partial_textures, visibilities, strict=True))
        ]
        self.load(method)
        report = progress or (lambda stage, fraction: None)
        timings = {"sample": 0.0, "refine": 0.0}
        results: list = [None] * len(inputs)
        # Group by output size so a batch is one tensor; chunk to bound memory.
        groups: dict[int, list[int]] = {}
        for i, (partial, _) in enumerate(inputs):
            groups.setdefault(size or partial.shape[0], []).append(i)
        chunks = [
            (out_size, indices[k : k + BATCH_CHUNK])
            for out_size, indices in groups.items()
            for k in range(0, len(indices), BATCH_CHUNK)
        ]
        with torch.inference_mode():
            for n, (out_size, indices) in enumerate(chunks):
                layers = self._run_chunk([inputs[i] for i in indices], out_size, method, report, n, len(chunks), timings,
                                         dtype)
                for i, result in zip(indices, layers, strict=True):
                    results[i] = result
        return results, timings

    def _autocast(self):
        import contextlib

        import torch

        if self.device.startswith("cuda"):
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def _sync(self):
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def _run_chunk(self, inputs, out_size, method, report, chunk, n_chunks, timings, dtype) -> list[Layers]:
        import torch

        from .models.resample import resize_partial
        from .padding import outside_sources

        def fraction(done: float) -> float:
            return (chunk + done) / n_chunks

        started = time.perf_counter()
        report("sample", fraction(0.0))
        def batch(arrays):  # a single texture needs no stacked copy
            return torch.from_numpy(arrays[0][None] if len(arrays) == 1 else np.stack(arrays))

        partial = batch([p for p, _ in inputs]).permute(0, 3, 1, 2).to(self.device)
        visibility = batch([v for _, v in inputs])[:, None].to(self.device)
        partial, visibility = resize_partial(partial, visibility, (out_size, out_size))
        # the layers' padding table (core.padding), made now, while little else is held (a first 4096² job)
        outside_sources(out_size)
        from .models.methods import define_method

        def after_stage(stage):  # the sampling stage is done: its progress and time
            nonlocal started
            self._sync()
            report("sample", fraction(1.0))
            timings["sample"] += time.perf_counter() - started
            started = time.perf_counter()
            report("refine", fraction(0.0))

        with self._autocast():
            completion = define_method(method, self._models)(partial, visibility, after_stage=after_stage)
        t_final, t_sample, t_refine, blend_mask = completion
        del completion
        self._sync()
        layers = {
            "final": t_final,
            "mask": blend_mask[:, 0],
            "sample": t_sample,
            "refine": t_refine,
            "partial": partial,
            "visibility": visibility[:, 0],
        }
        # Convert one layer at a time and drop its tensor, so a 4096² result is not held twice.
        del t_final, blend_mask, t_sample, t_refine, partial, visibility
        out = [{} for _ in inputs]
        for name in LAYER_NAMES:
            for i, array in enumerate(to_arrays(layers.pop(name), pad=name in PADDED_LAYERS, dtype=dtype)):
                out[i][name] = array
        timings["refine"] += time.perf_counter() - started
        report("refine", fraction(1.0))
        return [Layers(**arrays) for arrays in out]


def to_arrays(tensor, pad: bool, dtype=np.float32) -> list[np.ndarray]:
    """A layer N×C×S×S (or N×S×S) -> one S×S×C (or S×S) array per texture, clamped to [0, 1]: float32, or uint8
    (imageio.to_u8's rounding, to_u8_layer), made from the tensor without a full-size float copy.
    The tensor is only read (it may be the caller's own partial texture).

    With `pad`, texels outside the UV charts take their nearest chart texel's colour (core.padding), so a
    renderer's filtering and mipmaps never pull black into the seams: in place, outside texels only, after
    the one copy into numpy's layout (where a texel's channels are one row).
    """
    from .padding import outside_sources

    tensor = tensor.float()
    if tensor.ndim == 3:
        tensor = tensor[:, None]
    if np.dtype(dtype) == np.uint8:
        arrays = [to_u8_layer(tensor[i]) for i in range(tensor.shape[0])]
    else:
        arrays = []
        for i in range(tensor.shape[0]):
            layer = tensor[i].permute(1, 2, 0).cpu().numpy()  # a view (of the permuted layout on a CPU)
            arrays.append(np.clip(layer, 0.0, 1.0, out=np.empty(layer.shape, np.float32)))
    arrays = [a[..., 0] if a.shape[-1] == 1 else a for a in arrays]
    if pad:
        outside, source = outside_sources(tensor.shape[-1])
        for array in arrays:
            texels = array.reshape(len(array) ** 2, -1)  # a view; each texel's channels as one value, for speed
            texels = texels.view(np.dtype((np.void, texels.strides[0]))).reshape(-1)
            np.put(texels, outside, np.take(texels, source))
    return arrays


def to_u8_layer(layer, rows: int = 64) -> np.ndarray:
    """C×S×S float tensor -> S×S×C uint8, rounded as imageio.to_u8 (clip(x·255 + 0.5, 0, 255), truncated): in
    torch, `rows` rows at a time in the planar layout (contiguous reads; about 1.5× faster than numpy on the
    permuted view), each block written transposed into the result."""
    import torch

    c, h, w = layer.shape
    out = np.empty((h, w, c), np.uint8)
    target = torch.from_numpy(out)
    for top in range(0, h, rows):
        block = layer[:, top : top + rows].mul(255.0).add_(0.5).clamp_(0, 255).to(torch.uint8)
        target[top : top + rows] = block.permute(1, 2, 0)
    return out
