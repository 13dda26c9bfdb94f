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
    grid_prior  sampler only: "none" (grid = identity + learned offset, as in the paper) or "seen"
                (grid = identity + prior offset + learned offset, where the prior sends each unseen
                texel to its seen mirror partner or the nearest seen texel of its part; see
                core.models.grid_prior for why)
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
        if self.grid_prior not in ("none", "seen"):
            problems.append(f"grid_prior {self.grid_prior!r} is not one of none, seen")
        elif self.grid_prior != "none" and self.kind != "sampler":
            problems.append("grid_prior is a sampler option only")
        if problems:
            raise ValueError("invalid ModelConfig: " + "; ".join(problems))

    @classmethod
    def default(cls, kind: str) -> ModelConfig:
        """The shipped sizes, chosen for interactive CPU use (see benchmarks/bench_inference.py).

        The sampler runs at 128² because its output (a sampling grid) is smooth and is
        upsampled to the output size anyway; the refiner and the baseline run at the paper's 256².
        """
        if kind == "sampler":
            return cls(kind="sampler", ngf=32, n_down=4, n_res=2, net_size=128, grid_prior="seen")
        if kind in ("refiner", "lazova"):
            # ngf 16 keeps the refiner near 0.12 s per 256² texture on 2 CPU cores; the paper-like
            # ngf 64 costs ~1.2 s (figures in benchmarks/bench_inference.py). Same backbone for the
            # baseline, so the comparison is between methods, not sizes.
            return cls(kind=kind, ngf=16, n_down=4, n_res=9, net_size=256)
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(KINDS)}")

    @property
    def in_channels(self) -> int:
        # partial / T_sample (3) + visibility (1) [+ u, v (2)] [+ mirrored partial (3) + mirrored visibility (1)]
        return 4 + (2 if self.uv_coords else 0) + (4 if self.mirror else 0)

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
