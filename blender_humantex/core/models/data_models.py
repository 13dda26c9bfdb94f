"""The closed-form models' files (the correspondence prior, the texture PCA): numpy arrays as safetensors
with a format id and provenance, beside the networks' weights (models/weights.py attaches them)."""

from __future__ import annotations

from pathlib import Path

from ..errors import WeightsError


def current_layout_id() -> str:
    from ..uv_layout import LAYOUT_ID

    return LAYOUT_ID


def write_data_model(path, tensors: dict, fmt: str, metadata: dict) -> Path:
    """Write a closed-form model (numpy arrays) as safetensors with its format id and provenance."""
    from safetensors.numpy import save_file

    from ..files import atomic_write

    meta = {"format": fmt, **{key: str(value) for key, value in metadata.items()}}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def read_data_model(path, fmt: str, what: str, names: tuple[str, ...]) -> tuple[dict, dict, int]:
    """Read a closed-form model written by write_data_model: (metadata, {name: array}, its atlas size).

    Missing, damaged, wrong-format and wrong-layout files are one-line WeightsErrors."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{what} not found: {path}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = dict(f.metadata() or {})
            tensors = {name: f.get_tensor(name) for name in names}
    except Exception as e:  # safetensors raises several types for damaged files
        raise WeightsError(f"cannot read {what} {path.name}: {e}") from None
    if meta.get("format") != fmt:
        raise WeightsError(f"{path.name} is not a {what} (format {meta.get('format')!r})")
    if meta.get("uv_layout") != current_layout_id():
        raise WeightsError(f"{path.name} was built for UV layout {meta.get('uv_layout')!r}, not {current_layout_id()!r}")
    size = int(meta.get("size", "0"))
    if not 8 <= size <= 1024:
        raise WeightsError(f"{path.name}: size {size} is not a {what} size")
    return meta, tensors, size
