"""`humantex train prior|sampler|refiner|lazova`: the arguments, then core.train's Trainer (or, for
`prior`, core.train.build_data_models)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import torch

from ..core.errors import InputError
from ..core.losses import LossConfig
from ..core.models import count_parameters
from ..core.train import Dist, TrainConfig, Trainer, build_data_models, config_from_args


def add_arguments(name, parser) -> None:
    d = TrainConfig()
    options = []  # every argument added here, so that command_line can rebuild the command

    def add(*flags, **kwargs):
        options.append(parser.add_argument(*flags, **kwargs))

    add("kind", choices=("prior", "sampler", "refiner", "lazova", "average", "select"),
        help="prior: build the correspondence prior and texture PCA (closed form, minutes); "
             "sampler / refiner / lazova: train that network; "
             "average: write the mean of --checkpoints (one network config) to --out/<kind>.safetensors; "
             "select: --checkpoints KEPT RUN_WEIGHTS: write the kept checkpoint with the run's provenance")
    add("--out", required=True, help="run folder: checkpoints, previews, log, exported weights")
    add("--iters", type=int, default=d.iters, help=f"optimisation steps (paper: {d.iters})")
    add("--batch", type=int, default=d.batch, help="batch size per process (paper: 8)")
    add("--size", type=int, default=d.size, help="texture resolution for the losses (paper: 256)")
    add("--lr", type=float, default=d.lr, help="Adam learning rate (paper: 2e-4)")
    add("--lr-decay", default=d.lr_decay, choices=("none", "cosine"),
        help="learning-rate schedule: none (paper: constant) | cosine (to 0 at --iters; for fine-tuning)")
    add("--beta1", type=float, default=d.betas[0])
    add("--beta2", type=float, default=d.betas[1])
    add("--ngf", type=int, help="network width (default: the shipped config)")
    add("--net-size", type=int, help="resolution the network itself runs at")
    add("--n-down", type=int, help="U-Net levels")
    add("--n-res", type=int, help="bottleneck residual blocks")
    add("--mirror", action="store_true", help="sampler: also feed the mirrored partial")
    _add_data_and_run_arguments(add, d)
    parser.set_defaults(train_options=tuple(options))


def _add_data_and_run_arguments(add, d: TrainConfig) -> None:
    """add_arguments' second half (same order: the exported command lists the flags in this order)."""
    add("--data", default=d.data, help="real (../shared/data's training split) | real+photometric (the same, "
        "partials made photo-like: core.data.photometric) | procedural | folder:PATH (a folder of complete SMPL-UV textures)")
    add("--cache", type=int, default=0, help="precompute N samples and cycle through them")
    add("--crop", type=int, default=0, help="refiner/lazova: train on random N×N windows of the atlas")
    add("--data-models", help="folder with correspondence_prior.safetensors and texture_pca.safetensors "
        "(from `humantex train prior`)")
    add("--no-adversarial", action="store_true",
        help="refiner/lazova: 10·L1 + 1·LPIPS only (no discriminator, perceptual or FM terms)")
    add("--ssim-weight", type=float, default=LossConfig().ssim,
        help="refiner/lazova with --no-adversarial: add this weight × (1 - SSIM) to the loss (ours; 0 = off)")
    add("--keep-checkpoints", action="store_true",
        help="keep every checkpoint's weights as --out/checkpoints/step_XXXXXX.safetensors (to average them)")
    add("--checkpoints", nargs="+", metavar="FILE",
        help="average: the weights files to average (list the run's exported weights last: its provenance is kept)")
    add("--init", help="start from these exported weights (fine-tuning; same kind and network config)")
    add("--pca-ridge", type=float, default=0.03, help="prior: ridge of the PCA conditional mean")
    add("--prior-size", type=int, default=128, help="prior: atlas resolution of the correspondence prior")
    add("--prior-k", type=int, default=64, help="prior: sources kept per texel")
    add("--pca-size", type=int, default=128, help="prior: atlas resolution of the texture PCA")
    add("--pca-k", type=int, default=64, help="prior: principal components kept")
    add("--sampler", help="refiner: the trained, frozen sampler weights")
    add("--resume", action="store_true", help="continue from --out's last checkpoint")
    add("--sample-every", type=int, default=d.sample_every, help="write a preview grid every N steps")
    add("--ckpt-every", type=int, default=d.ckpt_every, help="checkpoint every N steps")
    add("--log-every", type=int, default=d.log_every)
    add("--seed", type=int, default=d.seed)
    add("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    add("--num-workers", type=int, default=0, help="DataLoader worker processes")
    add("--threads", type=int, help="torch CPU threads per process")
    add("--lpips-backbones", help="folder with the LPIPS backbone weights "
         "(default: $HUMANTEX_LPIPS_BACKBONES or ../shared/data/lpips_backbones)")
    add("--perceptual-backbone", default="alex", choices=("alex", "squeeze", "vgg19"),
         help="refiner/lazova perceptual loss (paper: vgg19; its weights are not shipped)")
    add("--perceptual-weights", help="torchvision-layout state dict for --perceptual-backbone vgg19")
    add("--ndf", type=int, default=LossConfig().ndf, help="discriminator width")
    add("--num-d", type=int, default=LossConfig().num_d, help="discriminator scales")
    add("--quiet", action="store_true", help="no progress bar")


def run(name, args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.kind == "prior":
        for flag in ("prior_size", "prior_k", "pca_size", "pca_k"):
            if getattr(args, flag) < 1:
                raise InputError(f"--{flag.replace('_', '-')} must be >= 1", kind="bad_argument")
        result = build_data_models(args.out, prior_size=args.prior_size, prior_k=args.prior_k, pca_size=args.pca_size,
                                   pca_k=args.pca_k, pca_ridge=args.pca_ridge, command=command_line(args))
        print(f"[humantex] wrote {result['prior']} ({result['prior_s']:.0f} s) and {result['pca']} "
              f"({result['pca_s']:.0f} s)", file=sys.stderr, flush=True)
        return 0
    if args.kind == "average":
        return average(args)
    if args.kind == "select":
        return select(args)
    cfg = config_from_args(args)
    dist = Dist(args.device)
    try:
        trainer = Trainer(cfg, Path(args.out), dist, lpips_backbones=args.lpips_backbones,
                          num_workers=args.num_workers, command=command_line(args))
        if dist.main:
            print(f"[humantex] training {cfg.kind}: {count_parameters(trainer.model) / 1e6:.2f}M parameters, "
                  f"{cfg.iters} iterations, batch {cfg.batch}×{dist.world}, {cfg.size}², device {dist.device}",
                  file=sys.stderr, flush=True)
        result = trainer.fit(resume=args.resume, quiet=args.quiet)
    finally:
        dist.close()
    if dist.main:
        print(f"[humantex] done: {result['step']} steps in {result['wall_time_s']:.0f} s -> {result['weights']}",
              file=sys.stderr, flush=True)
    return 0


def checkpoints_output(args, usage: str, count_ok) -> Path:
    """average / select: check --checkpoints (how many, that they exist) and return --out/<kind>.safetensors,
    the kind read from the last file, refusing to write over one of the inputs."""
    from ..core.models import read_metadata

    if not args.checkpoints or not count_ok(len(args.checkpoints)):
        raise InputError(f"{args.kind} needs {usage}", kind="bad_argument")
    for path in args.checkpoints:
        if not Path(path).is_file():
            raise InputError(f"--checkpoints: no such file: {path}", kind="missing_file")
    out = Path(args.out) / f"{read_metadata(args.checkpoints[-1]).get('kind', 'model')}.safetensors"
    if any(out.resolve() == Path(p).resolve() for p in args.checkpoints):
        raise InputError(f"{args.kind}: {out} is one of the --checkpoints; give another --out folder",
                         kind="bad_argument")
    return out


def average(args) -> int:
    from ..core.models import average_weights

    out = checkpoints_output(args, "--checkpoints with at least two weights files", lambda n: n >= 2)
    average_weights(args.checkpoints, out, command=command_line(args))
    print(f"[humantex] wrote {out} (mean of {len(args.checkpoints)} files)", file=sys.stderr, flush=True)
    return 0


def select(args) -> int:
    from ..core.models import select_checkpoint

    out = checkpoints_output(args, "--checkpoints KEPT_CHECKPOINT RUN_WEIGHTS (two files)", lambda n: n == 2)
    select_checkpoint(*args.checkpoints, out, command=command_line(args))
    print(f"[humantex] wrote {out} (the checkpoint {Path(args.checkpoints[0]).name} with the run's provenance)",
          file=sys.stderr, flush=True)
    return 0


def command_line(args) -> str:
    """The command that ran, as a user would type it (recorded in the weights).

    Rebuilt from the parsed arguments (every option that differs from its default), so it is the
    same whether training was started from a shell, torchrun, or in-process through cli.main.
    """
    words = [args.kind]
    for action in args.train_options:
        if not action.option_strings:
            continue
        value = getattr(args, action.dest, None)
        if value == action.default:
            continue
        flag = action.option_strings[-1]
        if action.nargs == 0:
            words += [flag]
        elif isinstance(value, list):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    prefix = f"torchrun --nproc-per-node={world} -m blender_humantex train" if world > 1 else "humantex train"
    return " ".join([prefix, *map(shlex.quote, words)])
