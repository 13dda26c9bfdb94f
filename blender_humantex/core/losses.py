"""Training losses (Cha et al. 2022, after pix2pixHD).

- SamplerNet:  10·L1 + 1·LPIPS(alex v0.1)                       → `SamplerLoss`
- RefinerNet:  10·L1 + 10·perceptual + 10·feature matching + 1·GAN → `RefinerLoss`
  with a pix2pixHD multi-scale PatchGAN discriminator (LSGAN, core.models.discriminators) that
  returns its intermediate features for feature matching; the trainer owns it, the loss only scores. The Lazova-style baseline is trained with the same loss on its
  predicted texture, so the comparison differs only in the architecture.

PERCEPTUAL-LOSS SUBSTITUTION. The paper (like pix2pixHD) uses a VGG19 perceptual loss. VGG19
ImageNet weights cannot be had here, so by default `PerceptualLoss` runs on the AlexNet ImageNet
features that LPIPS uses (`backbone="alex"`): L1 between channel-normalised relu1..relu5 features,
averaged over layers. This is recorded as `perceptual_backbone` in the training config stored in
every weights file, and in the model card. With VGG19 weights (a torchvision `vgg19` state dict),
`--perceptual-backbone vgg19 --perceptual-weights PATH` gives pix2pixHD's VGGLoss exactly
(ImageNet-normalised input, relu{1..5}_1, weights 1/32 … 1, L1 on raw features).
A perceptual loss is never built on random weights: the backbone loader raises instead.

All losses take images in [0, 1], N×3×H×W. An optional `chart_mask` (N×1×H×W or 1×1×H×W, 1 inside
the SMPL UV charts) composites prediction and target onto black outside the charts, so the
networks are not trained on the atlas' empty background.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbones import BACKBONE_FILES, load_backbone
from .metrics import LPIPS, ScalingLayer, normalize_channels


@dataclass(frozen=True)
class LossConfig:
    """Weights of every loss term and the auxiliary networks' settings (stored with the weights)."""

    l1: float = 10.0
    lpips: float = 1.0  # sampler
    # Sampler training aid (OUR ADDITION, not in the paper): L1 between the predicted sampling grid and
    # a heuristic guide grid on unseen chart texels: the texel's left/right mirror texel where that was
    # seen, else the nearest seen texel. Why: T_sample's sampling is premultiplied by visibility, so a
    # texel whose grid points into an unseen region reads nothing and gets no gradient at all; measured
    # here, with the paper's loss alone the sampler's offsets stayed exactly 0, and a colour-only aid
    # (grid-sampling a push-pull filled partial) drove the grid off the atlas towards average colours.
    # The guide only says "fetch from something seen"; the paper's L1 + LPIPS on T_sample still choose
    # what. It stays on for the whole run: when it was faded out after half the run (measured), the
    # paper's loss pulled grids back into unseen regions (black reads cost less L1 than wrong colours,
    # and once there they get no gradient), and the filled share of unseen texels fell from 27% to 11%.
    grid_guidance: float = 10.0
    # ... and a landing term: the share of each unseen texel's bilinear sample that falls on unseen
    # texels. The guide's L1 alone leaves grids between small seen islands (measured: a quarter of
    # unseen texels filled); this pulls them the last texel onto seen ones.
    grid_landing: float = 10.0
    perceptual: float = 10.0  # refiner / lazova
    feature_matching: float = 10.0
    gan: float = 1.0
    # (1 - SSIM) on the texture, inside the charts (OUR ADDITION, not in the paper; 0 = off). Why: with
    # L1 + LPIPS alone the refiner's LPIPS kept falling while its SSIM drifted down (validation and dev);
    # SSIM rewards local structure (means, contrasts, correlation) that the hallucinated detail gets wrong.
    ssim: float = 0.0
    lpips_net: str = "alex"
    # The paper's VGG19 is substituted by AlexNet (see module docstring); "vgg19" needs perceptual_weights.
    perceptual_backbone: str = "alex"
    perceptual_weights: str | None = None
    # False: refiner and baseline train with TextureLoss (10·L1 + 1·LPIPS), no discriminator.
    adversarial: bool = True
    ndf: int = 32  # discriminator width (pix2pixHD: 64; halved for the CPU budget)
    n_layers_d: int = 3
    num_d: int = 2  # discriminator scales (pix2pixHD: 2 for 512², 3 for 1024²)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def composite(image: torch.Tensor, chart_mask: torch.Tensor | None) -> torch.Tensor:
    return image if chart_mask is None else image * chart_mask


@torch.no_grad()
def guide_grid(visibility: torch.Tensor, chart_mask: torch.Tensor | None = None):
    """Heuristic sampling grid for unseen texels: mirror texel if seen, else the nearest seen texel
    (core.models.grid_prior.seen_source, not limited to the texel's part).

    visibility N×1×S×S -> (grid N×S×S×2 in normalised (x, y), weight N×1×S×S = unseen chart texels).
    """
    from .models.grid_prior import seen_source
    from .uv_layout import get_layout

    n, _, size, _ = visibility.shape
    chart = get_layout(size).chart_mask if chart_mask is None else chart_mask[0, 0].cpu().numpy() > 0.5
    grids, weights = [], []
    for seen in visibility[:, 0].cpu().numpy() > 0.5:
        ty, tx = seen_source(seen, same_part=False)
        grids.append(np.stack([(tx * 2 + 1) / size - 1, (ty * 2 + 1) / size - 1], -1).astype(np.float32))
        weights.append((~seen & chart).astype(np.float32) if seen.any() else np.zeros((size, size), np.float32))
    return torch.from_numpy(np.stack(grids)), torch.from_numpy(np.stack(weights))[:, None]



def backbone_file(lpips_backbones, net: str):
    """The `lpips_backbones` folder (None: the default one) -> `net`'s backbone file in it (None: the default)."""
    return None if lpips_backbones is None else Path(lpips_backbones) / BACKBONE_FILES[net]


class PerceptualLoss(nn.Module):
    """Feature-space L1 on a frozen ImageNet backbone (VGG19 substitute by default, see module docstring)."""

    VGG_LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)  # pix2pixHD VGGLoss

    def __init__(self, backbone: str = "alex", weights_path=None):
        super().__init__()
        self.backbone_name = backbone
        self.backbone = load_backbone(backbone, weights_path)
        if backbone == "vgg19":
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        else:
            self.scaling = ScalingLayer()

    def train(self, mode: bool = True):
        return super().train(False)  # a frozen feature extractor never switches to train mode

    def _features(self, x):
        if self.backbone_name == "vgg19":
            return self.backbone((x - self.mean) / self.std)
        return self.backbone(self.scaling(x * 2 - 1))

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fp = self._features(pred)
        with torch.no_grad():
            ft = self._features(target)
        if self.backbone_name == "vgg19":
            return sum(w * F.l1_loss(a, b) for w, a, b in zip(self.VGG_LAYER_WEIGHTS, fp, ft, strict=True))
        # AlexNet/SqueezeNet activations differ in scale by orders of magnitude across layers;
        # channel-normalising them (as LPIPS does) makes every layer count.
        losses = [F.l1_loss(normalize_channels(a), normalize_channels(b)) for a, b in zip(fp, ft, strict=True)]
        # normalised features have per-texel unit length, so a mean L1 is ~1/sqrt(C); rescale to ~O(1)
        return sum(loss * a.shape[1] ** 0.5 for loss, a in zip(losses, fp, strict=True)) / len(losses)


def lsgan_loss(outputs: list[list[torch.Tensor]], target_is_real: bool) -> torch.Tensor:
    """Least-squares GAN loss on each scale's patch scores (pix2pixHD's default, no_lsgan=False)."""
    target = 1.0 if target_is_real else 0.0
    return sum(F.mse_loss(feats[-1], torch.full_like(feats[-1], target)) for feats in outputs)


def feature_matching_loss(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """pix2pixHD GAN feature loss: L1 between D's intermediate features of fake and (detached) real."""
    num_d = len(fake)
    n_layers = len(fake[0]) - 1
    weight = 4.0 / (n_layers + 1) / num_d
    return sum(
        weight * F.l1_loss(f, r.detach()) for ff, rr in zip(fake, real, strict=True) for f, r in zip(ff[:-1], rr[:-1], strict=True)
    )


def ssim_map(pred: torch.Tensor, target: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """Differentiable SSIM map, N×1×H×W (the channel mean), with the evaluation's settings
    (core.metrics.ssim: Wang et al. 2004, Gaussian σ 1.5 truncated at 3.5σ = 11×11, K1 0.01, K2 0.03,
    data range 1, population covariances). Borders are reflect-padded, as scikit-image filters them."""
    radius = int(3.5 * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=pred.dtype, device=pred.device)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    channels = pred.shape[1]
    kx = g.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)  # C×1×1×K: separable Gaussian
    ky = g.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)  # C×1×K×1

    def blur(img):  # N×C×H×W -> N×C×H×W
        img = F.pad(img, (radius, radius, radius, radius), mode="reflect")
        return F.conv2d(F.conv2d(img, kx, groups=channels), ky, groups=channels)

    c1, c2 = 0.01**2, 0.03**2
    mu_p, mu_t = blur(pred), blur(target)
    var_p = blur(pred * pred) - mu_p**2
    var_t = blur(target * target) - mu_t**2
    cov = blur(pred * target) - mu_p * mu_t
    smap = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return smap.mean(1, keepdim=True)


class TextureLoss(nn.Module):
    """10·L1 + 1·LPIPS (+ w·(1 − SSIM)) on a texture, inside `chart_mask` (N×1×H×W; may also exclude
    invalid texels).

    The sampler's loss in the paper; with `LossConfig.adversarial` False also the refiner's and the
    baseline's (the shipped weights: validation showed no need for the GAN terms within the CPU budget).
    The SSIM term (LossConfig.ssim) averages the SSIM map over the mask's texels, as the evaluation does.
    """

    def __init__(self, cfg: LossConfig = LossConfig(), lpips_backbones=None):
        super().__init__()
        self.cfg = cfg
        self.lpips = LPIPS(cfg.lpips_net, backbone_file(lpips_backbones, cfg.lpips_net))

    def forward(self, output, target, chart_mask=None):
        pred, real = composite(output, chart_mask), composite(target, chart_mask)
        l1 = F.l1_loss(pred, real)
        lp = self.lpips(pred, real).mean()
        total = self.cfg.l1 * l1 + self.cfg.lpips * lp
        terms = {"l1": l1.detach(), "lpips": lp.detach()}
        if self.cfg.ssim:
            smap = ssim_map(pred, real)  # N×1×H×W
            weight = torch.ones_like(smap) if chart_mask is None else chart_mask.expand_as(smap)
            structural = 1 - (smap * weight).sum() / weight.sum().clamp_min(1.0)
            total = total + self.cfg.ssim * structural
            terms["dssim"] = structural.detach()
        return total, terms


class SamplerLoss(nn.Module):
    """10·L1 + 1·LPIPS on T_sample (+ the coarse-sampling aid, see LossConfig). Returns (total, terms)."""

    def __init__(self, cfg: LossConfig = LossConfig(), lpips_backbones=None):
        super().__init__()
        self.cfg = cfg
        self.lpips = LPIPS(cfg.lpips_net, backbone_file(lpips_backbones, cfg.lpips_net))

    def grid_guidance_loss(self, visibility, sampling_grid, chart_mask=None):
        """Mean L1 (normalised coords) between the grid and guide_grid() over unseen chart texels."""
        guide, weight = guide_grid(visibility, chart_mask)
        diff = (sampling_grid - guide.to(sampling_grid)).abs().sum(-1, keepdim=True).permute(0, 3, 1, 2)
        weight = weight.to(diff)
        return (diff * weight).sum() / (2 * weight.sum()).clamp_min(1.0)

    def grid_landing_loss(self, visibility, sampling_grid, chart_mask=None):
        """Mean over unseen chart texels of 1 - (visibility read at the grid): 0 when every sample lands on seen texels."""
        landed = F.grid_sample(visibility, sampling_grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        weight = 1 - (visibility > 0.5).to(visibility)
        if chart_mask is not None:
            weight = weight * chart_mask
        return ((1 - landed) * weight).sum() / weight.sum().clamp_min(1.0)

    def forward(self, t_sample, target, chart_mask=None, guidance=None):
        """`guidance` = (visibility, sampling_grid) enables the grid-guidance training aid."""
        pred, real = composite(t_sample, chart_mask), composite(target, chart_mask)
        l1 = F.l1_loss(pred, real)
        lp = self.lpips(pred, real).mean()
        total = self.cfg.l1 * l1 + self.cfg.lpips * lp
        terms = {"l1": l1.detach(), "lpips": lp.detach()}
        if guidance is not None and self.cfg.grid_guidance:
            guide_l1 = self.grid_guidance_loss(*guidance, chart_mask)
            landing = self.grid_landing_loss(*guidance, chart_mask)
            total = total + self.cfg.grid_guidance * guide_l1 + self.cfg.grid_landing * landing
            terms["guide"] = guide_l1.detach()
            terms["miss"] = landing.detach()
        return total, terms


class RefinerLoss(nn.Module):
    """10·L1 + 10·perceptual + 10·FM + 1·GAN on the output texture, conditioned on the network's input.

    The discriminator (core.models.discriminators.define_D) belongs to the trainer, which optimises it;
    this loss only scores, through the discriminator it is handed (SPADE's split). It sees
    (condition, texture) concatenated, as in pix2pixHD's conditional D; for the refiner the condition
    is T_sample and visibility, for the baseline the partial and visibility.
    """

    def __init__(self, cfg: LossConfig = LossConfig(), lpips_backbones=None):
        super().__init__()
        self.cfg = cfg
        weights = cfg.perceptual_weights
        if weights is None and cfg.perceptual_backbone in ("alex", "squeeze"):
            weights = backbone_file(lpips_backbones, cfg.perceptual_backbone)
        self.perceptual = PerceptualLoss(cfg.perceptual_backbone, weights)

    def generator_loss(self, output, target, condition, discriminator, chart_mask=None):
        pred, real = composite(output, chart_mask), composite(target, chart_mask)
        l1 = F.l1_loss(pred, real)
        perceptual = self.perceptual(pred, real)
        fake_out = discriminator(torch.cat([condition, pred], 1))
        with torch.no_grad():
            real_out = discriminator(torch.cat([condition, real], 1))
        gan = lsgan_loss(fake_out, True)
        fm = feature_matching_loss(fake_out, real_out)
        c = self.cfg
        total = c.l1 * l1 + c.perceptual * perceptual + c.feature_matching * fm + c.gan * gan
        terms = {"l1": l1.detach(), "perceptual": perceptual.detach(), "fm": fm.detach(), "gan": gan.detach()}
        return total, terms

    def discriminator_loss(self, output, target, condition, discriminator, chart_mask=None):
        """LSGAN D loss. Fake and real go through D in one batch (InstanceNorm is per sample, so this
        equals two calls), which is what a DistributedDataParallel-wrapped `discriminator` needs."""
        disc = discriminator
        pred, real = composite(output.detach(), chart_mask), composite(target, chart_mask)
        both = disc(torch.cat([torch.cat([condition, pred], 1), torch.cat([condition, real], 1)], 0))
        n = pred.shape[0]
        fake_out = [[f[:n] for f in feats] for feats in both]
        real_out = [[f[n:] for f in feats] for feats in both]
        d_fake = lsgan_loss(fake_out, False)
        d_real = lsgan_loss(real_out, True)
        total = 0.5 * (d_fake + d_real)
        return total, {"d_real": d_real.detach(), "d_fake": d_fake.detach()}
