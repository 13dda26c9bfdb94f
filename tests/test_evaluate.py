"""`humantex evaluate` on a tiny set: every row scored, tables and figures written.

The networks here have small RANDOM weights made on the fly (so the numbers are meaningless); the
test checks the harness: real procedural and dev textures, real visibilities, the public pipeline.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from blender_humantex.cli import main
from blender_humantex.core import evaluate as ev
from blender_humantex.core.errors import InputError
from blender_humantex.core.imageio import read_rgb


def test_evaluate_writes_tables_and_figure(random_weights, shared_data, tmp_path, capsys):
    out = tmp_path / "eval"
    rc = main(["evaluate", "--weights", str(random_weights), "--procedural", "2",
               "--dev-dir", str(shared_data / "dev_textures"), "--masks-per-texture", "1",
               "--out", str(out), "--device", "cpu"])
    assert rc == 0
    printed = capsys.readouterr().out
    md = (out / "results.md").read_text()
    assert printed.strip() == md.strip()
    for _, label in ev.ROWS:
        assert md.count(f"| {label} |") == 2  # one row per set
    report = json.loads((out / "results.json").read_text())
    assert report["sets"]["procedural"]["n"] == 2 and report["sets"]["dev"]["n"] == 4
    for table in report["sets"].values():
        rows = table["rows"]
        for row, _ in ev.ROWS:
            mean = rows[row]["mean"]
            assert 0 < mean["lpips"] < 1 and 5 < mean["psnr"] < 60 and -1 < mean["ssim"] <= 1, row
        # the blend equation, seen through the metrics: full lies between its two inputs or on them
        assert rows["full"]["mean"]["psnr"] >= min(rows["sampled"]["mean"]["psnr"],
                                                    rows["refinement"]["mean"]["psnr"]) - 1.0
    fig = read_rgb(out / "figure.png")
    assert fig.shape == (22 + 3 * ev.EVAL_SIZE, (len(ev.ROWS) + 2) * ev.EVAL_SIZE, 3)  # partial, rows, ground truth
    assert (out / "figure_procedural.png").is_file() and (out / "figure_dev.png").is_file()


def test_evaluate_at_512_and_on_photo_like_partials(random_weights, shared_data, tmp_path):
    """--size 512 makes and scores the sets at 512²; --photometric adds the validation split with
    photo-like partials (the same cases, degraded, seeded: twice the same numbers)."""
    out = tmp_path / "eval"
    assert main(["evaluate", "--weights", str(random_weights), "--dev-dir", str(shared_data / "dev_textures"),
                 "--masks-per-texture", "1", "--size", "512", "--out", str(out), "--device", "cpu"]) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["size"] == 512 and "512²" in (out / "results.md").read_text()
    assert read_rgb(out / "figure.png").shape[1] == (len(ev.ROWS) + 2) * 512
    assert main(["evaluate", "--out", str(tmp_path), "--weights", str(random_weights), "--validation", "--size", "8"]) == 2
    from blender_humantex.core.data.datasets import validation_eval_set

    clean, degraded = validation_eval_set(64), validation_eval_set(64, photometric=True)
    again = validation_eval_set(64, photometric=True)
    assert [s["name"] + "__photometric" for s in clean] == [s["name"] for s in degraded]
    changed = 0
    for c, d, a in zip(clean, degraded, again, strict=True):
        assert np.array_equal(c["visibility"], d["visibility"]) and np.array_equal(d["partial"], a["partial"])
        changed += not np.array_equal(c["partial"], d["partial"])
        assert not d["partial"][d["visibility"] < 0.5].any()
    assert changed >= 0.9 * len(clean)


def test_scores_match_the_metrics_module(random_weights, shared_data):
    from blender_humantex.core.metrics import all_metrics
    from blender_humantex.core.pipeline import Pipeline
    from blender_humantex.core.uv_layout import get_layout

    samples = ev.procedural_set(1, seed=3)
    outputs = ev.predict(samples, Pipeline(random_weights, device="cpu"))
    chart = get_layout(ev.EVAL_SIZE).chart_mask
    table = ev.score(samples, outputs, chart)
    direct = all_metrics(outputs["classical"][0], samples[0]["target"], chart)
    assert table["classical"]["per_sample"][0] == pytest.approx(direct)
    # visible texels are kept by the sampler: T_sample equals the partial there
    seen = samples[0]["visibility"] > 0.5
    assert np.abs(outputs["sampled"][0][seen] - samples[0]["partial"][seen]).max() < 1 / 255 + 1e-6


def test_nothing_to_evaluate_is_a_clear_error(random_weights, tmp_path):
    with pytest.raises(InputError, match="nothing to evaluate"):
        ev.evaluate(tmp_path, weights_dir=random_weights)
    assert main(["evaluate", "--out", str(tmp_path), "--weights", str(tmp_path / "none"), "--procedural", "1"]) == 2


def test_shipped_weights_are_trained_documented_and_small(repo):
    """The weights in blender_humantex/weights are real training outputs on the real training split,
    described by the model card; the closed-form prior and PCA travel with them."""
    from blender_humantex.core.data.textures import texture_files
    from blender_humantex.core.models import load_model, read_metadata
    from blender_humantex.core.models.correspondence import load_prior
    from blender_humantex.core.models.texture_pca import load_pca
    from blender_humantex.core.models.weights import PCA_FILE, PRIOR_FILE

    folder = repo / "blender_humantex" / "weights"
    card = (folder / "MODEL_CARD.md").read_text()
    files = {kind: folder / f"{kind}.safetensors" for kind in ("sampler", "refiner", "lazova")}
    everything = [*files.values(), folder / PRIOR_FILE, folder / PCA_FILE]
    assert sum(p.stat().st_size for p in everything) <= 25 * 2**20
    for kind, path in files.items():
        model = load_model(path, kind)  # shapes, layout id and config check out; prior / PCA attached
        assert model.prior is not None if kind == "sampler" else True
        assert model.pca is not None if kind == "refiner" else True
        meta = read_metadata(path)
        iterations = int(meta["iterations"])
        assert iterations >= 400 and meta["command"].startswith(f"humantex train {kind}")
        assert "SMPLitex" in meta["data"] and "no dev textures" in meta["data"]
        assert f"{iterations} steps" in card or f"step {iterations}" in card, kind
        train_config = json.loads(meta["train_config"])
        assert train_config["data"] in ("real", "real+photometric")
        if kind != "sampler":
            assert train_config["loss"]["adversarial"] is False and train_config["crop"] == 128
    validation = {p.stem for p in texture_files("validation")}
    for model in (load_prior(folder / PRIOR_FILE), load_pca(folder / PCA_FILE)):
        used = set(model.metadata["textures"].split(","))
        assert used and not used & validation
    for words in ("VGG19", "CC BY-NC", "non-commercial", "SMPLitex", "TexDreamer", "humantex train prior"):
        assert words in card, words
