"""The one place a device name ("auto", "cpu", "cuda", "cuda:N", "mps") becomes a torch device string."""

from __future__ import annotations

from .errors import DependencyError, InputError

DEVICE_HELP = "auto (cuda, mps, cpu), cpu, cuda, cuda:N or mps"


def resolve_device(device: str = "auto", index: int = 0, mps: bool = True) -> str:
    """"auto" -> cuda:`index`, then mps (if `mps`), then cpu; an explicit device must exist here.

    `index` is the GPU a bare "cuda" means: 0 for inference, the process's local rank in training.
    Training passes mps=False: "auto" never picks the Apple GPU for it (ask for "mps" explicitly).
    """
    import torch

    device = (device or "auto").strip().lower()
    if device == "auto":
        if torch.cuda.is_available():
            return f"cuda:{index}"
        if mps and _mps_available(torch):
            return "mps"
        return "cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise InputError(f"unknown device {device!r} (use {DEVICE_HELP})", kind="bad_device") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise DependencyError(f"device {device!r} requested, but this torch has no usable CUDA GPU")
        gpu = index if resolved.index is None else resolved.index
        if gpu >= torch.cuda.device_count():
            raise InputError(f"device {device!r}: only {torch.cuda.device_count()} CUDA GPU(s) here", kind="bad_device")
        return f"cuda:{gpu}"
    if resolved.type == "mps":
        if not _mps_available(torch):
            raise DependencyError(f"device {device!r} requested, but this torch has no usable MPS (Apple GPU)")
        return "mps"
    if resolved.type == "cpu":
        return "cpu"
    raise InputError(f"unsupported device {device!r} (use {DEVICE_HELP})", kind="bad_device")


def _mps_available(torch) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()
