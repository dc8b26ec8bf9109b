"""Colour reference recommendation: He et al. 2018, "Deep Exemplar-based Colorization",
section 4 ("Color Reference Recommendation").

Every image is seen through its luminance only (the target is grey). A backbone's deepest
level (stride 16) gives two descriptors (``features``):

- global: the level-5 map average- and max-pooled, each part L2-normalised, end to end
  (the paper uses VGG-19's fc6, which a convolutional backbone does not have; pooled
  convolutional features are the usual stand-in, Babenko and Lempitsky 2015);
- local: the level-5 map itself, one L2-normalised vector per position, together with the
  luminance histogram (16 bins, each pixel shared between its two nearest bins) of the
  16x16 image cell under each position.

Both are compressed with PCA fitted on the gallery (``vidcolor.ops.pca``; global to at most
128 dimensions, local to at most 64, as in the paper, after Babenko et al. 2014) and
L2-normalised again.

A query ranks the whole gallery by the cosine of the global descriptors, keeps the best
``candidates`` (N = 200 in the paper) and ranks those by the local score of equation (8)
(``ranking``): for each target position p, its nearest neighbour q in the candidate (cosine
of the local features), and ``d(F_T(p), F_R(q)) + beta * d_H(C_T(p), C_R(q))`` with ``d``
the cosine, ``d_H`` the correlation coefficient of the two cell histograms and beta = 0.25.
The mean over p replaces the paper's sum so that images of different sizes compare.

The gallery's descriptors are kept in one index file inside the gallery folder
(``.vidcolor-gallery.npz``), reused while the images are unchanged and updated for the
images added, removed or changed since (``gallery``). ``query`` reads a target (an image or
a film) and ranks the gallery for it.
"""

from vidcolor.film.recommend.features import (
    cell_histograms,
    describe,
    descriptor_size,
    fingerprint,
    global_descriptor,
    recommendation_backbone,
)
from vidcolor.film.recommend.gallery import INDEX_NAME, open_gallery
from vidcolor.film.recommend.query import recommend, recommend_for
from vidcolor.film.recommend.ranking import CANDIDATES, global_scores, rank
from vidcolor.ops.pca import PCA, fit_pca, pca_dims, project, reconstruct

__all__ = [
    "CANDIDATES",
    "INDEX_NAME",
    "PCA",
    "cell_histograms",
    "describe",
    "descriptor_size",
    "fingerprint",
    "fit_pca",
    "global_descriptor",
    "global_scores",
    "open_gallery",
    "pca_dims",
    "project",
    "rank",
    "recommend",
    "recommend_for",
    "recommendation_backbone",
    "reconstruct",
]
