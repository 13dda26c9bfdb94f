"""Shared by the DensePose tests: the real samples, the comparison, the torchvision skip.

Not a test module. The stand-in model these tests build is core/densepose/standin.py (a STAND-IN,
not DensePose: it reproduces a real DensePose output through the real extractor).
"""

from __future__ import annotations

import numpy as np
import pytest

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


def compare(real: np.ndarray, got: np.ndarray) -> dict:
    """Part agreement (pixels where either has a body), body IoU, and U/V error (0..255) where the parts agree."""
    a, b = real[..., 0], got[..., 0]
    union = (a > 0) | (b > 0)
    same = (a == b) & (a > 0)
    du = np.abs(real[..., 1].astype(np.int16) - got[..., 1])[same]
    dv = np.abs(real[..., 2].astype(np.int16) - got[..., 2])[same]
    return {"part_agreement": float((a == b)[union].mean()), "body_iou": float(((a > 0) & (b > 0)).sum() / union.sum()),
            "u_mae": float(du.mean()), "v_mae": float(dv.mean()),
            "u_p99": float(np.percentile(du, 99)), "v_p99": float(np.percentile(dv, 99))}
