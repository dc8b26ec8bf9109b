"""Fused GPU kernels. ``fused_match`` has the signature and meaning of
``vidcolor.models.exemplar.matching.match_reference``; it is None when Triton is not installed."""

try:
    from vidcolor.models.exemplar.kernels.match_triton import fused_match
except ImportError:  # no Triton: callers fall back to the chunked PyTorch matcher
    fused_match = None

__all__ = ["fused_match"]
