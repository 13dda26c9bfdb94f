"""The one place a network's architecture is described. Stored as JSON in every weights file.

No torch here: the add-on and the worker client read configs without importing torch.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from ..errors import WeightsError

KINDS = ("sampler", "refiner", "lazova")
NORMS = ("instance", "batch", "none")
GRID_PRIORS = ("none", "seen", "correspondence")
PRIOR_FILLS = ("smooth", "nearest")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of SamplerNet, RefinerNet or LazovaNet (all three are residual U-Nets).

    kind        "sampler" | "refiner" | "lazova"
    ngf         channels after the first layer; each Down doubles them, capped at ngf * max_mult
    n_down      number of stride-2 levels (the bottleneck runs at net_size / 2**n_down)
    n_res       residual blocks at the bottleneck (the paper's refiner has 9)
    norm        "instance" (pix2pixHD / CycleGAN default), "batch" or "none"
    net_size    resolution the network itself runs at; inputs of any size are resized to it and
                its outputs (grid offset, T_refine, M) are upsampled back to the input size
    max_offset  sampler only: bound on the predicted grid offset in normalised [-1, 1] coordinates;
                2.0 lets any texel sample any other texel (back texels fetch front texels far away)
    uv_coords   feed the 2 UV-coordinate channels (u, v in [-1, 1]) so a convolution knows where in
                the atlas it is — the atlas is not translation invariant (every chart is a body part)
    mirror      sampler only: also feed the left/right mirrored partial texture and visibility,
                built with the UV layout's mirror map (core.uv_layout.get_layout(size).mirror_yx)
    grid_prior  sampler only: "none" (grid = identity + learned offset, as in the paper), "seen"
                (grid = identity + prior offset + learned offset, where the prior sends each unseen
                texel to its seen mirror partner or the nearest seen texel of its part; see
                core.models.grid_prior) or "correspondence" (a mix of `prior_slots` grids, each
                identity + offset to one of the texel's best *seen* predictors according to the
                data-driven correspondence prior, + the learned offset; see core.models.correspondence)
    prior_slots, prior_temperature, prior_passes
                sampler with grid_prior "correspondence": how many seen predictors each texel mixes,
                how fast their weight falls with the prior's cost, and how many fill passes run
    prior_fill  sampler with grid_prior "correspondence": what the texels no pass reached get: "smooth"
                (a push-pull of their part's known colours, core.models.grid_prior.smooth_fill) or
                "nearest" (the nearest seen texel of the part, grid_prior.seen_source: streaks; the
                shipped sampler's fill until MODEL_CARD's step 7)
    pca_input   refiner only: also feed the PCA texture model's estimate (core.models.texture_pca) and
                the chart mask; T_refine is then a residual over that estimate, and seen texels keep
                M = 1 (their photo colour)
    """

    kind: str = "sampler"
    ngf: int = 32
    n_down: int = 4
    n_res: int = 2
    max_mult: int = 8
    norm: str = "instance"
    net_size: int = 128
    max_offset: float = 2.0
    uv_coords: bool = True
    mirror: bool = False
    grid_prior: str = "none"
    prior_slots: int = 16
    prior_temperature: float = 0.01
    prior_passes: int = 3
    prior_fill: str = "smooth"
    pca_input: bool = False

    def __post_init__(self):
        problems = []
        if self.kind not in KINDS:
            problems.append(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.norm not in NORMS:
            problems.append(f"norm {self.norm!r} is not one of {', '.join(NORMS)}")
        for name in ("ngf", "n_down", "max_mult", "net_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.n_res, int) or isinstance(self.n_res, bool) or self.n_res < 0:
            problems.append(f"n_res must be an integer >= 0, got {self.n_res!r}")
        # Instance norm needs more than one value per channel, so the bottleneck keeps >= 4×4.
        if not problems and (self.net_size % (2**self.n_down) or self.net_size // 2**self.n_down < 4):
            problems.append(
                f"net_size {self.net_size} must be divisible by 2**n_down = {2**self.n_down}"
                " with a bottleneck of at least 4×4"
            )
        if not isinstance(self.max_offset, (int, float)) or not 0 < self.max_offset <= 2.0:
            problems.append(f"max_offset must be in (0, 2], got {self.max_offset!r}")
        if self.mirror and self.kind != "sampler":
            problems.append("mirror inputs are a sampler option only")
        if self.grid_prior not in GRID_PRIORS:
            problems.append(f"grid_prior {self.grid_prior!r} is not one of {', '.join(GRID_PRIORS)}")
        elif self.grid_prior != "none" and self.kind != "sampler":
            problems.append("grid_prior is a sampler option only")
        if self.pca_input and self.kind != "refiner":
            problems.append("pca_input is a refiner option only")
        if not isinstance(self.prior_slots, int) or self.prior_slots < 1 or self.prior_passes < 1:
            problems.append("prior_slots and prior_passes must be positive integers")
        if self.prior_fill not in PRIOR_FILLS:
            problems.append(f"prior_fill {self.prior_fill!r} is not one of {', '.join(PRIOR_FILLS)}")
        if not self.prior_temperature > 0:
            problems.append(f"prior_temperature must be > 0, got {self.prior_temperature!r}")
        if problems:
            raise ValueError("invalid ModelConfig: " + "; ".join(problems))

    @classmethod
    def default(cls, kind: str) -> ModelConfig:
        """The shipped sizes, chosen for interactive CPU use (see benchmarks/bench_inference.py).

        The sampler runs at 128² because its output (a sampling grid) is smooth and is
        upsampled to the output size anyway; the refiner and the baseline run at the paper's 256².
        """
        if kind == "sampler":
            # The correspondence prior does the long-range work; the learned offset is a small,
            # smooth correction (max 0.1 = 13 texels at 256²), so a small network at 64² suffices.
            return cls(kind="sampler", ngf=16, n_down=3, n_res=2, net_size=64, max_offset=0.1,
                       norm="none", grid_prior="correspondence", prior_slots=8, prior_passes=6)
        if kind in ("refiner", "lazova"):
            # ngf 16 (widths 16..64, 6 bottleneck blocks, 0.97M parameters) keeps `complete` at 256² within
            # its 0.3 s CPU budget; the paper-like ngf 64 costs ~1.2 s (benchmarks/bench_inference.py). Same backbone for the
            # baseline, so the comparison is between methods, not sizes. No normalisation: both are
            # trained on 128² crops of 256² atlases and run on whole atlases, and instance statistics
            # of a crop are not those of the atlas.
            return cls(kind=kind, ngf=16, n_down=4, n_res=6, max_mult=4, net_size=256, norm="none",
                       pca_input=kind == "refiner")
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(KINDS)}")

    @property
    def in_channels(self) -> int:
        # partial / T_sample (3) + visibility (1) [+ u, v (2)] [+ mirrored partial (3) + mirrored visibility (1)]
        # [+ PCA estimate (3) + chart mask (1)]
        return 4 + (2 if self.uv_coords else 0) + (4 if self.mirror else 0) + (4 if self.pca_input else 0)

    @property
    def out_channels(self) -> int:
        # sampler: grid offset (x, y); refiner: T_refine (3) + blend mask M (1); lazova: texture (3)
        return {"sampler": 2, "refiner": 4, "lazova": 3}[self.kind]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Build from stored JSON; unknown or invalid fields are a WeightsError (the file is not ours)."""
        if not isinstance(data, dict):
            raise WeightsError(f"model config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise WeightsError(
                f"model config has unknown fields {', '.join(unknown)} (written by a newer version?)"
            )
        try:
            return cls(**data)
        except (TypeError, ValueError) as e:
            raise WeightsError(str(e)) from None

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as e:
            raise WeightsError(f"model config is not valid JSON: {e}") from None
        return cls.from_dict(data)
