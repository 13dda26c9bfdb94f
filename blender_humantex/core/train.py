"""`humantex train sampler|refiner|lazova`: the paper's training, on CPU or GPU, one process or DDP.

Defaults are the paper's schedule (Cha et al. 2022): Adam lr 2e-4, betas (0.9, 0.999), batch 8,
30k iterations, 256². Every one is a flag. The sampler is trained first with 10·L1 + LPIPS on
T_sample; the refiner is trained on T_sample of a trained, frozen sampler (`--sampler PATH`) with
10·L1 + 10·perceptual + 10·FM + GAN on T_final; the Lazova-style baseline gets that same loss on its
directly predicted texture, so the comparison differs only in the architecture. The perceptual term
is an AlexNet substitute for the paper's VGG19 (see core/losses.py); the choice is stored in the
exported weights' `train_config` metadata.

Data is deterministic: the global sample index of step s, process r, slot j is
s·batch·world + r·batch + j, and the datasets build item k from (seed, k) alone. So a run, its
resumption, and a DDP run with the same global batch see the same samples.

Outputs in --out: `last.safetensors` + `last_state.pt` (the checkpoint: weights, optimiser and
discriminator state, step), `samples/step_XXXXXX.png` preview grids, `log.jsonl` (losses per logged
step), and at the end `<kind>.safetensors` (the exported weights, with the exact command line).

DDP: `torchrun --nproc-per-node=N -m blender_humantex train ...` (gloo on CPU, nccl on CUDA).
--batch is per process.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .device import resolve_device
from .errors import InputError, WeightsError
from .losses import LossConfig, RefinerLoss, SamplerLoss, TextureLoss
from .models import ModelConfig, build_model, count_parameters, load_model, read_metadata, save_model
from .models.discriminators import define_D
from .models.weights import weights_id

REAL_DATA_DESCRIPTION = (
    "real SMPL-UV textures: the 84-texture train split of ../shared/data/train_textures (SMPLitex, Casas and "
    "Comino-Trinidad, BMVC 2023) and the 9 TexDreamer textures (MIT), each also mirrored through the UV "
    "mirror table; masked with real DensePose visibilities (CC BY-NC 4.0; the dev protocol's masks 3, 6, 10, 11 "
    "excluded), flipped and jittered, and view-dependent synthetic masks (front, side, back); seed {seed}; "
    "no dev textures, no validation textures"
)
REAL_PHOTOMETRIC = "real+photometric"
PHOTOMETRIC_DESCRIPTION = (
    "; photometric augmentation (core.data.photometric, 80% of items): white balance, exposure and gamma on "
    "partial and target, shading, folds, occluders, blur, noise and JPEG on the partial only"
)
DATA_DESCRIPTION = (
    "procedural SMPL-UV textures (blender_humantex.core.data, seed {seed}), masked with visibilities from "
    "public DensePose IUVs (CC BY-NC 4.0) and synthetic view masks; no scans, no photos, no dev textures"
)


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored as `train_config` in the exported weights)."""

    kind: str = "sampler"
    iters: int = 30_000
    batch: int = 8  # per process
    size: int = 256  # texture resolution the losses see
    lr: float = 2e-4
    lr_decay: str = "none"  # none (the paper's constant rate) | cosine: lr·½(1 + cos(π·step/iters)), to 0 at the end
    betas: tuple[float, float] = (0.9, 0.999)
    data: str = "procedural"  # real | procedural | folder:PATH
    cache: int = 0  # >0: precompute this many samples once and cycle through them (CPU budget)
    crop: int = 0  # >0: refiner / lazova train on random crop×crop windows of the size² atlas
    data_models: str | None = None  # folder with the correspondence prior and texture PCA (sampler, refiner)
    seed: int = 0
    sample_every: int = 500
    ckpt_every: int = 1000
    log_every: int = 10
    sampler: str | None = None  # refiner only: the frozen sampler's weights
    keep_checkpoints: bool = False  # also keep every checkpoint's weights as checkpoints/step_XXXXXX.safetensors
    init: str | None = None  # fine-tuning: start from these weights (same kind and config), fresh optimiser
    model: dict = field(default_factory=dict)
    loss: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------- distributed helpers


class Dist:
    """Process-group facts from torchrun's environment (rank 0, world 1 without torchrun)."""

    def __init__(self, device_arg: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(resolve_device(device_arg, index=self.local_rank, mps=False))
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend=backend)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.world > 1:
            torch.distributed.barrier()

    def close(self):
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


# ----------------------------------------------------------------------------- data


def make_dataset(spec: str, split: str, size: int, length: int, seed: int):
    """`real`, `real+photometric` (the partials look like real photos' unwraps: core.data.photometric),
    `procedural` or `folder:PATH` -> a map-style dataset of dict(target, partial, visibility)."""
    from . import data

    if spec in ("real", REAL_PHOTOMETRIC):
        return data.RealTextureDataset(split="train" if split == "train" else "validation", size=size,
                                       length=length, seed=seed, photometric=spec == REAL_PHOTOMETRIC)
    if spec == "procedural":
        return data.ProceduralTextureDataset(split=split, size=size, length=length, seed=seed)
    if spec.startswith("folder:"):
        folder = Path(spec[len("folder:") :])
        if not folder.is_dir():
            raise InputError(f"--data folder not found: {folder}", kind="missing_file")
        return data.FolderTextureDataset(folder, size=size, length=length, seed=seed)
    raise InputError(f"--data must be 'real', '{REAL_PHOTOMETRIC}', 'procedural' or 'folder:PATH', got {spec!r}",
                     kind="bad_argument")


class IndexedFrom(torch.utils.data.Sampler):
    """Yields this process's dataset indices from a start step on (deterministic, resumable)."""

    def __init__(self, start_step: int, end_step: int, batch: int, rank: int, world: int):
        self.start_step, self.end_step = start_step, end_step
        self.batch, self.rank, self.world = batch, rank, world

    def __iter__(self):
        for step in range(self.start_step, self.end_step):
            base = step * self.batch * self.world + self.rank * self.batch
            yield from range(base, base + self.batch)

    def __len__(self):
        return (self.end_step - self.start_step) * self.batch


class CachedDataset(torch.utils.data.Dataset):
    """The first `n` items of a dataset, computed once; index k reads item k mod n."""

    def __init__(self, dataset, n: int, num_workers: int, transform=None):
        """`transform` (a batch dict -> a batch dict) runs once per cached batch, e.g. to add the refiner's
        inputs; the cache is kept in float16 (it can hold thousands of 256² items)."""
        loader = torch.utils.data.DataLoader(dataset, batch_size=16, num_workers=num_workers,
                                             sampler=range(n), collate_fn=_collate)
        parts = [transform(b) if transform else b for b in loader]
        self.items = {k: torch.cat([p[k].half() for p in parts]) for k in parts[0]}
        self.n = n

    def __len__(self):
        return 1 << 62

    def __getitem__(self, k):
        return {key: value[k % self.n].float() for key, value in self.items.items()}


def _as_chw(x) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()
    if x.ndim == 2:
        return x[None]
    if x.ndim == 3 and x.shape[-1] in (1, 3) and x.shape[0] not in (1, 3):
        return x.permute(2, 0, 1).contiguous()
    return x


def _collate(items):
    keys = [k for k in ("target", "partial", "visibility", "valid", "t_sample", "t_pca") if k in items[0]]
    return {k: torch.stack([_as_chw(it[k]) for it in items]) for k in keys}


# ----------------------------------------------------------------------------- one stage per network


class StageOutput(NamedTuple):
    texture: torch.Tensor  # N×3×h×w: what the loss scores (h×w: the step's window)
    condition: torch.Tensor | None  # N×4×h×w: what the discriminator is conditioned on (refiner, baseline)
    layers: dict  # name -> N×C×h×w image layers for the preview grids
    sampling_grid: torch.Tensor | None = None  # sampler: N×H×W×2, for the grid-guidance aid


def _window(crop):
    if crop is None:
        return lambda x: x
    top, left, c = crop
    return lambda x: x[..., top : top + c, left : left + c]


def sampler_stage(trainer, model, batch, crop) -> StageOutput:
    """SamplerNet alone: T_sample is scored (the paper's first stage); always on the whole atlas."""
    out = model(batch["partial"], batch["visibility"])
    return StageOutput(out.t_sample, None, {"t_sample": out.t_sample}, out.sampling_grid)


def refiner_stage(trainer, model, batch, crop) -> StageOutput:
    """RefinerNet on the frozen sampler's T_sample (and the PCA estimate): T_final is scored."""
    batch = trainer.refiner_inputs(batch)
    partial, visibility = batch["partial"], batch["visibility"]
    window = _window(crop)
    t_sample = batch["t_sample"].to(partial)
    t_pca = batch["t_pca"].to(partial) if "t_pca" in batch else None
    out = model(t_sample, visibility, t_pca, crop=crop)
    layers = {"t_sample": window(t_sample), "t_refine": out.t_refine, "blend_mask": out.blend_mask, "t_final": out.t_final}
    return StageOutput(out.t_final, torch.cat([window(t_sample), window(visibility)], 1), layers)


def lazova_stage(trainer, model, batch, crop) -> StageOutput:
    """The baseline: its directly predicted texture is scored."""
    window = _window(crop)
    texture = model(batch["partial"], batch["visibility"], crop=crop)
    condition = torch.cat([window(batch["partial"]), window(batch["visibility"])], 1)
    return StageOutput(texture, condition, {"texture": texture})


STAGES = {"sampler": sampler_stage, "refiner": refiner_stage, "lazova": lazova_stage}


# ----------------------------------------------------------------------------- the trainer


class Trainer:
    """Builds the networks, losses and optimisers for one kind, and runs or resumes the loop."""

    def __init__(self, cfg: TrainConfig, out: Path, dist: Dist, lpips_backbones=None, num_workers: int = 0,
                 command: str = ""):
        self.cfg, self.out, self.dist = cfg, Path(out), dist
        self.device = dist.device
        self.num_workers = num_workers
        self.command = command
        self.cuda = self.device.type == "cuda"
        torch.manual_seed(cfg.seed)  # network initialisation is seeded too

        self.model_config = ModelConfig(**cfg.model) if cfg.model else ModelConfig.default(cfg.kind)
        if self.model_config.kind != cfg.kind:
            raise InputError(f"model config kind {self.model_config.kind} != {cfg.kind}", kind="bad_argument")
        cfg.model = self.model_config.to_dict()
        self.loss_config = LossConfig(**cfg.loss) if cfg.loss else LossConfig()
        cfg.loss = self.loss_config.to_dict()

        self.model = build_model(self.model_config)
        if cfg.init:
            self._load_init(cfg.init)
        if cfg.data_models:
            from .models.weights import attach_data_models

            attach_data_models(self.model, cfg.data_models)
        self.model = self.model.to(self.device)
        self.sampler = None
        if cfg.kind == "refiner":
            self.sampler = self._frozen_sampler()
            for p in self.sampler.parameters():
                p.requires_grad_(False)
        self.loss, self.disc = self._build_losses(lpips_backbones)
        if self.cuda:
            self.model = self.model.to(memory_format=torch.channels_last)
            if self.disc is not None:
                self.disc.to(memory_format=torch.channels_last)

        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
        self.opt_d = (torch.optim.Adam(self.disc.parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
                      if self.disc is not None else None)
        self.step = 0
        self.wall_time_s, self._started = 0.0, None  # training time over all resumptions

        self.model_ddp, self.disc_ddp = self._data_parallel(dist)

        from .uv_layout import get_layout

        chart = torch.from_numpy(get_layout(cfg.size).chart_mask.astype(np.float32))
        self.chart_mask = chart[None, None].to(self.device)
        self.amp_dtype = (torch.bfloat16 if self.cuda and torch.cuda.is_bf16_supported() else torch.float16)

    def _build_losses(self, lpips_backbones):
        """(loss, discriminator or None): the sampler's loss, the texture loss, or with adversarial training
        the refiner's loss and its conditional discriminator."""
        if self.cfg.kind == "sampler" or not self.loss_config.adversarial:
            loss_class = SamplerLoss if self.cfg.kind == "sampler" else TextureLoss
            return loss_class(self.loss_config, lpips_backbones).to(self.device), None
        return (RefinerLoss(self.loss_config, lpips_backbones=lpips_backbones).to(self.device),
                define_D(self.loss_config, condition_channels=4).to(self.device))

    def _data_parallel(self, dist: Dist):
        """(model, discriminator) as the steps run them: DDP wraps the generator and the discriminator
        separately; the discriminator is run once per D step (fake and real concatenated), and the G step
        uses the bare module with frozen weights."""
        if dist.world <= 1:
            return self.model, self.disc
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index] if self.cuda else None
        return (DDP(self.model, device_ids=ids),
                DDP(self.disc, device_ids=ids) if self.disc is not None else None)

    def _load_init(self, path) -> None:
        """--init: a fine-tuning run starts from exported weights of the same kind and network config."""
        if not Path(path).is_file():
            raise InputError(f"--init: no such weights file: {path}", kind="missing_file")
        start = load_model(path, self.cfg.kind)  # WeightsError (a one-line message) on a wrong kind or layout
        if start.config != self.model_config:
            raise InputError(f"--init: {Path(path).name} was built with a different network config than this run's",
                             kind="bad_argument")
        self.model.load_state_dict(start.state_dict())
        # The starting point's own provenance travels into this run's exported metadata.
        meta = read_metadata(path)
        history = "; ".join(f"{key} {meta[key]}" for key in ("iterations", "weight_average", "command") if meta.get(key))
        self.init_provenance = f"{Path(path).name} ({weights_id(path)}): {history}"

    def _frozen_sampler(self):
        """The refiner's input stage: a trained sampler (--sampler), else the correspondence prior alone
        (a SamplerNet with zero learned offset, as an untrained sampler is)."""
        if self.cfg.sampler:
            return load_model(self.cfg.sampler, "sampler", device=self.device)
        if not self.cfg.data_models:
            raise InputError("refiner training needs --sampler PATH or --data-models DIR (the correspondence prior)",
                             kind="bad_argument")
        from .models.weights import attach_data_models

        return attach_data_models(build_model(ModelConfig.default("sampler")), self.cfg.data_models).to(self.device).eval()

    @torch.no_grad()
    def refiner_inputs(self, batch: dict) -> dict:
        """Add T_sample (the frozen sampler's) and T_pca (the PCA estimate) to a batch, once per item."""
        if self.cfg.kind != "refiner" or "t_sample" in batch:
            return batch
        partial = batch["partial"].to(self.device)
        visibility = batch["visibility"].to(self.device)
        t_sample = self.sampler(partial, visibility).t_sample
        batch = dict(batch, t_sample=t_sample.cpu())
        if self.model_config.pca_input:
            batch["t_pca"] = self.model.pca(partial, visibility).cpu()
        return batch

    def crop_window(self) -> tuple[int, int, int] | None:
        """This step's training window (top, left, size), a function of (seed, step) only."""
        c, size = self.cfg.crop, self.cfg.size
        if not c or c >= size or self.cfg.kind == "sampler":
            return None
        top, left = np.random.default_rng([self.cfg.seed, 7, self.step]).integers(0, size - c + 1, 2)
        return int(top), int(left), c

    # ---- one optimisation step

    def _autocast(self):
        return torch.autocast("cuda", dtype=self.amp_dtype, enabled=self.cuda)

    def forward(self, batch, model=None, crop=None) -> StageOutput:
        """This kind's stage (STAGES) on a batch; with `crop` = (top, left, c) the refiner and the
        baseline produce only that window (training)."""
        return STAGES[self.cfg.kind](self, model or self.model_ddp, batch, crop)

    def train_step(self, batch) -> dict[str, float]:
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        if self.cuda:
            batch = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
        crop = self.crop_window()
        target = batch["target"]
        # the loss sees chart texels the texture defines (TexDreamer's alpha), in this step's window
        loss_mask = self.chart_mask * batch["valid"] if "valid" in batch else self.chart_mask
        if crop is not None:
            top, left, c = crop
            target = target[..., top : top + c, left : left + c]
            loss_mask = loss_mask[..., top : top + c, left : left + c]
        self.model.train()
        with self._autocast():
            out = self.forward(batch, crop=crop)
            output, condition = out.texture.float(), out.condition
            if self.cfg.kind == "sampler":
                total, terms = self.loss(output, target, loss_mask, guidance=(batch["visibility"], out.sampling_grid))
            elif self.disc is None:
                total, terms = self.loss(output, target, loss_mask)
            else:
                self.disc.requires_grad_(False)
                total, terms = self.loss.generator_loss(output, target, condition, self.disc, loss_mask)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self._set_lr(self.opt)
        self.opt.step()
        terms = dict(terms, total=total.detach(), lr=self.opt.param_groups[0]["lr"])
        if self.disc is not None:
            self.disc.requires_grad_(True)
            with self._autocast():
                d_total, d_terms = self.loss.discriminator_loss(output, target, condition, self.disc_ddp, loss_mask)
            self.opt_d.zero_grad(set_to_none=True)
            d_total.backward()
            self._set_lr(self.opt_d)
            self.opt_d.step()
            terms.update(d_terms)
        self.step += 1
        return {k: float(v) for k, v in terms.items()}

    def learning_rate(self, step: int) -> float:
        """The rate for optimisation step `step` (0-based): a pure function of the step, so a resumed run
        continues the same schedule."""
        if self.cfg.lr_decay == "cosine":
            return self.cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, self.cfg.iters) / max(self.cfg.iters, 1)))
        return self.cfg.lr

    def _set_lr(self, opt) -> None:
        for group in opt.param_groups:
            group["lr"] = self.learning_rate(self.step)

    # ---- checkpoints

    def state_path(self) -> Path:
        return self.out / "last_state.pt"

    def weights_path(self) -> Path:
        return self.out / "last.safetensors"

    def save_checkpoint(self) -> None:
        if not self.dist.main:
            return
        from .files import atomic_write

        state = {
            "step": self.step,
            "wall_time_s": self.wall_time_s + (time.time() - self._started if self._started else 0.0),
            "optimizer": self.opt.state_dict(),
            "train_config": json.dumps(self.cfg.to_dict()),
        }
        if self.disc is not None:
            state["discriminator"] = self.disc.state_dict()
            state["optimizer_d"] = self.opt_d.state_dict()
        save_model(self.model, self.weights_path(), data=self.data_description(), command=self.command,
                   extra={"step": str(self.step)})
        if self.cfg.keep_checkpoints:  # (for checkpoint averaging: `humantex train average`)
            kept = self.out / "checkpoints" / f"step_{self.step:06d}.safetensors"
            kept.parent.mkdir(exist_ok=True)
            atomic_write(kept, lambda tmp: shutil.copyfile(self.weights_path(), tmp))
        # the state is written last: a checkpoint is complete when both carry the same step
        atomic_write(self.state_path(), lambda tmp: torch.save(state, tmp))

    def load_checkpoint(self) -> None:
        from safetensors.torch import load_file

        from .models import read_metadata

        if not self.state_path().is_file() or not self.weights_path().is_file():
            raise InputError(f"--resume: no checkpoint in {self.out} (last.safetensors + last_state.pt)",
                             kind="missing_file")
        try:
            state = torch.load(self.state_path(), map_location=self.device, weights_only=True)
        except Exception as e:
            raise WeightsError(f"cannot read {self.state_path().name}: {type(e).__name__}: {e}") from None
        meta = read_metadata(self.weights_path())
        if meta.get("step") != str(state["step"]):
            raise WeightsError(f"checkpoint in {self.out} is inconsistent: weights at step {meta.get('step')},"
                               f" optimiser at step {state['step']}")
        saved = json.loads(state["train_config"])
        for key in ("kind", "model", "size"):
            if saved[key] != json.loads(json.dumps(self.cfg.to_dict()[key])):
                raise InputError(f"--resume: the checkpoint was trained with a different {key}: {saved[key]}",
                                 kind="bad_argument")
        # loss settings must agree too; a key only one side has (a setting added since) is tolerated
        changed = sorted(k for k in set(saved["loss"]) & set(self.cfg.loss) if saved["loss"][k] != self.cfg.loss[k])
        if changed:
            raise InputError(f"--resume: the checkpoint was trained with different loss settings: {', '.join(changed)}",
                             kind="bad_argument")
        self.model.load_state_dict(load_file(str(self.weights_path()), device=str(self.device)))
        self.opt.load_state_dict(state["optimizer"])
        if self.disc is not None:
            self.disc.load_state_dict(state["discriminator"])
            self.opt_d.load_state_dict(state["optimizer_d"])
        self.step = int(state["step"])
        self.wall_time_s = float(state.get("wall_time_s", 0.0))

    # ---- previews, export

    def data_description(self) -> str:
        if self.cfg.data in ("real", REAL_PHOTOMETRIC):
            return REAL_DATA_DESCRIPTION.format(seed=self.cfg.seed) + (
                PHOTOMETRIC_DESCRIPTION if self.cfg.data == REAL_PHOTOMETRIC else "")
        return DATA_DESCRIPTION.format(seed=self.cfg.seed) if self.cfg.data == "procedural" else (
            f"user textures from {self.cfg.data[len('folder:'):]} (FolderTextureDataset, seed {self.cfg.seed})")

    @torch.no_grad()
    def write_samples(self, batch) -> Path | None:
        """A preview grid: one row per example, columns partial | visibility | layers... | target."""
        if not self.dist.main:
            return None
        from .imageio import write_png

        self.model.eval()
        batch = {k: v[:4].to(self.device) for k, v in batch.items()}
        with self._autocast():
            layers = self.forward(batch, model=self.model).layers
        columns = [batch["partial"], batch["visibility"], *layers.values(), batch["target"]]
        rows = []
        for i in range(batch["target"].shape[0]):
            tiles = [c[i].float().expand(3, -1, -1) for c in columns]
            rows.append(torch.cat(tiles, dim=2))
        grid = torch.cat(rows, dim=1).clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        self.model.train()
        return write_png(self.out / "samples" / f"step_{self.step:06d}.png", grid)

    def export(self, wall_time_s: float) -> Path | None:
        if not self.dist.main:
            return None
        if self.cfg.data_models:
            # The run folder becomes a complete weights folder: the closed-form models travel with the network.
            from .models.weights import PCA_FILE, PRIOR_FILE

            for name in (PRIOR_FILE, PCA_FILE):
                source, copy = Path(self.cfg.data_models) / name, self.out / name
                if source.is_file() and source.resolve() != copy.resolve():
                    shutil.copy2(source, copy)
        extra = {
            "train_config": self.cfg.to_dict(),
            "iterations": str(self.step),
            "wall_time_s": f"{wall_time_s:.0f}",
            "hardware": hardware_description(self.device, self.dist.world),
            "perceptual_loss": (
                "none (sampler: 10*L1 + 1*LPIPS alex v0.1)" if self.cfg.kind == "sampler" else
                f"{self.loss_config.perceptual_backbone} features"
                + (" (SUBSTITUTE for the paper's VGG19, whose weights were unavailable)"
                   if self.loss_config.perceptual_backbone != "vgg19" else "")
            ),
            "parameters": str(count_parameters(self.model)),
        }
        if self.cfg.init:
            extra["init"] = self.init_provenance
        return save_model(self.model, self.out / f"{self.cfg.kind}.safetensors", data=self.data_description(),
                          command=self.command, extra=extra)

    # ---- the loop

    def fit(self, resume: bool = False, quiet: bool = False) -> dict:
        cfg = self.cfg
        if resume:
            self.load_checkpoint()
        self.out.mkdir(parents=True, exist_ok=True)
        total_samples = cfg.iters * cfg.batch * self.dist.world
        dataset = make_dataset(cfg.data, "train", cfg.size, max(total_samples, 1), cfg.seed)
        if cfg.cache and self.step < cfg.iters:  # (a resumed run that is already done only exports)
            dataset = CachedDataset(dataset, cfg.cache, self.num_workers, transform=self.refiner_inputs)
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=cfg.batch, collate_fn=_collate, num_workers=self.num_workers,
            sampler=IndexedFrom(self.step, cfg.iters, cfg.batch, self.dist.rank, self.dist.world),
            pin_memory=self.cuda, persistent_workers=False,
        )
        preview = self.refiner_inputs(_collate([make_dataset(cfg.data, "test", cfg.size, 4, cfg.seed)[i] for i in range(4)]))
        log = open(self.out / "log.jsonl", "a") if self.dist.main else None
        bar = None
        if self.dist.main and not quiet:
            from tqdm import tqdm

            bar = tqdm(total=cfg.iters, initial=self.step, desc=f"train {cfg.kind}", unit="it",
                       dynamic_ncols=True, mininterval=2.0)
        start, last = time.time(), {}
        self._started = start
        try:
            for batch in loader:
                last = self.train_step(batch)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in last.items()}, refresh=False)
                if log is not None and (self.step % cfg.log_every == 0 or self.step == cfg.iters):
                    log.write(json.dumps({"step": self.step, "time": round(time.time() - start, 2), **last}) + "\n")
                    log.flush()
                if cfg.sample_every and self.step % cfg.sample_every == 0:
                    self.write_samples(preview)
                if cfg.ckpt_every and self.step % cfg.ckpt_every == 0:
                    self.save_checkpoint()
        finally:
            if bar is not None:
                bar.close()
            if log is not None:
                log.close()
        self.save_checkpoint()
        wall = self.wall_time_s + time.time() - start
        exported = self.export(wall)
        self.dist.barrier()
        return {"step": self.step, "wall_time_s": wall, "last": last, "weights": exported}


def build_data_models(out, prior_size: int = 128, prior_k: int = 64, pca_size: int = 128, pca_k: int = 64,
                      pca_ridge: float = 0.03, command: str = "", data_dir=None) -> dict:
    """`humantex train prior`: the correspondence prior and the texture PCA, in closed form, from the real
    training split (each texture also mirrored through the UV mirror table). Writes PRIOR_FILE, PCA_FILE."""
    from .data.textures import DATA_CREDIT, load_textures
    from .models.correspondence import build_prior, save_prior
    from .models.texture_pca import fit_pca, save_pca
    from .models.weights import PCA_FILE, PRIOR_FILE, current_layout_id
    from .uv_layout import get_layout, mirror_image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    def with_mirrors(split, size):
        textures, valid, names = load_textures(split, size, data_dir)
        layout = get_layout(size)
        mirrored = np.stack([mirror_image(t, layout, fill=t) for t in textures])
        mirrored_valid = np.stack([mirror_image(v.astype(np.float32), layout, fill=0.0) > 0.5 for v in valid])
        return np.concatenate([textures, mirrored]), np.concatenate([valid, mirrored_valid]), names

    started = time.time()
    textures, valid, names = with_mirrors("train", prior_size)
    sources, cost = build_prior(textures, valid, get_layout(prior_size).chart_mask, k=prior_k)
    meta = {"uv_layout": current_layout_id(), "data": f"{len(names)} training textures + their mirror images: "
            + DATA_CREDIT, "command": command, "textures": ",".join(names)}
    prior_path = save_prior(out / PRIOR_FILE, sources, cost, prior_size, meta)
    prior_s = time.time() - started
    started = time.time()
    # The PCA needs complete textures: the SMPLitex part of the split (TexDreamer's are partly transparent).
    textures, _, names = with_mirrors("smplitex-train", pca_size)
    mean, basis = fit_pca(textures, pca_k)
    meta = dict(meta, ridge=str(pca_ridge), textures=",".join(names),
                data=f"{len(names)} SMPLitex training textures + their mirror images: " + DATA_CREDIT)
    pca_path = save_pca(out / PCA_FILE, mean, basis, meta)
    return {"prior": str(prior_path), "pca": str(pca_path), "prior_s": prior_s, "pca_s": time.time() - started}


def hardware_description(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"
    return f"{world}× {name}" if world > 1 else name


# ----------------------------------------------------------------------------- from the command line (core.cli.train)


def config_from_args(args) -> TrainConfig:
    base = ModelConfig.default(args.kind).to_dict()
    for flag, key in (("ngf", "ngf"), ("net_size", "net_size"), ("n_down", "n_down"), ("n_res", "n_res")):
        if getattr(args, flag) is not None:
            base[key] = getattr(args, flag)
    if args.mirror:
        base["mirror"] = True
    try:
        ModelConfig(**base)
    except ValueError as e:
        raise InputError(str(e), kind="bad_argument") from None
    if args.perceptual_backbone == "vgg19" and not args.perceptual_weights:
        raise InputError("--perceptual-backbone vgg19 needs --perceptual-weights PATH (VGG19 weights are not shipped)",
                         kind="bad_argument")
    loss = LossConfig(perceptual_backbone=args.perceptual_backbone,
                      perceptual_weights=args.perceptual_weights, ndf=args.ndf, num_d=args.num_d,
                      adversarial=not args.no_adversarial, ssim=args.ssim_weight)
    if args.kind == "sampler" and base.get("grid_prior") == "correspondence":
        loss = dataclasses.replace(loss, grid_guidance=0.0, grid_landing=0.0)  # the prior already lands on seen texels
    for name in ("iters", "batch", "size"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name} must be >= 1", kind="bad_argument")
    return TrainConfig(kind=args.kind, iters=args.iters, batch=args.batch, size=args.size, lr=args.lr,
                       betas=(args.beta1, args.beta2), data=args.data, cache=args.cache, seed=args.seed,
                       sample_every=args.sample_every, ckpt_every=args.ckpt_every, log_every=args.log_every,
                       sampler=args.sampler, model=base, loss=loss.to_dict(), crop=args.crop,
                       data_models=args.data_models, init=args.init, keep_checkpoints=args.keep_checkpoints,
                       lr_decay=args.lr_decay)
