"""What the test files share: the CLI runner, the one-line error check, the random-weights writer.
(Fixtures are in conftest.py; test files never import each other.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Small configs, so CPU jobs stay fast. The weights written with them are RANDOM, never trained.
SMALL_CONFIGS = {
    "sampler": {"ngf": 8, "n_down": 2, "n_res": 1, "net_size": 64},
    "refiner": {"ngf": 8, "n_down": 2, "n_res": 2, "net_size": 64},
    "lazova": {"ngf": 8, "n_down": 2, "n_res": 2, "net_size": 64},
}


def humantex(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    """A real `python -m blender_humantex ...` process, one thread, without HUMANTEX_DEBUG (it would show tracebacks)."""
    env = {k: v for k, v in os.environ.items() if k != "HUMANTEX_DEBUG"}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([sys.executable, "-m", "blender_humantex", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def assert_one_line_error(result, *fragments) -> str:
    """Exit code 2, no traceback, exactly one `humantex: error:` line holding every fragment; returns the line."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "Error:" not in result.stderr.replace("humantex: error:", "")
    errors = [line for line in result.stderr.splitlines() if line.startswith("humantex: error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def write_random_weights(folder, kinds=("sampler", "refiner", "lazova"), seed: int = 0) -> Path:
    """RANDOM-weight networks (SMALL_CONFIGS) saved as the pipeline's weights files: no trained weights in tests."""
    import torch

    from blender_humantex.core.models import ModelConfig, build_model, save_model
    from blender_humantex.core.pipeline import WEIGHT_FILES

    folder = Path(folder)
    torch.manual_seed(seed)
    for kind in kinds:
        net = build_model(ModelConfig(kind=kind, **SMALL_CONFIGS[kind]))
        if kind == "sampler":
            torch.nn.init.normal_(net.unet.last.weight, std=0.05)  # move the grid away from identity
        save_model(net, folder / WEIGHT_FILES[kind], data="random weights (test)", command="pytest")
    return folder


if __name__ == "__main__":  # `python tests/helpers.py FOLDER [KIND ...]`: for a Python that runs no pytest
    write_random_weights(sys.argv[1], kinds=tuple(sys.argv[2:]) or ("sampler", "refiner", "lazova"))
