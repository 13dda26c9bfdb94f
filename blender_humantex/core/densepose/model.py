"""Loading and running the DensePose TorchScript export, once per process.

`load` imports torchvision first (the export calls torchvision::nms and roi_align, which only exist
once torchvision is imported), then torch.jit.load's the file on the CPU. The loaded model is kept
(keyed by path, size and modification time), so a warm worker loads it once however many jobs it
runs. `run` tries the worker's device and falls back to the CPU when the export fails there (it is
reported to hard-code the CPU device in places: ComfyUI controlnet_aux issues #354 and #360); a
model that failed on a device stays on the CPU afterwards. `densepose` is the whole step: photo ->
DensePoseResult + a meta dict (model file, SHA-256, licence, device, timings, persons).
"""

from __future__ import annotations

import re
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DependencyError, InputError
from . import store
from .extract import INDS_FILE, IUV_FILE, DensePoseResult, extract, preprocess

OUTPUT_FILES = (IUV_FILE, INDS_FILE, "meta.json")  # what `humantex densepose` writes


def _pinned(package: str) -> str:
    """The worker environment's pin for a package (worker/requirements.txt, the one list of pins)."""
    requirements = Path(__file__).resolve().parents[2] / "worker" / "requirements.txt"
    for line in requirements.read_text(encoding="utf-8").splitlines():
        if re.match(rf"{package}\s*[=<>~!]", line.strip()):
            return line.strip()
    return package


def fix_command() -> str:
    import sys

    return f'"{sys.executable}" -m pip install "{_pinned("torch")}" "{_pinned("torchvision")}"'


def import_torchvision():
    """torchvision with its C++ ops registered, or DependencyError with the pip command that fixes it."""
    import torch

    try:
        import torchvision
    except Exception as e:  # ImportError, or a RuntimeError/OSError from a torchvision built for another torch
        reason = "is not installed" if isinstance(e, ModuleNotFoundError) else f"does not load ({_short(e)})"
        raise DependencyError(f"DensePose needs torchvision matching torch {torch.__version__}, and it {reason}:"
                              f" {fix_command()}", kind="torchvision") from None
    if not hasattr(torch.ops.torchvision, "nms"):
        raise DependencyError(f"torchvision {torchvision.__version__} does not match torch {torch.__version__}"
                              f" (its nms op is missing): {fix_command()}", kind="torchvision")
    return torchvision


def _short(error: BaseException, limit: int = 160) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class LoadedModel:
    module: object  # torch.jit.ScriptModule
    path: Path
    sha256: str
    found_by: str
    load_s: float
    device: str | None = "cpu"  # where the module's tensors are now (None: unknown)
    failed_devices: dict = field(default_factory=dict)  # device -> why the export failed there


_cache: dict = {}
_cache_lock = threading.Lock()
_loads = [0]  # files loaded by this process: a warm worker's stays at 1 over many jobs


def load_count() -> int:
    return _loads[0]


def _key(path: Path) -> tuple:
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def load(located: store.Located, spec: store.ModelSpec = store.DENSEPOSE) -> LoadedModel:
    """The model file, loaded once per process (a changed file is loaded again)."""
    key = _key(located.path)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is None:
            cached = _load(located, spec)
            _cache.clear()  # a warm worker holds one DensePose model, not every version it saw
            _cache[key] = cached
        return cached


def _load(located: store.Located, spec: store.ModelSpec) -> LoadedModel:
    import torch

    started = time.perf_counter()
    import_torchvision()
    digest = store.sha256_of(located.path)
    if located.managed and digest != spec.sha256:
        raise InputError(f"the DensePose model {located.path} fails the SHA-256 check (got {digest[:16]}...):"
                         f" delete it, then {store.how_to_get(spec)}", kind="bad_model")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is "deprecated"; the export is TorchScript
            module = torch.jit.load(str(located.path), map_location="cpu")
    except Exception as e:
        raise InputError(f"{located.path} is not a TorchScript model ({_short(e)}); {store.how_to_get(spec)}",
                         kind="bad_model") from None
    module.eval()
    _loads[0] += 1
    return LoadedModel(module=module, path=located.path, sha256=digest, found_by=located.found_by,
                       load_s=time.perf_counter() - started)


def run(model: LoadedModel, image: np.ndarray, device: str = "cpu"):
    """The model on one CHW uint8 input: (its 5 outputs on the CPU, the device it ran on)."""
    if device != "cpu" and device not in model.failed_devices:
        try:
            return _forward(model, image, device), device
        except Exception as e:  # the export's own device bugs, a missing GPU: any error, then the CPU
            model.failed_devices[device] = _short(e)
            model.device = None  # possibly half moved: move it all back
    return _forward(model, image, "cpu"), "cpu"


def _forward(model: LoadedModel, image: np.ndarray, device: str):
    import torch

    if model.device != device:
        model.module.to(device)
        model.device = device
    with torch.inference_mode():
        outputs = model.module(torch.from_numpy(np.ascontiguousarray(image)).to(device))
    if not isinstance(outputs, (tuple, list)):
        return outputs  # extract's check_outputs says what is wrong
    return tuple(t.detach().float().cpu() if hasattr(t, "detach") else t for t in outputs)


def densepose(photo: np.ndarray, model_path=None, device: str = "cpu", progress=None):
    """A photo (uint8 H×W×3 RGB) -> (DensePoseResult at the photo's size, meta dict).

    model_path: the `--densepose-model` value (None: the environment, then the models folders).
    InputError(kind no_person) when nobody is found.
    """
    report = progress or (lambda stage, fraction: None)
    timings = {}
    started = time.perf_counter()
    located = store.locate(model_path)
    report("densepose", 0.05)
    model = load(located)
    timings["load_s"] = time.perf_counter() - started
    report("densepose", 0.4)
    t = time.perf_counter()
    image, frame = preprocess(photo)
    outputs, used = run(model, image, device)
    timings["model_s"] = time.perf_counter() - t
    report("densepose", 0.8)
    t = time.perf_counter()
    result = extract(outputs, frame)
    timings["extract_s"] = time.perf_counter() - t
    if not result.persons_found:
        raise InputError("DensePose found no person in the photo", kind="no_person")
    report("densepose", 1.0)
    return result, describe(result, model, used, device, frame, timings)


def densepose_file(photo_path, model_path=None, device: str = "cpu", max_pixels=None, progress=None):
    """densepose() on a photo file, read as every command reads photos (EXIF orientation, alpha over black)."""
    from ..imageio import DEFAULT_MAX_PIXELS, read_rgb, to_u8

    store.locate(model_path)  # "no model" before reading a large photo
    photo = read_rgb(photo_path, max_pixels=max_pixels or DEFAULT_MAX_PIXELS)
    result, meta = densepose(to_u8(photo), model_path, device=device, progress=progress)
    meta["photo"] = str(Path(photo_path).resolve())
    return result, meta, photo


def write_outputs(out_dir, result: DensePoseResult, meta: dict) -> dict:
    """What `humantex densepose` writes: IUV.png, INDS.png (DensePose's convention) and meta.json."""
    from ...version import __version__
    from ..files import write_json
    from .extract import write_files

    paths = write_files(out_dir, result)
    paths["meta"] = write_json(Path(out_dir) / "meta.json", {"version": __version__, "densepose": meta})
    return paths


def describe(result: DensePoseResult, model: LoadedModel, used: str, asked: str, frame, timings: dict) -> dict:
    """meta.json's DensePose section: which file, its hash and licence, where it ran, what it found."""
    spec = store.DENSEPOSE
    meta = {
        "model": str(model.path),
        "model_found_by": model.found_by,
        "model_sha256": model.sha256,
        "model_is_pinned_export": model.sha256 == spec.sha256,
        "licence": spec.licence,
        "credit": spec.credit,
        "device": used,
        "device_requested": asked,
        "input_size": list(frame.padded),
        "photo_size": list(frame.photo),
        "persons_found": result.persons_found,
        "persons": result.persons,
        "model_loads_in_process": load_count(),
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
    }
    if asked in model.failed_devices:
        meta["device_fallback"] = f"failed on {asked}, ran on the CPU: {model.failed_devices[asked]}"
    return meta
