"""The correspondence prior: which texels predict each texel's colour, learned in closed form from textures.

SamplerNet fills an unseen texel by sampling seen ones. *Which* seen ones is what this prior knows.
For every pair of chart texels (t, s) of the atlas at `size`², over the training textures n (and their
left/right mirror images),

    cost[t, s] = mean_n ‖T_n[t] − T_n[s]‖²          (mean squared RGB difference, valid pairs only)

and each texel keeps its K cheapest sources (itself excluded). The full matrix would be 10 GB at 256²;
it is computed in row chunks and only the top K are kept (`build_prior`).

At inference (`prior_grids`), for a visibility mask, each unseen texel takes up to `slots` of its
K sources that were *seen*, in rank order, weighted by exp(−(cost − best)/temperature). Every slot j is a
sampling grid, identity + offset_j, so the texture is filled by the paper's operation
T_sample = Σ_j w_j · grid_sample(partial, grid_j) (premultiplied by visibility, see networks.py).
Texels none of whose sources were seen are filled in a second pass from the texels the first pass
filled (`passes`); what remains after that gets a smooth push-pull of its part's known colours
(grid_prior.smooth_fill; SamplerNet's `prior_fill`).

      visibility ──► seen sources of each texel (top-K list ∩ seen) ──► slots × (offset, weight)
                                                                         │ upsampled to the output size
      partial (full resolution) ───────────────────────────────────────► Σ_j w_j · grid_sample(·, id + offset_j)

The offsets are upsampled with nearest neighbours: a texel inside one prior cell reads the same
relative position inside its source cell, so the full-resolution photo detail is sampled, not the
prior's cells (no blocks).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError
from .networks import identity_grid, premultiply_channels_last

PRIOR_FORMAT = "blender_humantex.correspondence_prior.v1"
FILL_PASS_SIZE = 128  # passes after the first (filling from filled texels) run at most at this size


@dataclass(frozen=True)
class CorrespondencePrior:
    size: int  # atlas resolution the prior was built at
    sources: np.ndarray  # uint16/int32 size²×K: flat index (row·size + col) of each texel's sources, best first
    cost: np.ndarray  # float16 size²×K: their mean squared RGB difference (ascending); inf where none
    metadata: dict

    @property
    def k(self) -> int:
        return self.sources.shape[1]


def build_prior(textures: np.ndarray, valid: np.ndarray, chart: np.ndarray, k: int = 32,
                chunk: int = 2048, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """textures N×S×S×3, valid N×S×S, chart S×S -> (sources S²×K int32, cost S²×K float32).

    Texels outside the chart get no sources (index 0, cost inf). Pairs count only where both texels are
    valid in a texture; a pair valid in no texture costs inf.
    """
    import torch

    n, size = textures.shape[0], textures.shape[1]
    texels = np.flatnonzero(chart.reshape(-1))  # T chart texels
    colour = torch.from_numpy(textures.reshape(n, -1, 3)[:, texels].astype(np.float32))  # N×T×3
    weight = torch.from_numpy(valid.reshape(n, -1)[:, texels].astype(np.float32))  # N×T
    colour = colour * weight[..., None]
    a = colour.permute(1, 0, 2).reshape(len(texels), n * 3).to(device)  # T×3N
    m = weight.t().contiguous().to(device)  # T×N
    q = (colour.pow(2).sum(-1) * weight).t().contiguous().to(device)  # T×N  ‖T_n[t]‖² where valid
    sources = np.zeros((size * size, k), np.int32)
    cost = np.full((size * size, k), np.inf, np.float32)
    for start in range(0, len(texels), chunk):
        rows = slice(start, start + chunk)
        pairs = m[rows] @ m.t()  # c×T: textures where both are valid
        total = q[rows] @ m.t() + m[rows] @ q.t() - 2 * (a[rows] @ a.t())  # c×T: Σ_n ‖T_n[t] − T_n[s]‖²
        mean = total.clamp_min(0) / pairs.clamp_min(1)
        mean[pairs < 1] = float("inf")
        idx = torch.arange(mean.shape[0], device=device)
        mean[idx, idx + start] = float("inf")  # a texel is not its own source
        best, where = torch.topk(mean, k, dim=1, largest=False)  # c×K
        sources[texels[rows]] = texels[where.cpu().numpy()]
        cost[texels[rows]] = best.cpu().numpy()
    return sources, cost


def save_prior(path, sources: np.ndarray, cost: np.ndarray, size: int, metadata: dict):
    from ..uv_layout import get_layout
    from .data_models import write_data_model

    # Only chart texels have sources: store their rows (77% of the square), with 16-bit indices.
    # (contiguous copies: safetensors writes an array's buffer as it lies in memory)
    rows = np.flatnonzero(get_layout(size).chart_mask.reshape(-1))
    index_dtype = np.uint16 if size * size <= 1 << 16 else np.int32
    tensors = {"sources": np.ascontiguousarray(sources[rows], index_dtype),
               "cost": np.ascontiguousarray(np.minimum(cost[rows], 6e4), np.float16)}
    return write_data_model(path, tensors, PRIOR_FORMAT, {"size": size, "k": sources.shape[1], **metadata})


def load_prior(path) -> CorrespondencePrior:
    """Read a prior file; anything missing or inconsistent is a one-line WeightsError."""
    from ..uv_layout import get_layout
    from .data_models import read_data_model

    meta, tensors, size = read_data_model(path, PRIOR_FORMAT, "correspondence prior", ("sources", "cost"))
    sources, cost, name = tensors["sources"], tensors["cost"], Path(path).name
    rows = np.flatnonzero(get_layout(size).chart_mask.reshape(-1))
    if sources.shape != cost.shape or sources.ndim != 2 or sources.shape[0] != len(rows):
        raise WeightsError(f"{name}: sources {sources.shape} and cost {cost.shape} do not fit size {size}")
    if sources.size and int(sources.max()) >= size * size:
        raise WeightsError(f"{name}: a source index lies outside the {size}² atlas")
    full_sources = np.zeros((size * size, sources.shape[1]), np.int64)
    full_cost = np.full((size * size, sources.shape[1]), np.inf, np.float32)
    full_sources[rows], full_cost[rows] = sources, cost
    return CorrespondencePrior(size, full_sources, full_cost, meta)


# ----------------------------------------------------------------------------- inference (torch)


def select_sources(prior_sources, prior_cost, seen, slots: int, temperature: float):
    """Each texel's first `slots` seen sources.

    prior_sources, prior_cost: T×K tensors (flat texel index, cost); seen: N×T bool (flattened mask).
    -> (index N×T×slots, weight N×T×slots); weight 0 where a slot has no seen source.
    """
    import torch

    n = seen.shape[0]
    k = prior_sources.shape[1]
    seen_source = seen[:, prior_sources]  # N×T×K
    rank = torch.arange(k, device=seen.device)
    key = torch.where(seen_source, rank, rank + k)  # seen sources first, each group in cost order
    order = key.topk(min(slots, k), dim=-1, largest=False).indices  # N×T×slots
    index = prior_sources.expand(n, -1, -1).gather(-1, order)
    cost = prior_cost.expand(n, -1, -1).gather(-1, order)
    ok = seen_source.gather(-1, order)
    best = torch.where(ok, cost, torch.full_like(cost, float("inf"))).amin(-1, keepdim=True)
    # (a texel with no seen source has best = inf; where() keeps inf − inf out of the arithmetic)
    excess = torch.where(ok, cost - best, torch.zeros_like(cost)).clamp_min(0)
    weight = torch.where(ok, torch.exp(-excess / temperature), torch.zeros_like(cost))
    return index, weight


class PriorSampler(nn.Module):
    """Fills a partial texture by sampling its seen texels where the correspondence prior points.

    An nn.Module whose tensors are non-persistent buffers: `.to`, `.half()` and `print` see them, and the
    sampler's state_dict (its weights file) does not hold them (they come from the prior's own file).
    `forward` is the closed-form part of SamplerNet.
    """

    def __init__(self, prior: CorrespondencePrior, slots: int = 16, temperature: float = 0.01, passes: int = 3,
                 device="cpu"):
        from ..uv_layout import get_layout

        super().__init__()
        self.prior, self.size = prior, prior.size
        self.slots, self.temperature, self.passes = slots, temperature, passes
        r = self.size
        ty, tx = np.divmod(np.arange(r * r), r)
        buffers = {
            "sources": torch.from_numpy(prior.sources),  # r²×K
            "cost": torch.from_numpy(prior.cost),  # r²×K
            "chart": torch.from_numpy(get_layout(r).chart_mask.reshape(-1).copy()),  # r²
            "texel_yx": torch.from_numpy(np.stack([ty, tx])),  # 2×r²
        }
        for name, tensor in buffers.items():
            self.register_buffer(name, tensor.to(device), persistent=False)

    def extra_repr(self) -> str:
        return f"size={self.size}, k={self.prior.k}, slots={self.slots}, temperature={self.temperature}, passes={self.passes}"

    def slot_grids(self, seen):
        """seen N×r² bool -> (offset N×slots×2×r×r in normalised (x, y), weight N×slots×1×r×r)."""
        r, n = self.size, seen.shape[0]
        offset, weight = self.slot_sources(seen)  # N×r²×slots×2, N×r²×slots
        offset = offset.permute(0, 2, 3, 1).reshape(n, -1, 2, r, r)  # N×slots×2×r×r
        weight = weight.permute(0, 2, 1).reshape(n, -1, 1, r, r)
        return offset, weight

    def slot_sources(self, seen):
        """seen N×r² bool -> (offset N×r²×slots×2: source − texel in normalised (x, y), weight N×r²×slots),
        weight 0 but at unseen chart texels (the only ones a pass fills; only their rows are computed)."""
        r, n = self.size, seen.shape[0]
        todo = self.chart & ~seen  # N×r²
        rows = todo.any(0).nonzero().squeeze(1)  # T': texels some item fills
        index, weight = select_sources(self.sources[rows], self.cost[rows], seen, self.slots, self.temperature)
        weight = weight * todo[:, rows, None]  # N×T'×slots
        offset_x = (index % r - self.texel_yx[1][rows][None, :, None]).float() * (2.0 / r)
        offset_y = (index // r - self.texel_yx[0][rows][None, :, None]).float() * (2.0 / r)
        offset = torch.zeros(n, r * r, weight.shape[-1], 2, dtype=offset_x.dtype, device=seen.device)
        full_weight = torch.zeros(n, r * r, weight.shape[-1], dtype=weight.dtype, device=seen.device)
        offset[:, rows] = torch.stack([offset_x, offset_y], dim=-1)
        full_weight[:, rows] = weight
        return offset, full_weight

    def forward(self, partial_texture, visibility, offset=None):
        """partial N×3×H×W, visibility N×1×H×W (soft) -> (T_sample N×3×H×W, reached N×1×H×W).

        `offset` (N×2×h×w, normalised x, y; any size, bilinear-upsampled to H×W) is SamplerNet's learned
        correction, added to every grid of the first pass (the one that reads the photo's own texels).
        `reached` marks texels the prior filled (seen texels included); SamplerNet gives the rest the
        structural fallback grid.
        """
        from .resample import resize_partial

        n, _, h, w = partial_texture.shape
        # Pass 1 reads the photo's own texels at full resolution (the detail).
        texture, known = self._first_pass(partial_texture, visibility, offset)
        if self.passes == 1:
            return texture, known
        # Later passes only spread what pass 1 filled into regions with no seen source: at most at 128²,
        # composited into the full-resolution texture once.
        size = (min(h, FILL_PASS_SIZE), min(w, FILL_PASS_SIZE))
        small, small_known = resize_partial(texture, known, size) if size != (h, w) else (texture, known)
        identity = identity_grid(n, *size, partial_texture.device)
        for _ in range(self.passes - 1):
            small, small_known, progressed = self._fill_pass(small, small_known, identity)
            if not progressed:
                break
        return composite_fill(texture, known, small, small_known)

    def _first_pass(self, partial_texture, visibility, offset):
        """Pass 1 at the full resolution, gathering only what it changes: the unseen texels of cells with a seen
        source, each slot only where its weight is not 0. Equal to _fill_pass over identity + offset (the
        slot maps upsampled with nearest neighbours). -> new (texture, known) tensors."""
        from .resample import resize

        n, _, h, w = partial_texture.shape
        r = self.size
        texture = partial_texture.clone(memory_format=torch.contiguous_format)
        known = visibility.clone(memory_format=torch.contiguous_format)
        seen = (resize(visibility, (r, r)) > 0.5).reshape(n, -1)  # N×r²
        if not (self.chart & ~seen).any():
            return texture, known
        slot_offset, slot_weight = self.slot_sources(seen)  # N×r²×S×2, N×r²×S
        rows, cols = nearest_cells(h, r, texture.device), nearest_cells(w, r, texture.device)
        for i in range(n):
            premultiplied = premultiply_channels_last(partial_texture[i], visibility[i])
            learned = None if offset is None else offset[i]
            fill_texels(texture[i], known[i], premultiplied, learned, slot_offset[i], slot_weight[i], rows, cols)
        return texture, known

    def _fill_pass(self, texture, known, base):
        """One pass at texture's size: unseen chart texels mix their seen sources (grids base + offset_j).
        -> (texture, known, whether anything was filled)."""
        import torch

        from .resample import resize

        n, _, h, w = texture.shape
        r = self.size
        seen = (resize(known, (r, r)) > 0.5).reshape(n, -1)  # N×r²
        if not (self.chart & ~seen).any():
            return texture, known, False
        slot_offset, slot_weight = self.slot_grids(seen)  # N×slots×2×r×r, N×slots×1×r×r
        used = slot_weight.flatten(2).any(-1).any(0)  # slots: which hold a source anywhere in the batch
        if not used.any():
            return texture, known, False
        premultiplied = torch.cat([texture * known, known], dim=1)  # N×4×h×w
        total = self._sample_slots(premultiplied, base, slot_offset[:, used], slot_weight[:, used])
        reached = (total[:, 3:] > 1e-3).float()  # N×1×h×w: some seen colour arrived
        colour = total[:, :3] / total[:, 3:].clamp_min(1e-3)
        fill = reached * (1 - known)
        return texture * (1 - fill) + colour * fill, torch.maximum(known, reached), True

    @staticmethod
    def _sample_slots(premultiplied, base, slot_offset, slot_weight, max_texels: int = 1 << 21):
        """Σ_j w_j · grid_sample(premultiplied, base + offset_j), evaluated only at the texels some slot
        fills (the unseen chart texels): seen texels and the background get 0, as w_j is 0 there.
        Why sparse: at 2048² and above the dense form sampled every texel once per slot (4× the old
        single-grid time); the unseen texels are typically under half the atlas. Slots go into
        grid_sample's output rows, a few at a time (at most `max_texels` samples per call: bounded memory).

        premultiplied N×C×h×w, base N×h×w×2, slot_offset N×S×2×r×r, slot_weight N×S×1×r×r -> N×C×h×w.
        """
        import torch
        import torch.nn.functional as F

        n, c, h, w = premultiplied.shape
        slots, r = slot_offset.shape[1], slot_offset.shape[-1]
        # nearest-neighbour upsampling of the r×r slot maps, as index maps (F.interpolate's own rounding)
        rows = F.interpolate(torch.arange(r, dtype=torch.float32).view(1, 1, r), size=h, mode="nearest").long().view(h)
        cols = F.interpolate(torch.arange(r, dtype=torch.float32).view(1, 1, r), size=w, mode="nearest").long().view(w)
        rows, cols = rows.to(premultiplied.device), cols.to(premultiplied.device)
        filled = slot_weight.flatten(1, 2).any(1)  # N×r×r: texels some slot fills
        total = torch.zeros(n, c, h * w, dtype=premultiplied.dtype, device=premultiplied.device)
        for i in range(n):
            where = filled[i][rows][:, cols].reshape(-1).nonzero().squeeze(1)  # M flat indices into h×w
            if where.numel() == 0:
                continue
            cell = rows[where // w] * r + cols[where % w]  # M: each texel's r×r cell
            point = base[i].reshape(-1, 2)[where]  # M×2
            offsets = slot_offset[i].flatten(2)[:, :, cell]  # S×2×M
            weights = slot_weight[i].flatten(2)[:, 0, cell]  # S×M
            acc = torch.zeros(c, where.numel(), dtype=premultiplied.dtype, device=premultiplied.device)
            per_call = max(1, min(slots, max_texels // where.numel()))
            for start in range(0, slots, per_call):
                k = min(per_call, slots - start)
                wk = weights[start : start + k]  # k×M
                if not wk.any():
                    continue
                grid = point[None] + offsets[start : start + k].permute(0, 2, 1)  # k×M×2
                sampled = F.grid_sample(premultiplied[i : i + 1], grid[None], mode="bilinear", padding_mode="zeros",
                                        align_corners=False)[0]  # C×k×M
                acc = acc + (sampled * wk[None]).sum(1)
            total[i].index_add_(1, where, acc)
        return total.view(n, c, h, w)




@lru_cache(maxsize=16)
def _nearest_cells(out: int, r: int) -> torch.Tensor:
    return F.interpolate(torch.arange(r, dtype=torch.float32).view(1, 1, r), size=out, mode="nearest").long().view(out)


def nearest_cells(out: int, r: int, device) -> torch.Tensor:
    """int64 out: the r-cell each of `out` rows (or columns) lies in, as F.interpolate(mode="nearest") picks it."""
    return _nearest_cells(out, r).to(device)


BLOCK_TEXELS = 1 << 18  # texels per block of rows the sparse passes work on (bounds their per-texel temporaries)


def fill_texels(texture, known, premultiplied, learned, slot_offset, slot_weight, rows, cols):
    """One texture's first pass, in place: each unseen texel t of a cell c with seen sources becomes
    Σ_j w_cj · premultiplied(t + learned(t) + offset_cj) (bilinear) divided by its sampled visibility.

    texture 3×h×w, known 1×h×w (written), premultiplied 1×4×h×w, learned 2×h'×w' or None, slot_offset r²×S×2,
    slot_weight r²×S, rows/cols: each texel's cell row/column. Done in blocks of rows (BLOCK_TEXELS): every
    texel's result is its own (premultiplied is not written), so blocks only bound the temporaries (~0.6 GB
    less at 4096²).
    """
    _, h, w = texture.shape
    r = int(round(slot_weight.shape[0] ** 0.5))
    slots = slot_weight.shape[1]
    rank = torch.arange(1, slots + 1, device=slot_weight.device)
    count = ((slot_weight > 0) * rank).amax(-1).to(torch.uint8)  # r²: slots up to the last one with a weight
    per_texel = count.view(r, r)[rows][:, cols] * (known[0] < 1)  # h×w: 0 where the pass changes nothing
    block = max(1, BLOCK_TEXELS // w)
    for top in range(0, h, block):
        yx = per_texel[top : top + block].nonzero()  # M×2 (row from `top`, column)
        if yx.shape[0]:
            yx[:, 0] += top
            _fill_block(texture, known, premultiplied, learned, slot_offset, slot_weight, rows, cols,
                        yx, per_texel[yx[:, 0], yx[:, 1]])


def _fill_block(texture, known, premultiplied, learned, slot_offset, slot_weight, rows, cols, yx, uses_of):
    """fill_texels at the texels yx (M×2 row, column), each using its cell's first uses_of (M) slots."""
    _, h, w = texture.shape
    r = int(round(slot_weight.shape[0] ** 0.5))
    slots = slot_weight.shape[1]
    # texels grouped by their slot count, most first: slot j is then sampled on a prefix of them
    groups = [(uses_of == c).nonzero().squeeze(1) for c in range(slots, 0, -1)]
    yx = yx[torch.cat(groups)]
    cell = rows[yx[:, 0]] * r + cols[yx[:, 1]]  # M
    uses = torch.tensor([len(g) for g in groups]).cumsum(0).flip(0)  # uses[j]: texels with count > j
    del groups
    point = texel_points(yx, h, w, learned)  # M×2 normalised (x, y)
    acc = torch.zeros(4, yx.shape[0], dtype=premultiplied.dtype, device=premultiplied.device)
    for j in range(slots):
        m = int(uses[j])
        if m == 0:
            break
        grid = point[:m] + slot_offset[:, j].index_select(0, cell[:m])  # m×2
        sampled = F.grid_sample(premultiplied, grid.view(1, 1, m, 2), mode="bilinear", padding_mode="zeros",
                                align_corners=False)[0, :, 0]  # 4×m
        acc[:, :m] += sampled * slot_weight[:, j].index_select(0, cell[:m])
    where = yx[:, 0] * w + yx[:, 1]
    _blend_in(texture, known, where, acc[:3] / acc[3:].clamp_min(1e-3), (acc[3] > 1e-3).to(texture.dtype))


def texel_points(yx, h: int, w: int, learned=None):
    """Texels M×2 (row, column) -> M×2 grid points (x, y): the texel centres (identity_grid's arithmetic) plus
    the learned offset there (2×h'×w', bilinear as resample.resize upsamples it)."""
    ty, tx = yx[:, 0], yx[:, 1]
    point = torch.stack([(tx.float() * 2 + 1) / w - 1, (ty.float() * 2 + 1) / h - 1], dim=-1)  # M×2
    if learned is None:
        return point
    if tuple(learned.shape[-2:]) == (h, w):
        return point + learned[:, ty, tx].t()
    # F.interpolate(bilinear, align_corners=False) of the small map, read at these texels only
    return point + F.grid_sample(learned[None].float(), point.view(1, 1, -1, 2), mode="bilinear",
                                 padding_mode="border", align_corners=False)[0, :, 0].t()


def _blend_in(texture, known, where, colour, reached):
    """texture 3×h×w, known 1×h×w, in place at the flat texels `where`: fill = reached·(1 − known),
    texture ← texture·(1 − fill) + colour·fill, known ← max(known, reached) (what _fill_pass does densely)."""
    flat, flat_known = texture.view(3, -1), known.view(-1)
    k = flat_known.index_select(0, where)
    fill = reached * (1 - k)
    flat.index_copy_(1, where, flat.index_select(1, where) * (1 - fill) + colour * fill)
    flat_known.index_copy_(0, where, torch.maximum(k, reached))


def composite_fill(texture, known, small, small_known):
    """The later passes' result (at a smaller size) into the full-resolution texture, in place:
    reached = upsampled small_known > 0.5, fill = reached·(1 − known), texture ← texture·(1 − fill) +
    upsampled small·fill; bilinear upsampling read only at the texels not yet known (the others keep theirs)."""
    n, _, h, w = texture.shape
    if tuple(small.shape[-2:]) == (h, w):
        reached = (small_known > 0.5).to(texture.dtype)
        fill = reached * (1 - known)
        return texture * (1 - fill) + small * fill, torch.maximum(known, reached)
    both = torch.cat([small, small_known], dim=1)  # N×4×s×s
    # only texels whose bilinear footprint (within one small cell of their own) holds something reached
    near = F.max_pool2d((small_known > 0.5).to(texture.dtype), 3, stride=1, padding=1) > 0  # N×1×s×s
    rows, cols = nearest_cells(h, small.shape[-2], texture.device), nearest_cells(w, small.shape[-1], texture.device)
    for i in range(n):
        yx = (near[i, 0][rows][:, cols] & (known[i, 0] < 1)).nonzero()  # M×2
        point = texel_points(yx, h, w).view(1, 1, -1, 2)
        up = F.grid_sample(both[i : i + 1], point, mode="bilinear", padding_mode="border", align_corners=False)[0, :, 0]
        _blend_in(texture[i], known[i], yx[:, 0] * w + yx[:, 1], up[:3], (up[3] > 0.5).to(texture.dtype))
    return texture, known

