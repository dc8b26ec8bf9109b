"""Principal component analysis of the rows of a tensor: fitted from the eigenvectors of the
covariance, used to compress descriptors (``project``, ``compress``) and to map them back
(``reconstruct``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class PCA:
    """Principal components: ``y = (x - mean) @ components.T``."""

    mean: torch.Tensor  # (D,)
    components: torch.Tensor  # (k, D), orthonormal rows, by decreasing variance

    @property
    def dims(self) -> int:
        return self.components.shape[0]


def pca_dims(limit: int, samples: int, features: int) -> int:
    """Components kept: at most ``limit``, and no more than the data supports (``samples - 1``
    for centred data, ``features``); at least one."""
    return max(1, min(limit, features, samples - 1))


def fit_pca(x: torch.Tensor, limit: int) -> PCA:
    """PCA of rows ``x`` ``(n, D)``, keeping :func:`pca_dims` components (torch.linalg.eigh
    of the covariance)."""
    x = x.double()
    mean = x.mean(0)
    centred = x - mean
    covariance = centred.T @ centred / max(1, len(x) - 1)
    values, vectors = torch.linalg.eigh(covariance)
    order = torch.argsort(values, descending=True)[: pca_dims(limit, len(x), x.shape[1])]
    return PCA(mean.float(), vectors[:, order].T.float().contiguous())


def project(pca: PCA, x: torch.Tensor) -> torch.Tensor:
    """Rows ``(n, D)`` -> compressed rows ``(n, k)``."""
    return (x.float() - pca.mean) @ pca.components.T


def reconstruct(pca: PCA, y: torch.Tensor) -> torch.Tensor:
    """Compressed rows ``(n, k)`` -> rows ``(n, D)`` (exact for data inside the subspace)."""
    return y.float() @ pca.components + pca.mean


def compress(pca: PCA, x: torch.Tensor) -> torch.Tensor:
    """Project, then L2-normalise each row: the vectors whose dot products are cosines."""
    return F.normalize(project(pca, x), dim=1)
