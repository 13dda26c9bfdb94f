"""The generate job: input files -> every layer -> files (layer PNGs, meta.json, sheet.png).

One entry point per input kind, all writing the same files:

    report = from_photo(pipeline, photo="im.jpg", iuv="IUV.png", out_dir="out/")        # unwrapped here
    report = from_partial(pipeline, partial="p.png", visibility="v.png", out_dir="out/")
    report = from_projection(pipeline, photo="im.jpg", mesh="body.npz", camera="camera.json", out_dir="out/")

`generate(pipeline, **fields)` picks the entry point from a generate request's fields (the worker's).

Progress stages, in order (the classical fill, for a UV map that is not SMPL's, replaces sample/refine):

    load       unwrap                          sample             refine                    write
    weights -> photo + IUV          (unwrap)  -> SamplerNet:    -> RefinerNet:           -> final.png ...
               photo + mesh + camera (project)   T_sample          T_refine, M              sheet.png
               partial + visibility  (read)                        T_final = T_sample*M     meta.json
               -> partial, visibility                                      + T_refine*(1-M)

`progress` may raise CancelledError to stop; nothing is written before the write stage. The report is plain data:
{"outputs": {name: absolute path}, "timings": {stage: s}, "meta": meta.json's content}.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import numpy as np

from ..version import __version__
from .errors import HumantexError, InputError
from .files import write_json
from .imageio import to_u8
from .layers import LAYERS
from .pipeline import VISIBLE_EPS, Layers, Pipeline, check_method, check_size
from .uv_layout import LAYOUT_ID

OUTPUT_FILES = {layer.name: layer.file for layer in LAYERS} | {"meta": "meta.json", "sheet": "sheet.png"}
DEFAULT_SIZE = 1024
# The least coverage (seen texels / texels of the UV charts) a texture is completed from. Below it
# almost all of the texture would be invented (an 8×8 photo gives 1 texel): refuse, don't pretend.
# The real photos in ../shared/data cover 5-40%; a 468-pixel person in a crowd covers 0.5%.
MIN_COVERAGE = 0.01
LAZOVA_NOTE = "baseline (Lazova et al. 2019 style): final = refine = direct prediction, mask = 0, sample = partial"


def from_photo(
    pipeline: Pipeline,
    *,
    out_dir,
    photo,
    iuv,
    inds=None,
    person=None,
    iuv_order=None,
    size=DEFAULT_SIZE,
    method="full",
    progress=None,
    max_pixels=None,
    unwrap_options=None,
    min_coverage=None,
) -> dict:
    """Photo + DensePose IUV (and INDS) -> all layers in out_dir.

    The photo is unwrapped at the output size, so T_sample carries as much photo detail as it can.
    `unwrap_options` are extra keyword arguments for core.unwrap.unwrap_files (on_size_mismatch, erode_px).
    """
    job = _Job(pipeline, out_dir, size, method, progress)
    with job.stage("unwrap"):
        unwrapped = _unwrap(photo, iuv, inds, person, iuv_order, job.size or DEFAULT_SIZE, max_pixels,
                            unwrap_options, job.report)
    job.coverage = check_coverage(unwrapped.meta["coverage"], min_coverage)
    extra = {} if person is None else {"person": person}
    if unwrapped.meta:
        extra["unwrap"] = _plain(unwrapped.meta)
    # The photo as the unwrap read it, for the contact sheet: 8-bit, a quarter of the float copy.
    photo_u8 = to_u8(unwrapped.photo)
    unwrapped.photo = None
    return job.complete_and_write(unwrapped.partial, unwrapped.visibility, inputs={"photo": photo, "iuv": iuv, "inds": inds},
                                  extra_meta=extra, photo=photo_u8)


def from_partial(
    pipeline: Pipeline,
    *,
    out_dir,
    partial,
    visibility,
    size=DEFAULT_SIZE,
    method="full",
    progress=None,
    max_pixels=None,
    min_coverage=None,
) -> dict:
    """A partial texture PNG and its visibility mask PNG -> all layers in out_dir (size None: the input's)."""
    from .imageio import DEFAULT_MAX_PIXELS, read_gray, read_rgb

    job = _Job(pipeline, out_dir, size, method, progress)
    with job.stage("unwrap"):
        limit = max_pixels or DEFAULT_MAX_PIXELS
        partial_texture = read_rgb(partial, max_pixels=limit, exif_transpose=False)
        vis = read_gray(visibility, max_pixels=limit)
    if (vis.ndim == 2 and vis.shape[0] == vis.shape[1] and partial_texture.shape[:2] == vis.shape
            and (vis > 0).any() and not (vis == vis.max()).all()):
        # (other shapes, and empty or full masks, get check_inputs' own messages in complete_and_write)
        job.coverage = check_coverage(coverage_of(vis), min_coverage)
    return job.complete_and_write(partial_texture, vis, inputs={"partial": partial, "visibility": visibility})


def from_projection(
    pipeline: Pipeline,
    *,
    out_dir,
    photo,
    mesh,
    camera,
    mask=None,
    size=DEFAULT_SIZE,
    method="full",
    progress=None,
    max_pixels=None,
    projection_options=None,
    min_coverage=None,
) -> dict:
    """Photo + posed mesh + camera (camera projection, no DensePose) -> all layers in out_dir.

    The photo is projected at the output size. A UV map that is not SMPL's never reaches the networks
    (they only know the layout they were trained on): its unseen texels get the classical fill inside
    the map's own charts, and meta.json says so. `projection_options` are extra keyword arguments for
    core.projection.project_files (y_up, erode_px, max_angle_deg).
    """
    from .projection import project_files

    job = _Job(pipeline, out_dir, size, method, progress)
    with job.stage("unwrap"):
        def project_progress(stage, fraction):
            # the projection's file loading and projecting are both this job's "unwrap" stage
            job.report("unwrap", 0.1 * fraction if stage == "load" else 0.1 + 0.9 * fraction)

        projected = project_files(mesh, camera, photo, mask_path=mask, size=job.size or DEFAULT_SIZE,
                                  max_pixels=max_pixels, progress=project_progress, **dict(projection_options or {}))
    job.coverage = check_coverage(projected.meta["coverage"], min_coverage)
    inputs = {"photo": photo, "mesh": mesh, "camera": camera, "mask": mask}
    extra = {"projection": _plain(projected.meta)}
    photo_u8 = to_u8(projected.photo)  # as the projection read it, for the contact sheet
    projected.photo = None
    if projected.chart_mask is None:  # SMPL's layout: the networks complete it
        return job.complete_and_write(projected.partial, projected.visibility, inputs=inputs, extra_meta=extra,
                                      photo=photo_u8)
    return job.fill_and_write(projected.partial, projected.visibility, projected.chart_mask, inputs=inputs,
                              extra_meta=extra, photo=photo_u8)


def check_coverage(coverage: float, minimum: float | None = None) -> float:
    """coverage, or InputError if the photo shows too little of the body to complete a texture from."""
    minimum = MIN_COVERAGE if minimum is None else minimum
    if coverage < minimum:
        raise InputError(
            f"the photo shows too little of the body: {100 * coverage:.2g}% of the texture is visible, the minimum is"
            f" {minimum:.0%}; a texture completed from so little would be almost all made up. Use a photo where the"
            " person is larger or less hidden (the CLI's --min-coverage changes the minimum)",
            kind="low_coverage",
        )
    return coverage


def coverage_of(visibility) -> float:
    """Seen texels / texels of the SMPL UV charts, for a visibility mask in the SMPL layout."""
    from .uv_layout import get_layout

    vis = np.asarray(visibility)
    charts = get_layout(int(vis.shape[0])).chart_mask
    return float(((vis > VISIBLE_EPS) & charts).sum() / max(int(charts.sum()), 1))


def classical_layers(partial_texture, visibility, chart_mask) -> Layers:
    """The layers of a texture the networks must not complete (a UV map that is not SMPL's): the
    classical fill inside the mesh's own UV charts, reported through the blend equation with M = 1
    (final = sample = the fill, refine = the fill)."""
    from .baselines import chart_fill

    vis = np.asarray(visibility, dtype=np.float32)
    filled = chart_fill(partial_texture, vis, chart_mask)
    partial = np.asarray(partial_texture, dtype=np.float32) * (vis[..., None] > VISIBLE_EPS)
    return Layers(final=filled, sample=filled, refine=filled, mask=np.ones_like(vis), partial=partial, visibility=vis)


CLASSICAL_NOTE = ("the mesh's UV map is not the SMPL layout the networks were trained on: the unseen texels were"
                  " filled by the classical fill (inpainting inside the mesh's UV charts); final = sample = refine ="
                  " that fill, mask = 1")


def generate(
    pipeline: Pipeline, *, out_dir, photo=None, iuv=None, inds=None, person=None, iuv_order=None, partial=None,
    visibility=None, mesh=None, camera=None, mask=None, size=DEFAULT_SIZE, method="full", progress=None,
    max_pixels=None, unwrap_options=None, projection_options=None, min_coverage=None,
) -> dict:
    """A generate request's fields -> the entry point for its input kind (photo + iuv, partial +
    visibility, or photo + mesh + camera)."""
    common = {"out_dir": out_dir, "size": size, "method": method, "progress": progress, "max_pixels": max_pixels,
              "min_coverage": min_coverage}
    photo_given = photo is not None or iuv is not None
    partial_given = partial is not None or visibility is not None
    projection_given = mesh is not None or camera is not None or mask is not None or projection_options is not None
    if projection_given:
        dp_options = (iuv, inds, person, iuv_order, unwrap_options)
        if photo is None or mesh is None or camera is None or partial_given or any(o is not None for o in dp_options):
            raise InputError("camera projection needs photo + mesh + camera (and no iuv or partial)",
                             kind="missing_input")
        return from_projection(pipeline, photo=photo, mesh=mesh, camera=camera, mask=mask,
                               projection_options=projection_options, **common)
    if photo is not None and iuv is not None and not partial_given:
        return from_photo(pipeline, photo=photo, iuv=iuv, inds=inds, person=person, iuv_order=iuv_order,
                          unwrap_options=unwrap_options, **common)
    photo_options = (inds, person, iuv_order, unwrap_options)
    if partial is not None and visibility is not None and not photo_given and all(o is None for o in photo_options):
        return from_partial(pipeline, partial=partial, visibility=visibility, **common)
    raise InputError("generate needs either photo + iuv, photo + mesh + camera, or partial + visibility",
                     kind="missing_input")


class _Job:
    """What every entry point shares: the checks, the load stage, the stage clock and the write."""

    def __init__(self, pipeline: Pipeline, out_dir, size, method, progress):
        self.pipeline = pipeline
        self.report = progress or (lambda stage, fraction: None)
        self.size = check_size(size) if size is not None else None
        self.method = check_method(method)
        self.out_dir = Path(out_dir)
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise InputError(f"output path {self.out_dir} exists and is not a folder", kind="bad_output")
        self.timings: dict[str, float] = {}
        self.coverage: float | None = None  # seen texels / UV chart texels, checked before completing
        with self.stage("load"):
            pipeline.load(method)

    @contextlib.contextmanager
    def stage(self, name: str):
        started = time.perf_counter()
        self.report(name, 0.0)
        yield
        self.report(name, 1.0)
        self.timings[name] = time.perf_counter() - started

    def complete_and_write(self, partial_texture, visibility, *, inputs: dict, extra_meta=None, photo=None) -> dict:
        """Run the networks (stages sample, refine), then write every file (stage write)."""
        results, run_timings = self.pipeline.run(
            [partial_texture], [visibility], size=self.size, method=self.method, progress=self.report
        )
        self.timings.update(run_timings)
        how = {"method": self.method, "device": self.pipeline.device, "uv_layout": LAYOUT_ID,
               "weights": self.pipeline.weights_meta(self.method)}
        if self.method == "lazova":
            how["note"] = LAZOVA_NOTE
        return self.write(results[0], partial_texture, inputs=inputs, meta=how | (extra_meta or {}), photo=photo)

    def fill_and_write(self, partial_texture, visibility, chart_mask, *, inputs: dict, extra_meta=None,
                       photo=None) -> dict:
        """No networks: the classical fill in the texture's own UV charts (stages sample, refine), then write."""
        with self.stage("sample"):
            layers = classical_layers(partial_texture, visibility, chart_mask)
        self.report("refine", 1.0)
        how = {"method": "classical", "device": "cpu", "uv_layout": "mesh", "weights": {}}
        return self.write(layers, partial_texture, inputs=inputs, meta=how | (extra_meta or {}) | {"note": CLASSICAL_NOTE},
                          photo=photo)

    def write(self, layers: Layers, partial_texture, *, inputs: dict, meta: dict, photo=None) -> dict:
        """Every layer's PNG, sheet.png and meta.json (stage write); the job's report, as plain data."""
        started = time.perf_counter()
        self.report("write", 0.0)
        meta = {
            "version": __version__,
            "size": layers.final.shape[0],
            "input_size": int(np.asarray(partial_texture).shape[0]),
            "inputs": {k: str(Path(v).resolve()) for k, v in inputs.items() if v is not None},
            "visible_fraction": float((layers.visibility > VISIBLE_EPS).mean()),
            **({} if self.coverage is None else {"coverage": round(self.coverage, 6)}),
            **meta,
        }
        outputs = self._write(layers, meta, photo, started)
        self.report("write", 1.0)
        return {"outputs": {k: str(Path(v).resolve()) for k, v in outputs.items()}, "timings": meta["timings"],
                "meta": meta}

    def _write(self, layers: Layers, meta: dict, photo, started: float) -> dict:
        from . import imageio
        from .sheet import contact_sheet

        outputs = {}
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            # every PNG in parallel threads (the sheet made in its own); progress as each one lands
            images = {layer.name: getattr(layers, layer.name) for layer in LAYERS}
            images["sheet"] = lambda: contact_sheet(layers, photo=photo)
            files = {name: self.out_dir / OUTPUT_FILES[name] for name in images}
            written = []

            def done(path):
                written.append(path)
                self.report("write", len(written) / (len(images) + 1))

            paths = imageio.write_pngs({files[name]: image for name, image in images.items()}, done=done)
            outputs = {name: paths[files[name]] for name in images}
            self.timings["write"] = time.perf_counter() - started
            meta["timings"] = {k: round(v, 4) for k, v in self.timings.items()}
            outputs["meta"] = write_json(self.out_dir / OUTPUT_FILES["meta"], meta)
        except OSError as e:
            raise HumantexError(f"cannot write to output folder {self.out_dir}: {e.strerror or e}",
                                kind="bad_output") from None
        return outputs


def _unwrap(photo, iuv, inds, person, iuv_order, size, max_pixels, options, report):
    from .unwrap import unwrap_files, working_size

    kwargs = dict(options or {})
    if iuv_order is not None:
        kwargs["iuv_order"] = iuv_order
    if max_pixels is not None:
        kwargs["max_pixels"] = max_pixels

    def unwrap_progress(stage, fraction):
        # unwrap_files reports its own file loading as "load"; here that is part of the unwrap stage.
        report("unwrap", 0.1 * fraction if stage == "load" else 0.1 + 0.9 * fraction)

    return unwrap_files(photo, iuv, inds_path=inds, person=person, size=working_size(size), progress=unwrap_progress,
                        **kwargs)


def _plain(value):
    """JSON-safe copy of unwrap metadata (numpy scalars and arrays become Python values)."""
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
