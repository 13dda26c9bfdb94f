"""What the test files share: the CLI runner, the one-line error check, the random-weights writer,
the real DensePose samples and their comparison. (Fixtures are in conftest.py; test files never import
each other.)"""

from __future__ import annotations

import contextlib
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


# ---- downloads: a real HTTP server on 127.0.0.1


@contextlib.contextmanager
def http_server(body: bytes):
    """A real HTTP server on 127.0.0.1 in a thread, serving `body`: /file... whole, /cut announces all of it,
    sends a third and hangs up, /slow trickles it (16 KB every 0.1 s), anything else is 404.
    Yields (base URL, hits: {path: GET count})."""
    import http.server
    import threading
    import time

    hits: dict[str, int] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            hits[self.path] = hits.get(self.path, 0) + 1
            if not self.path.startswith(("/file", "/cut", "/slow")):
                self.send_error(404, "Not Found")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            sent = body[: len(body) // 3] if self.path == "/cut" else body
            step = 16 << 10 if self.path == "/slow" else len(sent)
            for start in range(0, len(sent), step):
                try:
                    self.wfile.write(sent[start:start + step])
                except OSError:  # the client went away (a cancel): stop sending
                    return
                if self.path == "/slow":
                    time.sleep(0.1)
            self.close_connection = True

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    finally:
        httpd.shutdown()
        httpd.server_close()


# ---- DensePose: every real sample, the comparison, and the skip when torchvision is missing

# Every real DensePose IUV in ../shared/data/densepose_samples: (name, IUV, INDS or None, photo or None).
CASES = [
    ("pr99", "densepose_pr99/IUV.png", "densepose_pr99/INDS.png", "densepose_pr99/im.jpg"),
    ("demo", "densepose_demo/demo_im_IUV.png", "densepose_demo/demo_im_INDS.png", "densepose_demo/demo_im.jpg"),
    ("smplitex", "smplitex_example/MEN-Jackets_Vests-id_00003336-09_1_front_densepose.png", None,
     "smplitex_example/MEN-Jackets_Vests-id_00003336-09_1_front.jpg"),
    ("pws_blouse", "pose_with_style/fashionWOMENBlouses_Shirtsid0000635004_1front_iuv.png", None,
     "pose_with_style/fashionWOMENBlouses_Shirtsid0000635004_1front.png"),
    ("pws_dress_front", "pose_with_style/fashionWOMENDressesid0000262902_1front_iuv.png", None, None),
    ("pws_dress_back", "pose_with_style/fashionWOMENDressesid0000262902_3back_iuv.png", None,
     "pose_with_style/fashionWOMENDressesid0000262902_3back.png"),
    ("pws_skirt", "pose_with_style/fashionWOMENSkirtsid0000177102_1front_iuv.png", None,
     "pose_with_style/fashionWOMENSkirtsid0000177102_1front.png"),
]
CASE_IDS = [c[0] for c in CASES]


def require_torchvision():
    """Skip the calling module when torchvision cannot be imported beside this torch."""
    import pytest

    try:
        import torchvision  # noqa: F401
    except Exception as e:  # not installed, or built for another torch
        pytest.skip(f"torchvision is not usable in this environment ({type(e).__name__}: {e}); the DensePose tests"
                    " need the worker's pinned pair: pip install torch==2.14.1 torchvision==0.29.1",
                    allow_module_level=True)


def read_case(samples, case):
    """(I,U,V uint8 H×W×3, INDS uint8 H×W or None) of a case."""
    from blender_humantex.core.imageio import read_raw_u8
    from blender_humantex.core.sources.iuv import iuv_channels

    _, iuv_rel, inds_rel, _ = case
    iuv, _ = iuv_channels(read_raw_u8(samples / iuv_rel))
    inds = None if inds_rel is None else read_raw_u8(samples / inds_rel)
    return iuv, inds


def compare(real, got) -> dict:
    """Part agreement (pixels where either has a body), body IoU, and U/V error (0..255) where the parts agree."""
    import numpy as np

    a, b = real[..., 0], got[..., 0]
    union = (a > 0) | (b > 0)
    same = (a == b) & (a > 0)
    du = np.abs(real[..., 1].astype(np.int16) - got[..., 1])[same]
    dv = np.abs(real[..., 2].astype(np.int16) - got[..., 2])[same]
    return {"part_agreement": float((a == b)[union].mean()), "body_iou": float(((a > 0) & (b > 0)).sum() / union.sum()),
            "u_mae": float(du.mean()), "v_mae": float(dv.mean()),
            "u_p99": float(np.percentile(du, 99)), "v_p99": float(np.percentile(dv, 99))}


if __name__ == "__main__":  # `python tests/helpers.py FOLDER [KIND ...]`: for a Python that runs no pytest
    write_random_weights(sys.argv[1], kinds=tuple(sys.argv[2:]) or ("sampler", "refiner", "lazova"))
