"""The generate job: input files -> every layer -> files (layer PNGs, meta.json, sheet.png).

    request = GenerateRequest.from_fields({"photo": "im.jpg", "iuv": "IUV.png", "out_dir": "out/"})
    report = generate(pipeline, request)     # the request's source (core/request.py's SOURCES) reads it

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
import dataclasses
import time
from pathlib import Path

import numpy as np

from ..version import __version__
from .errors import HumantexError, InputError
from .files import write_json
from .imageio import to_u8
from .layers import LAYERS
from .pipeline import VISIBLE_EPS, Layers, Pipeline
from .request import DEFAULT_SIZE, SOURCES, GenerateRequest
from .uv_layout import LAYOUT_ID

OUTPUT_FILES = {layer.name: layer.file for layer in LAYERS} | {"meta": "meta.json", "sheet": "sheet.png"}
# The least coverage (seen texels / texels of the UV charts) a texture is completed from. Below it
# almost all of the texture would be invented (an 8×8 photo gives 1 texel): refuse, don't pretend.
# The real photos in ../shared/data cover 5-40%; a 468-pixel person in a crowd covers 0.5%.
MIN_COVERAGE = 0.01
LAZOVA_NOTE = "baseline (Lazova et al. 2019 style): final = refine = direct prediction, mask = 0, sample = partial"


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


def generate(pipeline: Pipeline, request: GenerateRequest, *, progress=None, options=None,
             min_coverage=None) -> dict:
    """A checked request -> every layer in request.out_dir. Its source's reader makes the partial
    texture (stage unwrap) at the output size, so T_sample carries as much photo detail as it can;
    `options` are reader options outside the request (the CLI's flags, see Source.options)."""
    source = SOURCES[request.source]
    job = _Job(pipeline, request.out_dir, request.output_size, request.method or "full", progress)
    with job.stage("unwrap"):
        def read_progress(stage, fraction):
            # a reader's own file loading ("load") and its work are both this job's "unwrap" stage
            job.report("unwrap", 0.1 * fraction if stage == "load" else 0.1 + 0.9 * fraction)

        texture = source.read(request, size=job.size or DEFAULT_SIZE, progress=read_progress, **dict(options or {}))
    if texture.coverage is not None:
        job.coverage = check_coverage(texture.coverage, min_coverage)
    # the photo as the source read it, for the contact sheet: 8-bit, a quarter of the float copy
    photo_u8 = None if texture.photo is None else to_u8(texture.photo)
    texture = dataclasses.replace(texture, photo=None)
    inputs = request.inputs()
    if texture.chart_mask is None:  # SMPL's layout: the networks complete it
        return job.complete_and_write(texture.partial, texture.visibility, inputs=inputs, extra_meta=texture.job_meta,
                                      photo=photo_u8)
    return job.fill_and_write(texture.partial, texture.visibility, texture.chart_mask, inputs=inputs,
                              extra_meta=texture.job_meta, photo=photo_u8)


class _Job:
    """What every entry point shares: the checks, the load stage, the stage clock and the write."""

    def __init__(self, pipeline: Pipeline, out_dir, size, method, progress):
        self.pipeline = pipeline
        self.report = progress or (lambda stage, fraction: None)
        self.size = size  # checked by the request; None: the input's own size
        self.method = method  # checked by the request
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
            for k, layer in enumerate(LAYERS):
                outputs[layer.name] = imageio.write_png(self.out_dir / layer.file, getattr(layers, layer.name))
                self.report("write", (k + 1) / (len(LAYERS) + 2))
            sheet = contact_sheet(layers, photo=photo)
            outputs["sheet"] = imageio.write_png(self.out_dir / OUTPUT_FILES["sheet"], sheet)
            self.timings["write"] = time.perf_counter() - started
            meta["timings"] = {k: round(v, 4) for k, v in self.timings.items()}
            outputs["meta"] = write_json(self.out_dir / OUTPUT_FILES["meta"], meta)
        except OSError as e:
            raise HumantexError(f"cannot write to output folder {self.out_dir}: {e.strerror or e}",
                                kind="bad_output") from None
        return outputs
