"""Dense correspondence between a target and a reference: the Similarity sub-net of He et al.
2018 (section 3.1) on a five-level feature pyramid.

1. Global matching at a coarse level (default level 4, stride 8): every target position is
   compared by cosine similarity with every reference position (``match``: max, argmax and
   a temperature softmax over all reference positions, computed in bounded chunks here and
   by a fused tiled kernel on CUDA, so the N x M similarity matrix is never held whole).
2. Coarse-to-fine refinement: the nearest-neighbour field is carried to each finer level and
   every match is re-chosen within a small window around its up-sampled position.
3. Both directions are matched: ``phi_T->R`` and ``phi_R->T``; the bidirectional similarity
   maps at all five levels are cosines at the matched (and cycle-mapped) positions, and the
   reference chrominance is warped onto the target: ``R'_ab(p) = R_ab(phi_T->R(p))``.

Fields are ``(B, h, w, 2)`` tensors of normalised ``(x, y)`` coordinates in [-1, 1]
(``align_corners=False``), so they index any level of either image with ``grid_sample``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidcolor.models.exemplar.matching import CHUNK_ELEMENTS, Match, flatten, l2_normalise, match_reference


def match(query, keys, values=None, temperature=None) -> Match:
    """For each query row: the max and argmax of its cosine similarity with all key rows, and
    optionally the softmax(sim / temperature)-weighted mean of the values.

    query ``(B, N, C)`` and keys ``(B or 1, M, C)`` are unit vectors; values ``(B or 1, M, D)``.
    Uses the fused kernel on CUDA when available, the chunked reference otherwise.
    """
    if query.is_cuda:
        from vidcolor.models.exemplar.kernels import fused_match

        if fused_match is not None:
            return fused_match(query, keys, values, temperature)
    return match_reference(query, keys, values, temperature)


# --- coordinates -------------------------------------------------------------------------

def pixel_grid(b: int, h: int, w: int, device, dtype=torch.float32) -> torch.Tensor:
    """Identity field ``(b, h, w, 2)``: normalised centres of an ``h x w`` grid."""
    ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) * (2.0 / h) - 1.0
    xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) * (2.0 / w) - 1.0
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)
    return grid.expand(b, h, w, 2)


def to_pixels(field: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Normalised field -> integer ``(x, y)`` pixel indices of an ``h x w`` grid (clamped)."""
    x = ((field[..., 0] + 1.0) * w / 2.0 - 0.5).round().clamp(0, w - 1)
    y = ((field[..., 1] + 1.0) * h / 2.0 - 0.5).round().clamp(0, h - 1)
    return torch.stack((x, y), -1).long()


def to_field(pixels: torch.Tensor, h: int, w: int, dtype=torch.float32) -> torch.Tensor:
    scale = torch.tensor([2.0 / w, 2.0 / h], device=pixels.device, dtype=dtype)
    return (pixels.to(dtype) + 0.5) * scale - 1.0


def resize_field(field: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """A field on an ``h x w`` grid (its values need no rescaling): nearest when enlarging,
    the mean position of each cell when reducing (a cell centre for the identity)."""
    if field.shape[1:3] == (h, w):
        return field
    mode = "nearest" if h >= field.shape[1] and w >= field.shape[2] else "area"
    return F.interpolate(field.permute(0, 3, 1, 2), size=(h, w), mode=mode).permute(0, 2, 3, 1)


def sample(image: torch.Tensor, field: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """``image`` ``(B or 1, C, H, W)`` read at ``field`` ``(B, h, w, 2)`` -> ``(B, C, h, w)``."""
    if image.shape[0] != field.shape[0]:
        image = image.expand(field.shape[0], -1, -1, -1)
    return F.grid_sample(image, field.to(image.dtype), mode=mode, padding_mode="border", align_corners=False)


# --- matching ----------------------------------------------------------------------------

def matching_features(levels: list[torch.Tensor], level: int) -> torch.Tensor:
    """Unit features at ``level`` (1-based) from that level and every coarser one, each
    normalised, brought to the level's size and weighted equally."""
    h, w = levels[level - 1].shape[-2:]
    parts = [
        l2_normalise(F.interpolate(f, size=(h, w), mode="bilinear", align_corners=False) if f.shape[-2:] != (h, w) else f)
        for f in levels[level - 1 :]
    ]
    return l2_normalise(torch.cat(parts, 1))


def _neighbour_centres(centre: torch.Tensor) -> torch.Tensor:
    """PatchMatch-style propagation: for each position, its own match and the matches of its
    four neighbours moved back by the step to that neighbour. ``(B, h, w, 2)`` -> ``(B, h, w, 5, 2)``."""
    padded = F.pad(centre.permute(0, 3, 1, 2).float(), (1, 1, 1, 1), mode="replicate").permute(0, 2, 3, 1).long()
    h, w = centre.shape[1:3]
    out = [centre]
    for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        step = torch.tensor([dx, dy], device=centre.device)
        out.append(padded[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] - step)
    return torch.stack(out, 3)


def refine(field: torch.Tensor, target: torch.Tensor, reference: torch.Tensor, radius: int = 1,
           propagate: bool = True, chunk_elements: int = CHUNK_ELEMENTS) -> torch.Tensor:
    """Re-choose every match among the reference positions within ``radius`` of its current
    match and the matches of its four neighbours (propagated), by cosine similarity of unit features
    ``target`` ``(B, C, h, w)`` and ``reference`` ``(B or 1, C, H, W)``; ``field`` is
    ``(B, h, w, 2)``. ``propagate=False`` searches the window of the own match only."""
    b, c, h, w = target.shape
    hr, wr = reference.shape[-2:]
    centres = to_pixels(field, hr, wr)
    offsets = torch.arange(-radius, radius + 1, device=field.device)
    dy, dx = torch.meshgrid(offsets, offsets, indexing="ij")
    window = torch.stack((dx.flatten(), dy.flatten()), -1)  # (K, 2)
    cand = centres.unsqueeze(3) + window  # (B, h, w, K, 2)
    if propagate:  # plus the neighbours' matches, moved back by one step
        cand = torch.cat((cand, _neighbour_centres(centres)[:, :, :, 1:]), 3)
    cand[..., 0].clamp_(0, wr - 1)
    cand[..., 1].clamp_(0, hr - 1)
    k = cand.shape[3]
    flat_index = (cand[..., 1] * wr + cand[..., 0]).view(b, h * w, k)  # (B, N, K)
    keys = flatten(reference)  # (B or 1, M, C)
    query = flatten(target)  # (B, N, C)
    rows = max(1, chunk_elements // max(1, k * c))
    best = torch.empty(b, h * w, dtype=torch.long, device=field.device)  # flat reference index
    for j in range(b):
        table = keys[j if keys.shape[0] > 1 else 0]  # (M, C)
        for i in range(0, h * w, rows):
            idx = flat_index[j, i : i + rows]  # (n, K)
            scores = torch.einsum("nkc,nc->nk", table[idx], query[j, i : i + rows])  # (n, K)
            best[j, i : i + rows] = torch.gather(idx, 1, scores.argmax(1, keepdim=True)).squeeze(1)
    pixels = torch.stack((best % wr, best // wr), -1).view(b, h, w, 2)
    return to_field(pixels, hr, wr, field.dtype)


def nearest_field(target: list[torch.Tensor], reference: list[torch.Tensor], match_level: int = 4,
                  finest: int = 1, radius: int = 1, propagate: bool = True, iterations: int = 2,
                  start: torch.Tensor | None = None) -> torch.Tensor:
    """``phi_T->R`` on the grid of level ``finest``: global matching at ``match_level`` then
    ``iterations`` rounds of window search and propagation at each finer level. Pyramids
    hold unit features. ``start``: a field to refine instead (a tracked frame's, carried
    from the previous one): one round at level ``finest`` only, no global search."""
    if start is not None:
        t, r = target[finest - 1], reference[finest - 1]
        return refine(resize_field(start, *t.shape[-2:]), t, r, radius, propagate)
    query = matching_features(target, match_level)
    keys = matching_features(reference, match_level)
    b, _, h, w = query.shape
    found = match(flatten(query), flatten(keys))
    wr = keys.shape[-1]
    pixels = torch.stack((found.index % wr, found.index // wr), -1).view(b, h, w, 2)
    field = to_field(pixels, *keys.shape[-2:], dtype=query.dtype)
    for level in range(match_level - 1, finest - 1, -1):
        t, r = target[level - 1], reference[level - 1]
        field = resize_field(field, *t.shape[-2:])
        for _ in range(iterations):
            field = refine(field, t, r, radius, propagate)
    return field


@dataclass
class Correspondence:
    """The Similarity sub-net's outputs on the target's grid ``(h, w)``."""

    forward: torch.Tensor  # phi_T->R (B, h, w, 2)
    cycle: torch.Tensor  # phi_R->T(phi_T->R(p)) (B, h, w, 2): target positions
    warped_ab: torch.Tensor  # R'_ab (B, 2, h, w)
    similarity: torch.Tensor  # (B, 10, h, w): sim_T->R levels 1-5, then sim_R->T levels 1-5
    backward: torch.Tensor | None = None  # phi_R->T (B, H', W', 2) on the reference's finest searched grid

    @staticmethod
    def cat(parts: list["Correspondence"]) -> "Correspondence":
        """Frames found one by one, as one batch."""
        return Correspondence(*(torch.cat([getattr(p, f) for p in parts]) for f in
                                ("forward", "cycle", "warped_ab", "similarity", "backward")))

    def score(self) -> torch.Tensor:
        """Each frame's mean forward similarity ``(B,)``: how well it found itself in the reference."""
        return self.similarity[:, :5].mean((1, 2, 3))

    def fake_reference(self, target_ab: torch.Tensor) -> torch.Tensor:
        """``T'_ab(p) = T_ab(phi_R->T(phi_T->R(p)))``: the ground truth seen through the cycle."""
        return sample(target_ab, self.cycle)


def level_similarity(a: torch.Tensor, a_field: torch.Tensor | None, b: torch.Tensor, b_field: torch.Tensor) -> torch.Tensor:
    """Cosine between unit features ``a`` read at ``a_field`` (identity when None) and ``b``
    read at ``b_field``, on the field's grid: ``(B, 1, h, w)``."""
    fa = a if a_field is None else l2_normalise(sample(a, a_field))
    fb = l2_normalise(sample(b, b_field))
    return (fa * fb).sum(1, keepdim=True)


def correspond(target: list[torch.Tensor], reference: list[torch.Tensor], reference_ab: torch.Tensor,
               size: tuple[int, int], match_level: int = 4, radius: int = 1,
               start: tuple[torch.Tensor, torch.Tensor] | None = None, finest: int = 1) -> Correspondence:
    """The Similarity sub-net: pyramids of the target ``(B, ...)`` and the reference
    ``(1 or B, ...)``, the reference's ab ``(1 or B, 2, H, W)`` -> inputs of the Colorization
    sub-net at ``size`` (the target's colorization resolution). ``start``: the forward and
    backward fields to refine at level ``finest`` instead of searching (``Tracker``)."""
    b = target[0].shape[0]
    target = [l2_normalise(f) for f in target]
    reference = [l2_normalise(f) for f in reference]
    first, second = (None, None) if start is None else start
    forward = nearest_field(target, reference, match_level, finest, radius, start=first)
    backward = nearest_field([r.expand(b, -1, -1, -1) for r in reference], target, match_level, finest, radius,
                             start=second)
    fine = target[0].shape[-2:]
    forward_fine = resize_field(forward, *fine)
    cycle = sample(resize_field(backward, *reference[0].shape[-2:]).permute(0, 3, 1, 2), forward_fine,
                   mode="nearest").permute(0, 2, 3, 1)
    sims_forward, sims_backward = [], []
    for t, r in zip(target, reference):
        h, w = t.shape[-2:]
        fwd = resize_field(forward_fine, h, w)
        cyc = resize_field(cycle, h, w)
        sims_forward.append(level_similarity(t, None, r, fwd))
        sims_backward.append(level_similarity(t, cyc, r, fwd))
    similarity = torch.cat(
        [F.interpolate(s, size=size, mode="bilinear", align_corners=False) for s in sims_forward + sims_backward], 1
    )
    forward_out = resize_field(forward_fine, *size)
    cycle_out = resize_field(cycle, *size)
    return Correspondence(forward_out, cycle_out, sample(reference_ab, forward_out), similarity, backward)


class Tracker:
    """Correspondence of the consecutive frames of a shot with its reference, at film speed.

    Within a shot the reference is fixed and frames move little: the first frame is searched
    globally (``correspond``); each next one starts from the previous frame's forward and
    backward fields, carried by the optical flow between the grey frames, and refines them
    once at level ``TRACK_LEVEL``. Where the mean similarity falls more than ``DROP`` below
    the last global search's, the frame is searched globally again. ``reset`` at cuts.
    The fields of the last ``KEPT`` references are kept, so frames matched with two
    references in turn (two keyframes blended) are tracked with both.
    """

    TRACK_LEVEL = 2
    DROP = 0.05
    KEPT = 2

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self._last: dict[int, tuple] = {}  # id(reference key) -> (key, grey uint8, forward, backward, score)

    def correspond(self, target: list[torch.Tensor], reference: list[torch.Tensor], reference_ab: torch.Tensor,
                   size: tuple[int, int], greys: list, key: object, match_level: int = 4,
                   radius: int = 1) -> Correspondence:
        """As ``correspond`` for frames ``(B, ...)`` that follow the last call's; ``greys``:
        their grey levels, uint8 ``(h, w)`` each, for the flow; ``key``: the reference's
        identity (a reference not among the last ones starts afresh)."""
        parts = []
        last = self._last.pop(id(key), None)  # holding ``key`` keeps its id from being reused
        for i, grey in enumerate(greys):
            frame = [f[i : i + 1] for f in target]
            found = None
            score = last[4] if last is not None else 0.0  # the last global search's mean similarity
            if last is not None:
                start = carry(last[1:4], grey)
                found = correspond(frame, reference, reference_ab, size, match_level, radius, start, self.TRACK_LEVEL)
                if float(found.score()[0]) < score - self.DROP:
                    found = None
            if found is None:
                found = correspond(frame, reference, reference_ab, size, match_level, radius)
                score = float(found.score()[0])
            level = self.TRACK_LEVEL - 1
            found.backward = resize_field(found.backward, *reference[level].shape[-2:])
            last = (key, grey, resize_field(found.forward, *target[level].shape[-2:]), found.backward, score)
            parts.append(found)
        self._last[id(key)] = last
        while len(self._last) > self.KEPT:
            del self._last[next(iter(self._last))]
        return Correspondence.cat(parts)


def carry(last: tuple, grey) -> tuple[torch.Tensor, torch.Tensor]:
    """The previous frame's fields moved to the next frame by the optical flow between their
    grey levels: the forward field read where each pixel came from, the backward field's
    target positions moved as the target moved."""
    from vidcolor.ops.flow import optical_flow

    previous, forward, backward = last
    h, w = grey.shape
    device = forward.device
    back = torch.from_numpy(optical_flow(grey, previous)).to(device)  # next(p) ~ previous(p + back(p))
    ahead = torch.from_numpy(optical_flow(previous, grey)).to(device)  # previous(p) ~ next(p + ahead(p))
    scale = torch.tensor([2.0 / w, 2.0 / h], device=device)  # pixels -> normalised coordinates
    came_from = pixel_grid(1, h, w, device) + back * scale
    forward_full = resize_field(forward.float(), h, w)
    moved_forward = sample(forward_full.permute(0, 3, 1, 2), came_from, mode="nearest").permute(0, 2, 3, 1)
    shift = sample((ahead * scale).permute(2, 0, 1)[None], backward.float(), mode="bilinear")
    moved_backward = (backward.float() + shift.permute(0, 2, 3, 1)).clamp(-1, 1)
    return moved_forward, moved_backward
