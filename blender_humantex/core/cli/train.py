"""`humantex train prior|sampler|refiner|lazova`: the arguments, then core.train's Trainer (or, for
`prior`, core.train.build_data_models)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from ..errors import InputError
from ..losses import LossConfig
from ..models import count_parameters
from ..train import Dist, TrainConfig, Trainer, build_data_models, command_line, config_from_args


def add_arguments(name, parser) -> None:
    d = TrainConfig()
    parser.add_argument("kind", choices=("prior", "sampler", "refiner", "lazova"),
                        help="prior: build the correspondence prior and texture PCA (closed form, minutes); "
                             "sampler / refiner / lazova: train that network")
    parser.add_argument("--out", required=True, help="run folder: checkpoints, previews, log, exported weights")
    parser.add_argument("--iters", type=int, default=d.iters, help=f"optimisation steps (paper: {d.iters})")
    parser.add_argument("--batch", type=int, default=d.batch, help="batch size per process (paper: 8)")
    parser.add_argument("--size", type=int, default=d.size, help="texture resolution for the losses (paper: 256)")
    parser.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (paper: 2e-4)")
    parser.add_argument("--beta1", type=float, default=d.betas[0])
    parser.add_argument("--beta2", type=float, default=d.betas[1])
    parser.add_argument("--ngf", type=int, help="network width (default: the shipped config)")
    parser.add_argument("--net-size", type=int, help="resolution the network itself runs at")
    parser.add_argument("--n-down", type=int, help="U-Net levels")
    parser.add_argument("--n-res", type=int, help="bottleneck residual blocks")
    parser.add_argument("--mirror", action="store_true", help="sampler: also feed the mirrored partial")
    parser.add_argument("--data", default=d.data, help="real (../shared/data's training split) | procedural | "
                        "folder:PATH (a folder of complete SMPL-UV textures)")
    parser.add_argument("--cache", type=int, default=0, help="precompute N samples and cycle through them")
    parser.add_argument("--crop", type=int, default=0, help="refiner/lazova: train on random N×N windows of the atlas")
    parser.add_argument("--data-models", help="folder with correspondence_prior.safetensors and texture_pca.safetensors "
                        "(from `humantex train prior`)")
    parser.add_argument("--no-adversarial", action="store_true",
                        help="refiner/lazova: 10·L1 + 1·LPIPS only (no discriminator, perceptual or FM terms)")
    parser.add_argument("--pca-ridge", type=float, default=0.03, help="prior: ridge of the PCA conditional mean")
    parser.add_argument("--prior-size", type=int, default=128, help="prior: atlas resolution of the correspondence prior")
    parser.add_argument("--prior-k", type=int, default=64, help="prior: sources kept per texel")
    parser.add_argument("--pca-size", type=int, default=128, help="prior: atlas resolution of the texture PCA")
    parser.add_argument("--pca-k", type=int, default=64, help="prior: principal components kept")
    parser.add_argument("--sampler", help="refiner: the trained, frozen sampler weights")
    parser.add_argument("--resume", action="store_true", help="continue from --out's last checkpoint")
    parser.add_argument("--sample-every", type=int, default=d.sample_every, help="write a preview grid every N steps")
    parser.add_argument("--ckpt-every", type=int, default=d.ckpt_every, help="checkpoint every N steps")
    parser.add_argument("--log-every", type=int, default=d.log_every)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--threads", type=int, help="torch CPU threads per process")
    parser.add_argument("--lpips-backbones", help="folder with the LPIPS backbone weights "
                        "(default: $HUMANTEX_LPIPS_BACKBONES or ../shared/data/lpips_backbones)")
    parser.add_argument("--perceptual-backbone", default="alex", choices=("alex", "squeeze", "vgg19"),
                        help="refiner/lazova perceptual loss (paper: vgg19; its weights are not shipped)")
    parser.add_argument("--perceptual-weights", help="torchvision-layout state dict for --perceptual-backbone vgg19")
    parser.add_argument("--ndf", type=int, default=LossConfig().ndf, help="discriminator width")
    parser.add_argument("--num-d", type=int, default=LossConfig().num_d, help="discriminator scales")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(_parser=parser)


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
