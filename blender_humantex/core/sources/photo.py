"""The `photo` source: a photo alone. DensePose runs in this process (core/densepose: the model found
by the request's densepose_model, HUMANTEX_DENSEPOSE_MODEL, the worker's models folder or the user's
cache), then the `iuv` source's unwrap reads its IUV and INDS exactly as it reads DensePose's files.

Progress: DensePose is the first DENSEPOSE_SHARE of the job's unwrap stage (it loads the model once
per process; a warm worker keeps it), the unwrap the rest. meta.json gets a "densepose" section: the
model file, its SHA-256, licence, the device it ran on, timings, the persons found.
"""

from __future__ import annotations

import dataclasses

from ..densepose.model import densepose_file
from ..files import to_plain
from .iuv import DEFAULT_ERODE_PX, unwrap, working_size
from .partial import PartialTexture

DENSEPOSE_SHARE = 0.5  # of the unwrap stage's progress


def read(request, size, progress=None, device: str = "cpu", erode_px: int | None = DEFAULT_ERODE_PX) -> PartialTexture:
    """The `photo` source: the photo, DensePose on it, then the unwrap at the working size for `size`."""
    report = progress or (lambda stage, fraction: None)
    result, densepose_meta, photo = densepose_file(
        request.photo, request.densepose_model, device=device, max_pixels=request.max_pixels,
        progress=lambda stage, fraction: report("densepose", DENSEPOSE_SHARE * fraction))
    texture = unwrap(photo, result.iuv, inds=result.inds, person=request.person, size=working_size(size),
                     erode_px=erode_px,
                     progress=lambda stage, fraction: report("unwrap", DENSEPOSE_SHARE + (1 - DENSEPOSE_SHARE) * fraction))
    meta = dict(texture.meta, photo=str(request.photo), iuv="DensePose in this process", iuv_order="vui")
    job_meta = {} if request.person is None else {"person": request.person}
    job_meta.update(densepose=to_plain(densepose_meta), unwrap=to_plain(meta))
    return dataclasses.replace(texture, meta=meta, photo=photo, job_meta=job_meta)
