"""Weights files: safetensors with the architecture and provenance in the metadata.

Metadata (all strings, the DESIGN.md contract): `config` (ModelConfig JSON), `kind`, `uv_layout`,
`data` (what it was trained on), `command` (the train command), `created` (UTC ISO time).
Loading checks all of it and the tensor shapes; any problem is a WeightsError with one clear
line. There is no fallback to random weights, ever.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from ..errors import WeightsError
from .config import KINDS, ModelConfig
from .data_models import current_layout_id

FORMAT = "blender_humantex.weights.v1"
# The closed-form models that travel beside the networks' weights, in the same folder.
PRIOR_FILE = "correspondence_prior.safetensors"  # SamplerNet with grid_prior "correspondence"
PCA_FILE = "texture_pca.safetensors"  # RefinerNet with pca_input


def attach_data_models(model, folder):
    """Load the correspondence prior / PCA model a network's config needs from `folder` and attach it."""
    folder = Path(folder)
    config = model.config
    if config.kind == "sampler" and config.grid_prior == "correspondence":
        from .correspondence import PriorSampler, load_prior

        model.attach_prior(PriorSampler(load_prior(folder / PRIOR_FILE), slots=config.prior_slots,
                                        temperature=config.prior_temperature, passes=config.prior_passes))
    if config.kind == "refiner" and config.pca_input:
        from .texture_pca import PCAEstimator, load_pca

        pca = load_pca(folder / PCA_FILE)
        model.attach_pca(PCAEstimator(pca, ridge=float(pca.metadata.get("ridge", "0.03"))))
    return model


def save_model(model, path, *, data: str, command: str, extra: dict | None = None) -> Path:
    """Write `model`'s state_dict and provenance to `path` (atomically: a temp file, then rename)."""
    from safetensors.torch import save_file

    from ..files import atomic_write

    config: ModelConfig = model.config
    metadata = {
        "format": FORMAT,
        "config": config.to_json(),
        "kind": config.kind,
        "uv_layout": current_layout_id(),
        "data": str(data),
        "command": str(command),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    for key, value in (extra or {}).items():
        if key in metadata:
            raise ValueError(f"extra metadata may not override {key!r}")
        metadata[key] = value if isinstance(value, str) else json.dumps(value)
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_metadata(path) -> dict:
    """The metadata of a weights file, without reading its tensors (no torch needed)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            if header_len <= 0 or header_len > min(path.stat().st_size - 8, 100_000_000):
                raise ValueError("bad header length")
            header = json.loads(f.read(header_len))
    except (OSError, ValueError) as e:
        raise WeightsError(f"{path.name} is not a readable safetensors file (corrupt or truncated?): {e}") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{path.name} is not a readable safetensors file (bad header)")
    return dict(header.get("__metadata__") or {})


def load_model(path, kind: str | None = None, device="cpu"):
    """Read a weights file into its network (eval mode, on `device`). Raises WeightsError on any mismatch."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .networks import build_model

    path = Path(path)
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}")
    metadata = read_metadata(path)
    if "config" not in metadata:
        raise WeightsError(f"{path.name} has no model config in its metadata: not a blender_humantex weights file")
    config = ModelConfig.from_json(metadata["config"])
    if kind is not None and config.kind != kind:
        raise WeightsError(f"{path.name} holds {config.kind} weights, but {kind} weights are needed")
    layout = metadata.get("uv_layout")
    if layout != current_layout_id():
        raise WeightsError(
            f"{path.name} was trained for UV layout {layout!r}, but this version uses {current_layout_id()!r}"
        )
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise WeightsError(f"{path.name} is corrupt or truncated: {str(e).splitlines()[0]}") from None
    model = build_model(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong_shape = sorted(
        f"{name} {tuple(tensors[name].shape)} != {tuple(t.shape)}"
        for name, t in expected.items()
        if name in tensors and tensors[name].shape != t.shape
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensors (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} tensors of the wrong shape (e.g. {wrong_shape[0]})")
    if problems:
        raise WeightsError(f"{path.name} does not match its {config.kind} config: " + "; ".join(problems))
    model.load_state_dict(tensors, strict=True)
    attach_data_models(model, path.parent)
    model.eval()
    model.metadata = metadata
    return model.to(device)


def weights_id(path) -> str:
    """A short content id of a weights file (sha256 prefix), for meta.json and the add-on."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as e:
        raise WeightsError(f"cannot read weights file {Path(path).name}: {e.strerror or e}") from None
    return digest.hexdigest()[:16]


# Metadata that describes one file's own writing; an average gets its own (save_model writes these).
_WRITER_KEYS = ("format", "config", "kind", "uv_layout", "data", "command", "created")


def _run_provenance(meta: dict) -> dict:
    """A run's metadata that save_model does not write itself (train_config, iterations, init, ...)."""
    return {k: v for k, v in meta.items() if k not in _WRITER_KEYS and k != "step"}


def select_checkpoint(checkpoint, run_weights, out, command: str = "") -> Path:
    """Write a run's kept checkpoint (`--keep-checkpoints`) with the run's provenance: the weights are the
    checkpoint's, the metadata the run's exported file's, with `iterations` the checkpoint's step and
    `selected_checkpoint` saying so (a checkpoint chosen on validation ships with its full record)."""
    from safetensors.torch import load_file

    from .networks import build_model

    meta, run_meta = read_metadata(checkpoint), read_metadata(run_weights)
    if meta.get("config") is None or meta.get("config") != run_meta.get("config"):
        raise WeightsError("the checkpoint and the run's weights hold different network configs "
                           "(or are not blender_humantex weights)")
    if "step" not in meta or "iterations" not in run_meta:
        raise WeightsError("select needs a kept checkpoint (it records its step) and then the run's exported weights")
    if meta.get("command") != run_meta.get("command"):
        raise WeightsError("the checkpoint was not written by the run that exported the weights (different commands)")
    model = build_model(ModelConfig.from_json(run_meta["config"]))
    model.load_state_dict(load_file(str(checkpoint)), strict=True)
    extra = _run_provenance(run_meta)
    extra["iterations"] = meta["step"]
    extra["selected_checkpoint"] = (f"the run's checkpoint at step {meta['step']} of its {run_meta['iterations']} "
                                   "(wall_time_s is the whole run's)")
    if command:
        extra["select_command"] = command
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return save_model(model, out, data=run_meta.get("data", ""), command=run_meta.get("command", ""), extra=extra)


def average_weights(paths, out, command: str = "") -> Path:
    """Write the mean of several weights files of one network config to `out` (checkpoint averaging:
    the mean of a run's late checkpoints is smoother than any one of them).

    The provenance is the last file's (list the run's exported weights last), plus `weight_average`
    (which steps went in) and `average_command`. Raises WeightsError on files of different configs."""
    from safetensors.torch import load_file

    from .networks import build_model

    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise WeightsError("averaging needs at least two weights files")
    metas = [read_metadata(p) for p in paths]
    configs = {m.get("config") for m in metas}
    if len(configs) != 1 or None in configs:
        raise WeightsError("the files to average hold different network configs (or are not blender_humantex weights)")
    total = None
    for path in paths:
        tensors = load_file(str(path))
        if total is None:
            total = {k: v.double() for k, v in tensors.items()}
        elif set(tensors) != set(total):
            raise WeightsError(f"{path.name} does not hold the same tensors as {paths[0].name}")
        else:
            for k, v in tensors.items():
                total[k] += v.double()
    model = build_model(ModelConfig.from_json(metas[-1]["config"]))
    state = model.state_dict()
    model.load_state_dict({k: (total[k] / len(paths)).to(state[k].dtype) for k in state}, strict=True)
    steps = [m.get("iterations") or m.get("step") or p.name for m, p in zip(metas, paths, strict=True)]
    extra = _run_provenance(metas[-1])
    extra["weight_average"] = "mean of the weights at steps " + ", ".join(steps)
    if command:
        extra["average_command"] = command
    Path(out).parent.mkdir(parents=True, exist_ok=True)  # (only now: nothing is written for bad input)
    return save_model(model, out, data=metas[-1].get("data", ""), command=metas[-1].get("command", ""), extra=extra)
