"""Exemplar colour transfer with no learned weights: the classical baseline.

After Reinhard et al. 2001 (global statistics) and Welsh et al. 2002 (local matching):
1. luminance remapping: the target's L is mapped to the reference's mean and spread, so
   matching compares like with like;
2. every target pixel is described by its remapped luminance, its local contrast (standard
   deviation in a 5x5 window), a dense SIFT descriptor of its neighbourhood (kornia's
   DenseSIFT, PCA-reduced on the reference) and, weakly, its position;
3. it takes the ab of its nearest reference samples (a soft k-nearest-neighbour vote);
4. the chrominance is propagated along the target's luminance edges with a guided filter,
   which removes the speckle of per-pixel matching.
Works on CPU and GPU; memory is bounded by matching in chunks of target pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import kornia
import torch
import torch.nn.functional as F

from vidcolor.ops.color import guided_upsample, rgb_to_lab
from vidcolor.colorizers.base import Colorizer, register


@dataclass
class TransferReference:
    features: torch.Tensor  # (M, D) reference samples
    ab: torch.Tensor  # (M, 2)
    mean: float
    std: float
    basis: torch.Tensor  # (128, P) PCA basis of the reference's SIFT descriptors
    centre: torch.Tensor  # (128,)
    global_ab: torch.Tensor  # (2,) mean ab: the Reinhard transfer of a grey target


def principal_axes(centred: torch.Tensor, q: int) -> torch.Tensor:
    """The ``q`` leading principal axes ``(D, q)`` of centred samples ``(n, D)``: exact (the
    eigenvectors of the covariance, in float64 on the CPU), so every device and every run
    gets the same basis, up to the sign of each axis, which no distance sees."""
    cov = (centred.T @ centred).double().cpu()
    _, vectors = torch.linalg.eigh(cov)  # ascending eigenvalues
    return vectors[:, -q:].flip(1).to(centred.device, centred.dtype)


@register("transfer")
class ColorTransfer(Colorizer):
    """Welsh et al. 2002 / Reinhard et al. 2001 colour transfer with DenseSIFT matching."""

    needs_reference = True

    def __init__(
        self,
        device="cpu",
        match_scale: float = 0.5,
        samples: int = 2048,
        neighbours: int = 8,
        pca_dims: int = 16,
        weights: tuple[float, float, float, float] = (1.0, 1.0, 0.6, 0.25),
        temperature: float = 0.02,
        chunk: int = 8192,
    ):
        super().__init__(device)
        self.match_scale, self.samples, self.k = match_scale, samples, neighbours
        self.pca_dims, self.weights, self.temperature, self.chunk = pca_dims, weights, temperature, chunk
        self.sift = kornia.feature.DenseSIFTDescriptor().to(self.device)
        probe = self.sift(torch.zeros(1, 1, 32, 32, device=self.device))
        self._shrink = 32 - probe.shape[-1]

    # -- features ------------------------------------------------------------------------

    def _match_size(self, h: int, w: int) -> tuple[int, int]:
        return max(16, round(h * self.match_scale)), max(16, round(w * self.match_scale))

    def _descriptors(self, lightness: torch.Tensor) -> torch.Tensor:
        """Dense SIFT of L ``(B, 1, h, w)`` -> ``(B, 128, h, w)``, same size as the input."""
        lo, hi = self._shrink // 2, self._shrink - self._shrink // 2
        padded = F.pad(lightness / 100.0, (lo, hi, lo, hi), mode="reflect")
        return self.sift(padded)

    def _pixel_features(self, lightness: torch.Tensor, basis: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        """Remapped L ``(B, 1, h, w)`` -> per-pixel features ``(B, h*w, D)``."""
        b, _, h, w = lightness.shape
        wl, ws, wf, wp = self.weights
        l01 = lightness / 100.0
        mean = kornia.filters.box_blur(l01, (5, 5), border_type="reflect")
        var = kornia.filters.box_blur(l01 * l01, (5, 5), border_type="reflect") - mean * mean
        std = var.clamp_min(0).sqrt()
        sift = self._descriptors(lightness).flatten(2).transpose(1, 2)  # (B, hw, 128)
        sift = (sift - centre) @ basis  # (B, hw, P)
        ys = torch.linspace(0, 1, h, device=lightness.device)
        xs = torch.linspace(0, 1, w, device=lightness.device)
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).view(1, h * w, 2).expand(b, -1, -1)
        return torch.cat(
            [
                wl * l01.flatten(2).transpose(1, 2),
                ws * 4.0 * std.flatten(2).transpose(1, 2),
                wf * sift,
                wp * grid,
            ],
            dim=-1,
        )

    # -- the interface -------------------------------------------------------------------

    @torch.no_grad()
    def prepare(self, reference: torch.Tensor) -> TransferReference:
        lab = rgb_to_lab(reference.to(self.device).float())
        size = self._match_size(*lab.shape[-2:])
        lab = F.interpolate(lab, size=size, mode="area")
        lightness, ab = lab[:, :1], lab[:, 1:]
        desc = self._descriptors(lightness)[0].flatten(1).T  # (hw, 128)
        centre = desc.mean(0)
        basis = principal_axes(desc - centre, min(self.pca_dims, desc.shape[1], desc.shape[0]))
        features = self._pixel_features(lightness, basis, centre)[0]
        ab = ab.flatten(2)[0].T
        step = max(1, features.shape[0] // self.samples)
        pick = torch.arange(0, features.shape[0], step)
        jitter = torch.randint(0, step, pick.shape, generator=torch.Generator().manual_seed(0))
        pick = (pick + jitter).clamp_max(features.shape[0] - 1).to(self.device)
        return TransferReference(
            features=features[pick],
            ab=ab[pick],
            mean=float(lightness.mean()),
            std=float(lightness.std().clamp_min(1.0)),
            basis=basis,
            centre=centre,
            global_ab=ab.mean(0),
        )

    @torch.no_grad()
    def colorize(self, lightness: torch.Tensor, ref: TransferReference) -> torch.Tensor:
        lightness = lightness.to(self.device).float()
        b, _, h, w = lightness.shape
        size = self._match_size(h, w)
        small = F.interpolate(lightness, size=size, mode="area")
        mean = small.mean(dim=(1, 2, 3), keepdim=True)
        std = small.std(dim=(1, 2, 3), keepdim=True).clamp_min(1.0)
        remapped = ((small - mean) * (ref.std / std) + ref.mean).clamp(0, 100)
        features = self._pixel_features(remapped, ref.basis, ref.centre)  # (B, n, D)
        ab = torch.empty(b, features.shape[1], 2, device=self.device)
        # |f - r|^2 = |f|^2 - 2 (f.r - |r|^2 / 2): rank by the bracket, one fused matmul.
        bias = -0.5 * (ref.features * ref.features).sum(-1)
        k = min(self.k, ref.features.shape[0])
        for i in range(b):
            for s in range(0, features.shape[1], self.chunk):
                score = torch.addmm(bias, features[i, s : s + self.chunk], ref.features.T)
                best, idx = score.topk(k, dim=-1)
                weight = torch.softmax((best - best[:, :1]) * (2.0 / self.temperature), dim=-1)
                ab[i, s : s + self.chunk] = (weight.unsqueeze(-1) * ref.ab[idx]).sum(1)
        ab = ab.transpose(1, 2).reshape(b, 2, *size)
        return guided_upsample(ab, small, lightness, radius=2, eps=1e-3)
