"""Global matching in one pass over the keys, as a Triton kernel.

For every query row ``q`` (a unit feature of the target) and all key rows ``k_j`` (unit
features of the reference) the kernel computes what ``matching.match_dense`` does:

    best  = max_j q.k_j                  (cosine similarity of the best match)
    index = argmax_j q.k_j               (first index among equal values of one key tile)
    soft  = sum_j softmax_j(q.k_j / T) v_j

without ever holding the ``N x M`` similarity matrix, which takes 16 GiB in fp32 for two
256 x 256 feature grids. One program owns a tile of query rows of one batch item and walks
over the keys tile by tile, like flash attention: each ``BLOCK_N x BLOCK_M`` tile of
similarities is made with ``tl.dot`` (over ``C`` in chunks of ``BLOCK_C``), folded into a
running max and argmax, and into an online softmax: the running max doubles as the
softmax's shift, and when it grows the running sum and the weighted-values accumulator
are rescaled by ``exp((old - new) / T)``. Memory is the inputs and outputs only.

Inputs may be fp32, fp16 or bf16; sums are kept in fp32 and ``best`` and ``soft`` come out
in fp32. Keys and values with a batch of 1 are shared by every query batch item (batch
stride 0).
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

from vidcolor.models.exemplar.matching import Match

BLOCK_N = 64  # query rows per program
BLOCK_M = 64  # key rows per step
LOG2E = 1.4426950408889634
# fp32 x fp32 products: three tf32 passes on NVIDIA tensor cores (near fp32 accuracy), plain
# fp32 on ROCm, which has no tf32x3; bf16 and fp16 products ignore the setting.
PRECISION = "ieee" if torch.version.hip else "tf32x3"


@triton.jit
def _match_kernel(
    q_ptr, k_ptr, v_ptr, best_ptr, index_ptr, soft_ptr,
    N, M, C, D, scale,  # scale = log2(e) / T: exp(x / T) == exp2(x * scale)
    sq_b, sq_n, sq_c, sk_b, sk_m, sk_c, sv_b, sv_m, sv_d,
    BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_D: tl.constexpr,
    HAS_SOFT: tl.constexpr, PRECISION: tl.constexpr,
):
    pid_n = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    cs = tl.arange(0, BLOCK_C)
    ds = tl.arange(0, BLOCK_D)
    q_base = q_ptr + b * sq_b + rows[:, None] * sq_n
    k_base = k_ptr + b * sk_b

    best = tl.full((BLOCK_N,), float("-inf"), tl.float32)
    index = tl.zeros((BLOCK_N,), tl.int32)
    total = tl.zeros((BLOCK_N,), tl.float32)  # sum of exp2((sim - best) * scale)
    acc = tl.zeros((BLOCK_N, BLOCK_D), tl.float32)  # the same weights times the values

    for start in range(0, M, BLOCK_M):
        keys = start + tl.arange(0, BLOCK_M)
        key_ok = keys < M
        sim = tl.zeros((BLOCK_N, BLOCK_M), tl.float32)
        for c0 in range(0, C, BLOCK_C):
            c_ok = c0 + cs < C
            q = tl.load(q_base + (c0 + cs)[None, :] * sq_c, mask=row_ok[:, None] & c_ok[None, :], other=0.0)
            k = tl.load(k_base + keys[None, :] * sk_m + (c0 + cs)[:, None] * sk_c,
                        mask=c_ok[:, None] & key_ok[None, :], other=0.0)  # (BLOCK_C, BLOCK_M)
            sim = tl.dot(q, k, sim, input_precision=PRECISION)
        sim = tl.where(key_ok[None, :], sim, float("-inf"))  # padded keys never win nor weigh

        tile_best, tile_index = tl.max(sim, 1, return_indices=True)
        new_best = tl.maximum(best, tile_best)
        if HAS_SOFT:
            alpha = tl.exp2((best - new_best) * scale)  # 0 on the first tile (best = -inf)
            p = tl.exp2((sim - new_best[:, None]) * scale)
            v = tl.load(v_ptr + b * sv_b + keys[:, None] * sv_m + ds[None, :] * sv_d,
                        mask=key_ok[:, None] & (ds < D)[None, :], other=0.0).to(tl.float32)
            total = total * alpha + tl.sum(p, 1)
            acc = tl.dot(p, v, acc * alpha[:, None], input_precision=PRECISION)
        index = tl.where(tile_best > best, start + tile_index, index)  # strict: earlier tiles win ties
        best = new_best

    out = b * N + rows
    tl.store(best_ptr + out, best, mask=row_ok)
    tl.store(index_ptr + out, index.to(tl.int64), mask=row_ok)
    if HAS_SOFT:
        tl.store(soft_ptr + out[:, None] * D + ds[None, :], acc / total[:, None], mask=row_ok[:, None] & (ds < D)[None, :])


def _pow2(x: int, least: int = 16) -> int:
    return max(least, triton.next_power_of_2(x))


def _batch_stride(x: torch.Tensor) -> int:
    return x.stride(0) if x.shape[0] > 1 else 0  # a batch of 1 is shared by all


def fused_match(query, keys, values=None, temperature=None, *, out: Match | None = None) -> Match:
    """``match_reference`` by the fused kernel: query ``(B, N, C)``, keys ``(B or 1, M, C)``,
    values ``(B or 1, M, D)``, any strides. ``best`` and ``soft`` are fp32. ``out``: a Match of
    contiguous tensors to write into (``best`` fp32 ``(B, N)``, ``index`` int64 ``(B, N)``,
    ``soft`` fp32 ``(B, N, D)`` when values and a temperature are given)."""
    if query.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"fused_match takes fp32, fp16 or bf16 features, not {query.dtype}")
    b, n, c = query.shape
    m = keys.shape[1]
    if keys.shape[0] not in (1, b) or keys.shape[2] != c or m == 0:
        raise ValueError(f"keys {tuple(keys.shape)} do not fit query {tuple(query.shape)}")
    has_soft = values is not None and temperature is not None
    if has_soft and (values.shape[0] not in (1, b) or values.shape[1] != m):
        raise ValueError(f"values {tuple(values.shape)} do not fit keys {tuple(keys.shape)}")
    if has_soft and not temperature > 0:
        raise ValueError(f"temperature must be positive, not {temperature}")
    d = values.shape[2] if has_soft else 1
    keys = keys.to(query.dtype)
    if out is None:
        out = Match(
            torch.empty(b, n, device=query.device, dtype=torch.float32),
            torch.empty(b, n, device=query.device, dtype=torch.int64),
            torch.empty(b, n, d, device=query.device, dtype=torch.float32) if has_soft else None,
        )
    if n == 0:
        return out
    v = values if has_soft else out.best  # without values, a placeholder that is never read
    sv = (_batch_stride(v), v.stride(1), v.stride(2)) if has_soft else (0, 0, 0)
    grid = (triton.cdiv(n, BLOCK_N), b)
    with torch.cuda.device(query.device) if query.is_cuda else contextlib.nullcontext():
        _match_kernel[grid](
            query, keys, v, out.best, out.index, out.soft if has_soft else out.best,
            n, m, c, d, LOG2E / float(temperature) if has_soft else 1.0,
            query.stride(0), query.stride(1), query.stride(2), _batch_stride(keys), keys.stride(1), keys.stride(2), *sv,
            BLOCK_N=BLOCK_N, BLOCK_M=BLOCK_M, BLOCK_C=min(64, _pow2(c)), BLOCK_D=_pow2(d), HAS_SOFT=has_soft,
            PRECISION=PRECISION,
        )
    return out

