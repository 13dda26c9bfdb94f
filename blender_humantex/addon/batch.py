"""Headless batch: a manifest of jobs, run one after another through the worker, the .blend saved.

    blender -b -c humantex_batch --blend scene.blend --manifest jobs.json   (installed extension)
    python -m blender_humantex.batch --blend scene.blend --manifest jobs.json      (the bpy module)

Manifest (paths relative to the manifest's folder):
    {"jobs": [{"object": "Body", "photo": "im.jpg", "iuv": "IUV.png", "inds": "INDS.png",
               "person": 1, "size": 1024, "iuv_order": "vui"},
              {"object": "Body", "source": "projection", "photo": "im.jpg", "mask": "mask.png", "size": 1024}]}
A "projection" job (older manifests: "camera") projects the photo through the scene's camera onto the
object's posed mesh; a job without "source" is the one its fields make ("densepose" is the old "iuv").
A bare list of jobs is accepted too. Resumable: `<manifest>.status.json` beside the manifest
(jobs.json -> jobs.status.json) records each job's outcome under a key made of the job, the .blend
it was applied to, and its input files' size and modification time, so a rerun on the same .blend
skips finished jobs, while another .blend, an edited job or a changed input file runs again. The .blend is saved after every successful job, before that job is marked
done, so a crash never leaves a "done" job whose material was not saved.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time

import bpy

from ..core.errors import InputError
from ..core.files import write_json
from ..core.request import DEFAULT_SIZE, SOURCES, source_name
from ..worker.protocol import GENERATE_FIELDS, PATH_FIELDS, GenerateRequest, RequestError
from .errors import USER_ERRORS
from .operators import GenerationTask, build_request
from .preferences import DEVICE_ITEMS, worker_settings
from .properties import SCENE_FIELDS

# A job is the object's name plus the fields of a worker request (less out_dir: the add-on's output
# folder, and the mesh and camera: the batch writes them from the scene, as the panel does), and
# optionally its "source" (a name in SOURCES, or an alias such as "camera"; default: what the fields make).
JOB_FIELDS = ("object", "source", *(name for name in GENERATE_FIELDS if name not in ("out_dir", *SCENE_FIELDS)))


def load_manifest(path: str) -> list[dict]:
    """The jobs of a manifest, checked for shape (not for file existence: that is per job)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise InputError(f"manifest not found: {path}", kind="missing_file") from None
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read manifest {path}: {e}", kind="bad_manifest") from None
    jobs = data.get("jobs") if isinstance(data, dict) else data
    if not isinstance(jobs, list) or not all(isinstance(job, dict) for job in jobs):
        raise InputError(f'{path}: expected {{"jobs": [{{"object": ..., "photo": ..., "iuv": ...}}, ...]}}', kind="bad_manifest")
    return jobs


def job_key(job: dict, blend: str, base_dir: str) -> str:
    """The status key: the job as written, the .blend it goes into, and what its inputs are now."""
    inputs = {}
    for key in PATH_FIELDS:
        if isinstance(job.get(key), str) and job[key]:
            path = os.path.normpath(os.path.join(base_dir, job[key]))
            try:
                stat = os.stat(path)
                inputs[key] = [path, stat.st_size, stat.st_mtime_ns]
            except OSError:
                inputs[key] = [path, None, None]
    identity = {"job": job, "blend": os.path.normcase(os.path.abspath(blend)), "inputs": inputs}
    return hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


def status_path(manifest: str) -> str:
    root, _ = os.path.splitext(manifest)
    return root + ".status.json"


def _read_status(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            status = json.load(f)
        return status if isinstance(status, dict) and isinstance(status.get("jobs"), dict) else {"jobs": {}}
    except (OSError, ValueError):
        return {"jobs": {}}


def job_request(job: dict, base_dir: str) -> tuple[str, GenerateRequest]:
    """A job as (its source, its worker request), paths absolute against the manifest folder. Checked
    here, before any job runs, as if the files the batch writes from the scene were there."""
    unknown = sorted(set(job) - set(JOB_FIELDS))
    if unknown:
        raise InputError(f"unknown job field(s) {', '.join(unknown)}; expected {', '.join(JOB_FIELDS)}", kind="bad_manifest")
    if not isinstance(job.get("object"), str) or not job["object"]:
        raise InputError("job needs an 'object' string", kind="bad_manifest")
    fields = {key: value for key, value in job.items() if key not in ("object", "source")}
    try:
        fields["size"] = int(job.get("size", DEFAULT_SIZE))
        if "person" in job:
            fields["person"] = int(job["person"])
    except (TypeError, ValueError):
        raise InputError(f"size and person must be integers, got {job.get('size')!r}, {job.get('person')!r}", kind="bad_manifest") from None
    try:
        source = source_name(job["source"]) if "source" in job else GenerateRequest(**fields).source
        stand_ins = {name: "-" for name in SCENE_FIELDS if name in SOURCES[source].required}
        request = GenerateRequest.from_fields(dict(fields, out_dir=base_dir, **stand_ins))
    except (RequestError, TypeError) as e:
        raise InputError(str(e), kind="bad_manifest") from None
    if request.source != source:
        raise InputError(f"a {source} job takes {SOURCES[source].label}; these fields make a {request.source} job",
                         kind="bad_manifest")
    request = dataclasses.replace(request, **dict.fromkeys(stand_ins), out_dir=None)
    return source, request.with_absolute_paths(base_dir)


def _check_save_as(save_as: str) -> None:
    """A --save-as Blender cannot write is a one-line error before any job runs."""
    folder = os.path.dirname(save_as) or "."
    if os.path.isdir(save_as):
        raise InputError(f"--save-as {save_as} is a folder: give a .blend file path", kind="bad_output")
    if not os.path.isdir(folder):
        raise InputError(f"--save-as: folder {folder} does not exist", kind="bad_output")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"--save-as: cannot write in folder {folder}", kind="bad_output")


def _save_blend(save_as: str | None) -> None:
    try:
        if save_as:
            bpy.ops.wm.save_as_mainfile(filepath=save_as)
        else:
            bpy.ops.wm.save_mainfile()
    except RuntimeError as e:  # Blender's report, e.g. a folder it may not write in
        target = save_as or bpy.data.filepath
        reason = " ".join(str(e).replace("Error:", " ").split())
        raise InputError(f"cannot save {target}: {reason}", kind="bad_output") from None


def run_batch(manifest: str, *, save_as: str | None = None, rerun: bool = False, log=print, **overrides) -> dict:
    """Run every unfinished job of `manifest`; returns {"done", "skipped", "failed", "jobs"}."""
    manifest = os.path.abspath(manifest)
    jobs = load_manifest(manifest)
    settings = worker_settings(bpy.context, **overrides)
    if save_as:
        save_as = os.path.abspath(save_as)
        _check_save_as(save_as)
        _save_blend(save_as)  # first, so that // output folders resolve next to it
    elif not bpy.data.filepath:
        raise InputError("the batch saves the .blend: open a saved one (--blend) or pass --save-as", kind="unsaved_blend")
    status_file = status_path(manifest)
    status = {"jobs": {}} if rerun else _read_status(status_file)
    summary = {"done": 0, "skipped": 0, "failed": 0, "jobs": []}

    blend = bpy.data.filepath
    for number, job in enumerate(jobs, 1):
        key = job_key(job, blend, os.path.dirname(manifest))
        label = f"[humantex-batch] {number}/{len(jobs)} {job.get('object', '?')}"
        previous = status["jobs"].get(key, {})
        if previous.get("status") == "done" and os.path.isfile(previous.get("final", "")):
            summary["skipped"] += 1
            summary["jobs"].append({**previous, "status": "skipped"})
            log(f"{label}: already done, skipped")
            continue
        started = time.perf_counter()
        record = {"object": job.get("object"), "index": number - 1, "blend": blend}
        try:
            source, wanted = job_request(job, os.path.dirname(manifest))
            obj = bpy.data.objects.get(job["object"])
            if obj is None:
                raise InputError(f"no object named {job['object']!r} in {os.path.basename(bpy.data.filepath)}", kind="bad_target")
            depsgraph = bpy.context.evaluated_depsgraph_get() if source == "projection" else None
            request, force_pack = build_request(obj, wanted, source, settings.output_dir, bpy.context.scene, depsgraph)
            task = GenerationTask(obj.name, request, settings, settings.pack_images or force_pack)
            result = task.run_blocking()
            material = task.apply()
            _save_blend(None)
            record.update(status="done", material=material.name, final=result["outputs"]["final"])
        except USER_ERRORS as e:
            record.update(status="error", kind=getattr(e, "kind", "error"), message=str(e))
        except Exception as e:  # a bug in one job must not stop the others; it is reported, not hidden
            record.update(status="error", kind="internal", message=f"{type(e).__name__}: {e}")
        record["seconds"] = round(time.perf_counter() - started, 3)
        record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        status["jobs"][key] = record
        write_json(status_file, status)
        summary["jobs"].append(record)
        if record["status"] == "done":
            summary["done"] += 1
            log(f"{label}: done in {record['seconds']:.1f} s -> {record['material']}")
        else:
            summary["failed"] += 1
            log(f"{label}: error ({record['kind']}): {record['message']}")

    log(f"[humantex-batch] {summary['done']} done, {summary['skipped']} skipped, {summary['failed']} failed")
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blender_humantex.batch", description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True, help="JSON manifest of jobs")
    parser.add_argument("--blend", help="open this .blend first (the bpy module starts with an empty scene)")
    parser.add_argument("--save-as", help="save the .blend here instead of over the opened file")
    parser.add_argument("--rerun", action="store_true", help="ignore the status file and run every job again")
    parser.add_argument("--python", help="worker interpreter (default: the add-on preference)")
    parser.add_argument("--device", choices=[d for d, _, _ in DEVICE_ITEMS])
    parser.add_argument("--weights-dir", help="weights folder (default: the bundled weights)")
    parser.add_argument("--output-dir", help="folder for the PNGs (default: //humantex/ next to the .blend)")
    parser.add_argument("--pack", action="store_true", default=None, help="pack the images into the .blend")
    return parser


def _script_argv() -> list[str]:
    # Inside the Blender binary our arguments follow "--"; with the bpy module, sys.argv is ours.
    return sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]


def main(argv=None) -> int:
    """0: every job done or skipped; 1: some job failed; 2: the batch could not start.

    argv None: the script's arguments (after "--" in the Blender binary); a list: these (the
    `-c humantex_batch` command passes its own, and Blender exits with the returned code)."""
    args = build_parser().parse_args(_script_argv() if argv is None else argv)
    try:
        if args.blend:
            if not os.path.isfile(args.blend):
                raise InputError(f".blend not found: {args.blend}", kind="missing_file")
            bpy.ops.wm.open_mainfile(filepath=os.path.abspath(args.blend))
        summary = run_batch(
            args.manifest,
            save_as=args.save_as,
            rerun=args.rerun,
            python=args.python,
            device=args.device,
            weights_dir=args.weights_dir,
            output_dir=args.output_dir,
            pack_images=args.pack,
        )
    except USER_ERRORS as e:
        print(f"humantex-batch: error: {e}", file=sys.stderr)
        code = 2
    else:
        code = 1 if summary["failed"] else 0
    if argv is None and bpy.app.binary_path and code:
        # Under --python-expr a return value is ignored; make `blender -b` exit non-zero.
        sys.exit(code)
    return code
