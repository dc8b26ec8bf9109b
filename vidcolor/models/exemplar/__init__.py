"""He et al. 2018, Deep Exemplar-based Colorization: feature backbones, the Similarity sub-net's correspondence (and its fused kernels), the Colorization sub-net."""
