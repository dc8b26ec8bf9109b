"""Global matching, the definition: for each query row the max and argmax of its cosine
similarity with every key row, and the softmax-weighted mean of the values. The fused GPU
kernels (``kernels``) compute the same ``Match``; ``correspondence`` builds on both."""

from __future__ import annotations

from dataclasses import dataclass

import torch

CHUNK_ELEMENTS = 1 << 24  # similarity entries held at once by the chunked matcher (64 MiB fp32)


@dataclass
class Match:
    best: torch.Tensor  # (B, N) highest cosine similarity
    index: torch.Tensor  # (B, N) int64 position of the best reference match
    soft: torch.Tensor | None  # (B, N, D) softmax(sim / T)-weighted values, or None


def l2_normalise(x: torch.Tensor, dim: int = 1, eps: float = 1e-6) -> torch.Tensor:
    return x * torch.rsqrt((x * x).sum(dim, keepdim=True).clamp_min(eps * eps))


def flatten(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, H*W, C)``."""
    return x.flatten(2).transpose(1, 2)


def match_dense(query, keys, values=None, temperature=None) -> Match:
    """The naive definition: the whole ``(B, N, M)`` similarity matrix at once."""
    sim = torch.bmm(query, keys.expand(query.shape[0], -1, -1).transpose(1, 2))
    best, index = sim.max(dim=2)
    soft = None
    if values is not None and temperature is not None:
        soft = torch.bmm(torch.softmax(sim / temperature, dim=2), values.expand(query.shape[0], -1, -1))
    return Match(best, index, soft)


def match_reference(query, keys, values=None, temperature=None, chunk_elements: int = CHUNK_ELEMENTS) -> Match:
    """``match_dense`` in chunks of query rows so at most ``chunk_elements`` similarities are
    held at once: plain PyTorch, runs on every device."""
    b, n, _ = query.shape
    m = keys.shape[1]
    rows = max(1, chunk_elements // max(1, m * b))
    parts = [match_dense(query[:, i : i + rows], keys, values, temperature) for i in range(0, n, rows)]
    soft = torch.cat([p.soft for p in parts], 1) if parts[0].soft is not None else None
    return Match(torch.cat([p.best for p in parts], 1), torch.cat([p.index for p in parts], 1), soft)
