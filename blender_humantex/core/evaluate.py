"""`humantex evaluate`: the paper's Table 1 (plus a classical row) on procedural and real-texture sets.

Rows:
- telea             OpenCV Telea inpainting (radius 3) of every unseen texel (core.baselines.telea_fill);
- classical         mirror fill + OpenCV Telea inpainting (core.baselines.classical_fill), no learning;
- Lazova-style CNN  the direct-prediction baseline (Pipeline method "lazova");
- ours sampled      T_sample, ours refinement T_refine, ours full T_final (Pipeline method "full").
The learned rows run through the public inference API (`Pipeline.complete_batch`), exactly as
`humantex complete` does.

Sets:
- procedural: the first N items of the procedural *test* split (texture seeds disjoint from training);
- dev: ../shared/data/dev_textures (complete SMPL-UV textures, never trained on), each masked with
  the real DensePose visibilities 3, 6, 10 and 11 (core.data.dev_eval_set; training never uses them);
- validation: the 14 held-out train_textures (core.data.datasets.validation_eval_set): the set tuned on;
- validation_photometric: the same cases with photo-like partials (shading, white balance, blur, JPEG,
  noise, occluders: core.data.photometric), for robustness to real photos.

Metrics (core.metrics): LPIPS (alex, v0.1), PSNR and SSIM at 256² (the paper's; `size` 512 for the
resolution artists use: the textures, masks and outputs all at that size), over the texels inside the SMPL
UV chart mask (seen and unseen texels alike, as in the paper's whole-texture comparison). Writes
`results.md` (the tables), `results.json` (per-sample numbers) and `figure.png` (Fig. 1 style:
input partial, each method, ground truth), plus `figure_<set>.png` for each set.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .errors import InputError

EVAL_SIZE = 256
ROWS = (
    ("telea", "Classical: Telea inpainting"),
    ("classical", "Classical: mirror + Telea"),
    ("lazova", "Lazova-style CNN"),
    ("sampled", "Ours sampled (T_sample)"),
    ("refinement", "Ours refinement (T_refine)"),
    ("full", "Ours full (T_final)"),
)
METRICS = (("lpips", "LPIPS ↓"), ("psnr", "PSNR ↑"), ("ssim", "SSIM ↑"))


def default_dev_dir() -> Path:
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dev_textures"


def procedural_set(n: int, seed: int = 0, size: int = EVAL_SIZE) -> list[dict]:
    """The first n items of the procedural test split, as dicts of numpy arrays (like dev_eval_set)."""
    from .data import ProceduralTextureDataset

    dataset = ProceduralTextureDataset(split="test", size=size, length=n, seed=seed)
    samples = []
    for i in range(n):
        target, visibility = dataset.numpy_item(i)
        visibility = visibility.astype(np.float32)
        samples.append({"name": f"procedural_test_{i:04d}", "target": target,
                        "partial": target * visibility[..., None], "visibility": visibility})
    return samples


def predict(samples: list[dict], pipeline, size: int = EVAL_SIZE) -> dict[str, list[np.ndarray]]:
    """Every row's output texture for every sample (H×W×3 float in [0, 1] at `size`)."""
    from .baselines import classical_fill, telea_fill

    partials = [s["partial"] for s in samples]
    visibilities = [s["visibility"] for s in samples]
    full = pipeline.complete_batch(partials, visibilities, size=size, method="full")
    lazova = pipeline.complete_batch(partials, visibilities, size=size, method="lazova")
    return {
        "telea": [telea_fill(p, v) for p, v in zip(partials, visibilities, strict=True)],
        "classical": [classical_fill(p, v) for p, v in zip(partials, visibilities, strict=True)],
        "lazova": [r.final for r in lazova],
        "sampled": [r.sample for r in full],
        "refinement": [r.refine for r in full],
        "full": [r.final for r in full],
        "blend_mask": [r.mask for r in full],
    }


def score(samples, outputs, chart_mask, backbone_file=None) -> dict:
    """{row: {"mean": {metric: value}, "per_sample": [{metric: value}]}}."""
    from .metrics import all_metrics

    table = {}
    for row, _ in ROWS:
        per_sample = [all_metrics(pred, s["target"], chart_mask, backbone_file=backbone_file)
                      for pred, s in zip(outputs[row], samples, strict=True)]
        mean = {m: float(np.mean([r[m] for r in per_sample])) for m, _ in METRICS}
        table[row] = {"mean": mean, "per_sample": per_sample}
    return table


def markdown_table(table: dict, title: str, n: int, size: int = EVAL_SIZE) -> str:
    lines = [f"### {title} ({n} textures, {size}², inside the SMPL UV mask)", "",
             "| method | " + " | ".join(label for _, label in METRICS) + " |",
             "|---|" + "---:|" * len(METRICS)]
    best = {m: (min if m == "lpips" else max)(table[r]["mean"][m] for r, _ in ROWS) for m, _ in METRICS}
    for row, label in ROWS:
        cells = []
        for m, _ in METRICS:
            value = table[row]["mean"][m]
            text = f"{value:.4f}" if m != "psnr" else f"{value:.2f}"
            cells.append(f"**{text}**" if value == best[m] else text)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(samples, outputs, chart_mask, n_rows: int = 3) -> np.ndarray:
    """Fig.-1-style grid: one row per sample; columns partial | each method | ground truth, with labels.

    Shown inside the UV chart mask only (black outside), the region the metrics score.
    """
    import cv2

    columns = [("input partial", lambda i: samples[i]["partial"])]
    columns += [(label.split(" (")[0], lambda i, r=row: outputs[r][i]) for row, label in ROWS]
    columns += [("ground truth", lambda i: samples[i]["target"])]
    header_h, s = 22, chart_mask.shape[0]
    header = np.ones((header_h, s * len(columns), 3), np.float32)
    for c, (label, _) in enumerate(columns):
        cv2.putText(header, label, (c * s + 4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    rows = [np.concatenate([np.clip(get(i), 0, 1) * chart_mask[..., None] for _, get in columns], axis=1)
            for i in range(min(n_rows, len(samples)))]
    return np.concatenate([header, *rows], axis=0)


def _eval_sets(size, dev_dir, procedural, masks_per_texture, seed, validation, photometric) -> list:
    """The sets evaluate() scores, as (key, title, samples), in report order."""
    from .data import dev_eval_set
    from .data.datasets import validation_eval_set
    from .data.visibility import DEV_PROTOCOL_MASKS

    sets = []
    if procedural > 0:
        sets.append(("procedural", "Procedural test split", procedural_set(procedural, seed, size)))
    if validation:
        sets.append(("validation", "Validation split (14 train_textures held out; 2 real masks + 1 side/back view each)",
                     validation_eval_set(size)))
    if photometric:
        sets.append(("validation_photometric", "Validation split, photo-like partials (core.data.photometric)",
                     validation_eval_set(size, photometric=True)))
    if dev_dir:
        protocol = None if masks_per_texture > 0 else DEV_PROTOCOL_MASKS
        what = (f"real masks {', '.join(map(str, protocol))}" if protocol else
                f"{masks_per_texture} real DensePose masks each")
        sets.append(("dev", f"Dev textures ({Path(dev_dir).name}), {what}",
                     dev_eval_set(dev_dir, size=size, masks_per_texture=masks_per_texture or 3,
                                  masks=protocol)))
    return sets


def evaluate(out_dir, weights_dir=None, dev_dir=None, procedural: int = 0, masks_per_texture: int = 0,
             seed: int = 0, device: str = "auto", backbone_file=None, figure_rows: int = 3,
             validation: bool = False, size: int = EVAL_SIZE, photometric: bool = False) -> dict:
    """Run every row on the chosen sets at `size`², write results.md / results.json / figures, return the tables.

    The dev set is the fixed protocol (every dev texture with the real masks DEV_PROTOCOL_MASKS) unless
    `masks_per_texture` > 0 asks for the older rotation of masks."""
    from .files import write_json, write_text
    from .imageio import write_png
    from .pipeline import Pipeline
    from .uv_layout import get_layout

    if not dev_dir and procedural <= 0 and not validation and not photometric:
        raise InputError("nothing to evaluate: give --dev-dir DIR, --validation, --photometric and/or --procedural N",
                         kind="bad_argument")
    out_dir = Path(out_dir)
    pipeline = Pipeline(weights_dir=weights_dir, device=device)
    pipeline.load("full")
    pipeline.load("lazova")
    chart_mask = get_layout(size).chart_mask
    sets = _eval_sets(size, dev_dir, procedural, masks_per_texture, seed, validation, photometric)
    report = {"weights": pipeline.weights_info(), "size": size, "sets": {}}
    markdown = ["# Evaluation (humantex evaluate)", ""]
    first_figure = None
    for key, title, samples in sets:
        started = time.perf_counter()
        outputs = predict(samples, pipeline, size)
        table = score(samples, outputs, chart_mask, backbone_file)
        report["sets"][key] = {
            "title": title,
            "n": len(samples),
            "names": [s["name"] for s in samples],
            "seconds": round(time.perf_counter() - started, 1),
            "rows": table,
        }
        markdown.append(markdown_table(table, title, len(samples), size))
        grid = figure(samples, outputs, chart_mask, figure_rows)
        write_png(out_dir / f"figure_{key}.png", grid)
        first_figure = grid if key == "dev" or first_figure is None else first_figure
    write_png(out_dir / "figure.png", first_figure)
    write_text(out_dir / "results.md", "\n".join(markdown))
    write_json(out_dir / "results.json", report)
    return report
