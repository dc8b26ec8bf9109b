"""Edge-aware smoothing of colour guided by lightness: the fast global smoother (Min et al.,
"Fast global image smoothing based on weighted least squares", TIP 2014).

The weighted-least-squares problem ``u + lambda * sum_q w_pq (u_p - u_q) = f`` over the
4-neighbourhood, with ``w_pq = exp(-|g_p - g_q| / sigma_color)`` from the guide ``g``, is
approximated by 1-D problems: every row, then every column, each a tridiagonal system solved
exactly (Thomas' algorithm). The pair of passes is repeated ``iterations`` times with lambda
multiplied by ``attenuation`` after each (0.25, as OpenCV's implementation does), which
removes the streaks a single pass leaves. Used as DEVC's post-processing (lambda 500,
sigma_color 4, the guide being L x 2.55 as 8-bit grey levels).
"""

from __future__ import annotations

import torch


def _solve_lines(values: torch.Tensor, weights: torch.Tensor, lam: float) -> torch.Tensor:
    """Solve ``(I + lam * Laplacian_w) u = values`` along the last dimension of ``values``
    ``(N, n)``; ``weights`` ``(N, n - 1)`` couple neighbours ``j`` and ``j + 1``."""
    n = values.shape[-1]
    link = lam * weights  # -off-diagonal entries
    zero = torch.zeros_like(values[:, :1])
    left = torch.cat((zero, link), 1)  # coupling to j - 1
    right = torch.cat((link, zero), 1)  # coupling to j + 1
    diagonal = 1.0 + left + right
    ratio = torch.empty_like(values)  # c'_j
    carried = torch.empty_like(values)  # d'_j
    ratio[:, 0] = -right[:, 0] / diagonal[:, 0]
    carried[:, 0] = values[:, 0] / diagonal[:, 0]
    for j in range(1, n):
        pivot = diagonal[:, j] + left[:, j] * ratio[:, j - 1]
        ratio[:, j] = -right[:, j] / pivot
        carried[:, j] = (values[:, j] + left[:, j] * carried[:, j - 1]) / pivot
    out = torch.empty_like(values)
    out[:, -1] = carried[:, -1]
    for j in range(n - 2, -1, -1):
        out[:, j] = carried[:, j] - ratio[:, j] * out[:, j + 1]
    return out


def fast_global_smoother(values: torch.Tensor, guide: torch.Tensor, lam: float = 500.0, sigma_color: float = 4.0,
                         iterations: int = 3, attenuation: float = 0.25) -> torch.Tensor:
    """Smooth ``values`` ``(B, C, H, W)`` where the guide ``(B, 1, H, W)`` (grey levels, 0-255)
    is flat, keeping its edges; each channel alone. Returns a new tensor of the same shape."""
    b, c, h, w = values.shape
    g = guide.to(torch.float64)
    across = torch.exp(-(g[..., :, 1:] - g[..., :, :-1]).abs() / sigma_color).expand(b, c, h, w - 1)
    down = torch.exp(-(g[..., 1:, :] - g[..., :-1, :]).abs() / sigma_color).expand(b, c, h - 1, w)
    rows_w = across.reshape(b * c * h, w - 1)
    cols_w = down.permute(0, 1, 3, 2).reshape(b * c * w, h - 1)
    u = values.to(torch.float64)
    for _ in range(iterations):
        if w > 1:
            u = _solve_lines(u.reshape(-1, w), rows_w, lam).view(b, c, h, w)
        if h > 1:
            u = _solve_lines(u.permute(0, 1, 3, 2).reshape(-1, h), cols_w, lam).view(b, c, w, h).permute(0, 1, 3, 2)
        lam *= attenuation
    return u.to(values.dtype).contiguous()
