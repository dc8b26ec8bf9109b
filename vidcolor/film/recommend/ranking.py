"""The two-stage ranking of a gallery for one target (He et al. 2018, section 4).

The global ranking orders the whole gallery by the cosine of the compressed global
descriptors and keeps the best ``candidates`` (N = 200 in the paper). The local ranking
orders those by the score of equation (8): for each target position p, its nearest
neighbour q in the candidate (cosine of the compressed local features), and
``d(F_T(p), F_R(q)) + beta * d_H(C_T(p), C_R(q))`` with ``d`` the cosine, ``d_H`` the
correlation coefficient of the two cell histograms and beta = 0.25. The mean over p
replaces the paper's sum so that images of different sizes compare.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from vidcolor.film.recommend.features import Descriptor
from vidcolor.film.recommend.gallery import GalleryIndex
from vidcolor.ops.pca import compress

BETA = 0.25
CANDIDATES = 200
CHUNK = 64  # candidates ranked at once (bounds the memory of the local ranking)


class Recommendation(NamedTuple):
    path: Path
    score: float  # local score (equation 8, mean over positions)
    global_score: float  # cosine of the compressed global descriptors


def global_scores(index: GalleryIndex, target: Descriptor) -> torch.Tensor:
    """Cosine of the target's compressed global descriptor with every gallery image's."""
    query = compress(index.global_pca, torch.from_numpy(target.global_)[None])[0]
    return index.global_compressed @ query


def _candidate_rows(index: GalleryIndex, candidates: torch.Tensor) -> torch.Tensor:
    """Row numbers ``(N, Q)`` of the candidates' positions, padded to the longest by
    repeating each candidate's first row (a repeat changes no nearest neighbour)."""
    start = index.offsets[candidates]
    count = index.offsets[candidates + 1] - start
    step = torch.arange(int(count.max()))
    return start[:, None] + torch.where(step[None] < count[:, None], step[None], 0)


def local_scores(index: GalleryIndex, target: Descriptor, candidates: torch.Tensor, beta: float = BETA) -> torch.Tensor:
    """Equation (8) for each candidate, as a mean over the target positions p: the cosine
    to p's nearest neighbour q among the candidate's positions plus ``beta`` times the
    correlation of the cells' luminance histograms. ``candidates``: image numbers ``(N,)``."""
    query = compress(index.local_pca, torch.from_numpy(target.local))  # (P, k)
    query_hist = torch.from_numpy(target.hist)  # (P, bins)
    scores = []
    for chunk in candidates.split(CHUNK):
        rows = _candidate_rows(index, chunk)  # (n, Q)
        cosine = torch.matmul(query, index.local[rows].float().transpose(1, 2))  # (n, P, Q)
        best, q = cosine.max(dim=2)  # (n, P)
        matched = index.hist[rows.gather(1, q)].float()  # (n, P, bins)
        correlation = (matched * query_hist).sum(-1)
        scores.append((best + beta * correlation).mean(1))
    return torch.cat(scores)


def rank(index: GalleryIndex, target: Descriptor, top: int = 5, candidates: int = CANDIDATES, beta: float = BETA) -> list[Recommendation]:
    """Global ranking, then the local ranking of the best ``candidates``; best ``top`` first."""
    coarse = global_scores(index, target)
    shortlist = torch.topk(coarse, min(candidates, len(index))).indices
    fine = local_scores(index, target, shortlist, beta)
    order = torch.argsort(fine, descending=True, stable=True)[:top]
    return [
        Recommendation(index.folder / index.items[int(shortlist[i])].entry.path, float(fine[i]), float(coarse[shortlist[i]]))
        for i in order
    ]
