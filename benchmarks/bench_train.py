"""Training cost per step (forward + backward + Adam, with every loss term) for candidate configs.

    .venv/bin/python benchmarks/bench_train.py [--batch 8] [--size 256] [--steps 3] [--threads N] [--device cpu]

Prints seconds per step and parameter counts for the sampler, refiner (with its frozen sampler, the
discriminator and the perceptual net) and the Lazova-style baseline, at the shipped sizes and at
the smaller CPU-budget sizes. Inputs are random tensors: this measures compute only; data cost is
measured by benchmarks/bench_data.py.
"""

from __future__ import annotations

import argparse
import time

import torch

from blender_humantex.core.losses import LossConfig, RefinerLoss, SamplerLoss
from blender_humantex.core.models import ModelConfig, build_model, count_parameters
from blender_humantex.core.models.discriminators import define_D

CANDIDATES = [
    # the shipped CPU-budget configs (run with --size 128, as they were trained)
    ("sampler", dict(ngf=16, n_down=3, n_res=2, net_size=64, mirror=True), {}),
    ("refiner", dict(ngf=8, n_down=4, n_res=9, net_size=128), dict(ndf=16)),
    ("lazova", dict(ngf=8, n_down=4, n_res=9, net_size=128), dict(ndf=16)),
    # larger alternatives
    ("sampler", dict(ngf=32, n_down=4, n_res=2, net_size=128), {}),
    ("sampler", dict(ngf=16, n_down=4, n_res=2, net_size=128), {}),
    ("sampler", dict(ngf=16, n_down=3, n_res=2, net_size=64), {}),
    ("refiner", dict(ngf=32, n_down=3, n_res=9, net_size=256), dict(ndf=32)),
    ("refiner", dict(ngf=16, n_down=3, n_res=9, net_size=256), dict(ndf=32)),
    ("refiner", dict(ngf=16, n_down=3, n_res=9, net_size=128), dict(ndf=16)),
    ("lazova", dict(ngf=16, n_down=3, n_res=9, net_size=256), dict(ndf=32)),
    ("lazova", dict(ngf=16, n_down=3, n_res=9, net_size=128), dict(ndf=16)),
]


def step_time(kind, model_kw, loss_kw, batch, size, steps, device):
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind=kind, **model_kw)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    target = torch.rand(batch, 3, size, size, device=device)
    visibility = (torch.rand(batch, 1, size, size, device=device) > 0.6).float()
    partial = target * visibility
    extra = 0
    if kind == "sampler":
        loss = SamplerLoss().to(device)  # includes the grid-guidance aid, as in training
    else:
        loss = RefinerLoss(LossConfig(**loss_kw)).to(device)
        disc = define_D(LossConfig(**loss_kw)).to(device)  # the trainer owns the discriminator
        opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4)
        extra = count_parameters(disc)
    shipped_sampler = ModelConfig(kind="sampler", ngf=16, n_down=3, n_res=2, net_size=64, mirror=True)
    sampler = build_model(shipped_sampler).to(device).eval() if kind == "refiner" else None
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        if kind == "sampler":
            out = model(partial, visibility)
            total, _ = loss(out.t_sample, target, guidance=(visibility, out.sampling_grid))
        else:
            if sampler is not None:
                with torch.no_grad():
                    t_in = sampler(partial, visibility).t_sample
                out = model(t_in, visibility).t_final
            else:
                t_in = partial
                out = model(partial, visibility)
            condition = torch.cat([t_in, visibility], 1)
            disc.requires_grad_(False)
            total, _ = loss.generator_loss(out, target, condition, disc)
        opt.zero_grad()
        total.backward()
        opt.step()
        if kind != "sampler":
            disc.requires_grad_(True)
            d_total, _ = loss.discriminator_loss(out, target, condition, disc)
            opt_d.zero_grad()
            d_total.backward()
            opt_d.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first step pays one-off allocation costs
            times.append(time.perf_counter() - t0)
    return sum(times) / len(times), count_parameters(model), extra


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", help="comma-separated candidate indices")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {args.batch}, {args.size}²")
    print(f"{'#':>2} {'kind':8} {'config':48} {'params':>8} {'D params':>8} {'s/step':>7}")
    chosen = [int(i) for i in args.only.split(",")] if args.only else range(len(CANDIDATES))
    for i in chosen:
        kind, model_kw, loss_kw = CANDIDATES[i]
        sec, params, d_params = step_time(kind, model_kw, loss_kw, args.batch, args.size, args.steps, device)
        desc = " ".join(f"{k}={v}" for k, v in {**model_kw, **loss_kw}.items())
        print(f"{i:>2} {kind:8} {desc:48} {params / 1e6:7.2f}M {d_params / 1e6:7.2f}M {sec:7.2f}", flush=True)


if __name__ == "__main__":
    main()
