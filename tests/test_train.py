"""`humantex train`: real procedural data, tiny networks, a few steps each.

Networks here start from random initial weights, as any training run does; nothing is faked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from blender_humantex.cli import main
from blender_humantex.core.models import load_model, read_metadata, weights_id

TINY = ["--size", "64", "--net-size", "64", "--ngf", "4", "--n-down", "2", "--n-res", "1", "--batch", "2",
        "--threads", "1", "--quiet", "--sample-every", "0", "--ndf", "4", "--log-every", "1"]


def train(kind, out, *extra):
    return main(["train", kind, "--out", str(out), *TINY, *extra])


def tensors(path):
    return load_file(str(path))


def assert_same_weights(a, b, atol=0.0):
    ta, tb = tensors(a), tensors(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.allclose(ta[k], tb[k], atol=atol, rtol=0), k


@pytest.fixture(scope="module")
def data_models(tmp_path_factory):
    """The correspondence prior and texture PCA, built by the real command from the real training
    textures in ../shared/data, at a small size so it takes seconds."""
    out = tmp_path_factory.mktemp("data_models")
    assert main(["train", "prior", "--out", str(out), "--prior-size", "64", "--prior-k", "8",
                 "--pca-size", "64", "--pca-k", "8", "--threads", "1"]) == 0
    return out


@pytest.fixture(scope="module")
def sampler_run(tmp_path_factory, data_models):
    out = tmp_path_factory.mktemp("sampler")
    assert train("sampler", out, "--iters", "3", "--mirror", "--sample-every", "3", "--data-models", str(data_models)) == 0
    return out


def test_prior_command_builds_the_data_models_from_the_training_split(data_models):
    from blender_humantex.core.data.textures import texture_files
    from blender_humantex.core.models.correspondence import load_prior
    from blender_humantex.core.models.texture_pca import load_pca
    from blender_humantex.core.models.weights import PCA_FILE, PRIOR_FILE

    prior, pca = load_prior(data_models / PRIOR_FILE), load_pca(data_models / PCA_FILE)
    assert prior.size == 64 and prior.k == 8 and pca.size == 64 and pca.basis.shape[0] == 8
    used = set(prior.metadata["textures"].split(","))
    validation = {p.stem for p in texture_files("validation")}
    assert len(used) == 84 + 9 and not used & validation  # the validation split is never trained on
    assert not any("texture-00000" in name or "texture-00005" in name for name in used)  # dev textures neither
    assert "mirror" in prior.metadata["data"] and "SMPLitex" in pca.metadata["data"]
    assert prior.metadata["command"].startswith("humantex train prior --out ")


def test_sampler_run_exports_weights_with_provenance(sampler_run):
    path = sampler_run / "sampler.safetensors"
    model = load_model(path, "sampler")
    assert model.config.ngf == 4 and model.config.mirror and model.config.grid_prior == "correspondence"
    assert model.prior is not None  # the run folder is a complete weights folder: the prior travels with it
    meta = read_metadata(path)
    assert meta["command"].startswith("humantex train sampler --out ")
    assert meta["iterations"] == "3"
    assert "procedural" in meta["data"] and "dev textures" in meta["data"]
    cfg = json.loads(meta["train_config"])
    assert cfg["lr"] == 2e-4 and cfg["betas"] == [0.9, 0.999]  # the paper's Adam settings are the default
    log = [json.loads(line) for line in (sampler_run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    assert all(r["l1"] > 0 and r["lpips"] > 0 for r in log)
    assert (sampler_run / "samples" / "step_000003.png").is_file()


def test_resume_equals_uninterrupted_run(tmp_path):
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert train("lazova", straight, "--iters", "4") == 0
    assert train("lazova", interrupted, "--iters", "2") == 0
    assert read_metadata(interrupted / "last.safetensors")["step"] == "2"
    assert train("lazova", interrupted, "--iters", "4", "--resume") == 0
    assert_same_weights(straight / "lazova.safetensors", interrupted / "lazova.safetensors")
    state = torch.load(interrupted / "last_state.pt", weights_only=True)
    assert state["step"] == 4 and "optimizer_d" in state and "discriminator" in state
    # the discriminator resumed too, so the logged GAN losses of steps 3-4 match
    logs = [[json.loads(x) for x in (d / "log.jsonl").read_text().splitlines()] for d in (straight, interrupted)]
    assert [r["d_real"] for r in logs[0][2:]] == pytest.approx([r["d_real"] for r in logs[1][2:]], rel=1e-6)


def test_refiner_trains_on_a_frozen_sampler(sampler_run, tmp_path):
    before = tensors(sampler_run / "sampler.safetensors")
    assert train("refiner", tmp_path, "--iters", "2", "--sampler", str(sampler_run / "sampler.safetensors"),
                 "--sample-every", "2", "--data-models", str(sampler_run)) == 0
    model = load_model(tmp_path / "refiner.safetensors", "refiner")
    assert model.config.n_res == 1
    meta = read_metadata(tmp_path / "refiner.safetensors")
    assert "SUBSTITUTE for the paper's VGG19" in meta["perceptual_loss"]
    assert json.loads(meta["train_config"])["loss"]["perceptual_backbone"] == "alex"
    after = tensors(sampler_run / "sampler.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert train("refiner", tmp_path / "r", "--iters", "1") == 2
    assert "needs --sampler" in capsys.readouterr().err
    assert train("sampler", tmp_path / "s", "--iters", "1", "--data", "folder:/nonexistent") == 2
    assert "not found" in capsys.readouterr().err
    assert train("sampler", tmp_path / "s2", "--iters", "1", "--resume") == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert train("lazova", tmp_path / "l", "--iters", "1", "--perceptual-backbone", "vgg19") == 2
    assert "--perceptual-weights" in capsys.readouterr().err
    assert main(["train", "sampler", "--out", str(tmp_path / "x"), "--net-size", "30"]) == 2
    assert "net_size" in capsys.readouterr().err


def test_ddp_two_processes_gloo_matches_single_process(tmp_path):
    """torchrun with 2 CPU processes (gloo), batch 2 each == one process with batch 4 (same samples).

    The Lazova-style run covers both DDP-wrapped networks: the generator and the discriminator.
    """
    ddp_out, single_out = tmp_path / "ddp", tmp_path / "single"
    args = ["train", "lazova", "--out", str(ddp_out), *TINY, "--iters", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
         "-m", "blender_humantex", *args],
        capture_output=True, text=True, env=env, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = read_metadata(ddp_out / "lazova.safetensors")
    assert meta["command"].startswith("torchrun --nproc-per-node=2 -m blender_humantex train lazova")
    # a later --batch overrides the one in TINY
    assert main(["train", "lazova", "--out", str(single_out), *TINY, "--batch", "4", "--iters", "2"]) == 0
    # Gradients are averaged over processes, so only float summation order differs. Conv biases right
    # before an InstanceNorm have a true gradient of ~0; Adam turns that float noise into steps of size
    # ~lr, so those may differ by up to steps × lr = 4e-4. Everything else must agree closely: Adam's
    # steps are ~lr whatever the data, so a wrong data split would move most weights apart by ~lr.
    for name in ("lazova.safetensors", "discriminator"):
        if name == "discriminator":
            a = torch.load(ddp_out / "last_state.pt", weights_only=True)[name]
            b = torch.load(single_out / "last_state.pt", weights_only=True)[name]
        else:
            a, b = tensors(ddp_out / name), tensors(single_out / name)
        diffs = torch.cat([(a[k] - b[k]).abs().flatten() for k in a])
        assert diffs.max() < 4.5e-4, name
        assert diffs.median() < 1e-6, name


def test_processes_split_the_global_batch():
    from blender_humantex.core.train import IndexedFrom

    single = list(IndexedFrom(0, 3, batch=4, rank=0, world=1))
    ranks = [list(IndexedFrom(0, 3, batch=2, rank=r, world=2)) for r in (0, 1)]
    for step in range(3):
        step_single = single[step * 4 : step * 4 + 4]
        assert sorted(ranks[0][step * 2 : step * 2 + 2] + ranks[1][step * 2 : step * 2 + 2]) == step_single
    assert list(IndexedFrom(2, 3, batch=4, rank=0, world=1)) == single[8:]  # resuming at step 2


def test_real_data_refiner_on_crops_without_adversary(data_models, tmp_path):
    """The shipped recipe: real textures, the prior-only sampler, PCA input, 10·L1 + LPIPS on crops."""
    assert train("refiner", tmp_path, "--iters", "2", "--data", "real", "--data-models", str(data_models),
                 "--no-adversarial", "--crop", "32", "--cache", "4", "--sample-every", "2") == 0
    model = load_model(tmp_path / "refiner.safetensors", "refiner")
    assert model.config.pca_input and model.pca is not None
    meta = read_metadata(tmp_path / "refiner.safetensors")
    assert "SMPLitex" in meta["data"] and "no dev textures" in meta["data"]
    cfg = json.loads(meta["train_config"])
    assert cfg["crop"] == 32 and cfg["loss"]["adversarial"] is False
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert set(log[0]) >= {"l1", "lpips"} and "gan" not in log[0]
    assert (tmp_path / "samples" / "step_000002.png").is_file()


def test_photometric_real_data_is_a_data_spec_recorded_in_the_weights(data_models, tmp_path):
    """--data real+photometric: the real textures with photo-like partials (core.data.photometric)."""
    from blender_humantex.core.train import make_dataset

    dataset = make_dataset("real+photometric", "train", 64, 8, 0)
    assert dataset.photometric and not make_dataset("real", "train", 64, 8, 0).photometric
    assert train("refiner", tmp_path, "--iters", "1", "--data", "real+photometric", "--data-models", str(data_models),
                 "--no-adversarial", "--crop", "32", "--cache", "2") == 0
    meta = read_metadata(tmp_path / "refiner.safetensors")
    assert "photometric augmentation" in meta["data"] and "SMPLitex" in meta["data"]
    assert json.loads(meta["train_config"])["data"] == "real+photometric"


def test_fine_tuning_starts_from_init_weights_and_adds_the_ssim_term(data_models, tmp_path, capsys):
    recipe = ["--data", "real", "--data-models", str(data_models), "--no-adversarial", "--crop", "32", "--cache", "2"]
    assert train("refiner", tmp_path / "base", "--iters", "2", *recipe) == 0
    start = tmp_path / "base" / "refiner.safetensors"
    # with lr 0 a fine-tuning run exports exactly the weights it started from
    assert train("refiner", tmp_path / "ft", "--iters", "1", "--lr", "0", "--init", str(start), "--ssim-weight", "2",
                 *recipe) == 0
    before, after = tensors(start), tensors(tmp_path / "ft" / "refiner.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)
    meta = read_metadata(tmp_path / "ft" / "refiner.safetensors")
    cfg = json.loads(meta["train_config"])
    assert cfg["init"] == str(start) and cfg["loss"]["ssim"] == 2.0
    # the starting point's provenance is carried along: which file, and the command that made it
    assert meta["init"].startswith(f"refiner.safetensors ({weights_id(start)}): iterations 2;")
    assert read_metadata(start)["command"] in meta["init"]
    log = [json.loads(line) for line in (tmp_path / "ft" / "log.jsonl").read_text().splitlines()]
    assert 0 < log[-1]["dssim"] < 1
    # a file of another kind, or a missing one, is a one-line error
    assert train("sampler", tmp_path / "s", "--iters", "1", "--init", str(start)) == 2
    assert "holds refiner weights" in capsys.readouterr().err
    assert train("refiner", tmp_path / "x", "--iters", "1", "--init", str(tmp_path / "nope.safetensors"), *recipe) == 2
    assert "no such weights file" in capsys.readouterr().err


def test_cosine_lr_decay_is_logged_per_step_and_recorded(tmp_path):
    assert train("lazova", tmp_path, "--iters", "4", "--lr", "1e-3", "--lr-decay", "cosine") == 0
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    # step s (0-based) runs at lr·½(1 + cos(π s / iters)): 1e-3, 8.5e-4, 5e-4, 1.5e-4; never the end's 0
    assert [round(entry["lr"], 10) for entry in log] == pytest.approx([1e-3, 8.5355339e-4, 5e-4, 1.4644661e-4])
    assert json.loads(read_metadata(tmp_path / "lazova.safetensors")["train_config"])["lr_decay"] == "cosine"
    assert train("lazova", tmp_path / "const", "--iters", "2") == 0  # the paper's constant rate stays the default
    log = [json.loads(line) for line in (tmp_path / "const" / "log.jsonl").read_text().splitlines()]
    assert [entry["lr"] for entry in log] == [2e-4, 2e-4]


def test_kept_checkpoints_average_to_their_mean_with_the_run_provenance(tmp_path, capsys):
    run = tmp_path / "run"
    assert train("lazova", run, "--iters", "4", "--ckpt-every", "2", "--keep-checkpoints") == 0
    kept = sorted((run / "checkpoints").glob("step_*.safetensors"))
    assert [p.name for p in kept] == ["step_000002.safetensors", "step_000004.safetensors"]
    a, b = tensors(kept[0]), tensors(run / "lazova.safetensors")
    assert all(torch.equal(b[k], tensors(kept[1])[k]) for k in b)  # the last kept one is the export's weights
    assert main(["train", "average", "--out", str(tmp_path / "avg"), "--checkpoints", str(kept[0]),
                 str(run / "lazova.safetensors")]) == 0
    mean = tensors(tmp_path / "avg" / "lazova.safetensors")
    changed = [k for k in a if not torch.equal(a[k], b[k])]
    assert changed  # the two steps differ, so the mean is a new point
    for k in a:
        torch.testing.assert_close(mean[k], (a[k].double() + b[k].double()).div(2).to(a[k].dtype))
    meta, run_meta = read_metadata(tmp_path / "avg" / "lazova.safetensors"), read_metadata(run / "lazova.safetensors")
    assert meta["weight_average"] == "mean of the weights at steps 2, 4"
    assert meta["average_command"].startswith("humantex train average --out ")
    assert meta["command"] == run_meta["command"] and meta["train_config"] == run_meta["train_config"]
    assert load_model(tmp_path / "avg" / "lazova.safetensors", "lazova") is not None
    # never over one of its inputs, and never of different configs
    assert main(["train", "average", "--out", str(run), "--checkpoints", str(kept[0]), str(run / "lazova.safetensors")]) == 2
    assert "is one of the --checkpoints" in capsys.readouterr().err
    assert train("lazova", tmp_path / "other", "--iters", "1", "--ngf", "8") == 0
    assert main(["train", "average", "--out", str(tmp_path / "x"), "--checkpoints", str(kept[0]),
                 str(tmp_path / "other" / "lazova.safetensors")]) == 2
    assert "different network configs" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_kept_checkpoint_is_selected_with_the_run_provenance(tmp_path, capsys):
    run = tmp_path / "run"
    assert train("lazova", run, "--iters", "4", "--ckpt-every", "2", "--keep-checkpoints", "--lr-decay", "cosine") == 0
    kept, export = run / "checkpoints" / "step_000002.safetensors", run / "lazova.safetensors"
    assert main(["train", "select", "--out", str(tmp_path / "sel"), "--checkpoints", str(kept), str(export)]) == 0
    chosen = tmp_path / "sel" / "lazova.safetensors"
    a, b = tensors(kept), tensors(chosen)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # the checkpoint's weights
    assert any(not torch.equal(a[k], tensors(export)[k]) for k in a)  # which are not the run's last
    meta, run_meta = read_metadata(chosen), read_metadata(export)
    assert meta["iterations"] == "2" and meta["selected_checkpoint"].startswith("the run's checkpoint at step 2 of its 4")
    assert meta["train_config"] == run_meta["train_config"] and meta["command"] == run_meta["command"]
    assert meta["select_command"].startswith("humantex train select --out ")
    assert load_model(chosen, "lazova") is not None
    # only a kept checkpoint of that same run, never over an input, never a half-written file
    assert train("lazova", tmp_path / "other", "--iters", "2", "--ckpt-every", "2", "--keep-checkpoints") == 0
    other = tmp_path / "other" / "checkpoints" / "step_000002.safetensors"
    assert main(["train", "select", "--out", str(tmp_path / "x"), "--checkpoints", str(other), str(export)]) == 2
    assert "not written by the run" in capsys.readouterr().err
    assert main(["train", "select", "--out", str(tmp_path / "x"), "--checkpoints", str(export), str(export)]) == 2
    assert "kept checkpoint" in capsys.readouterr().err
    assert main(["train", "select", "--out", str(run), "--checkpoints", str(kept), str(export)]) == 2
    assert "is one of the --checkpoints" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
