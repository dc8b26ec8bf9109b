"""Temporal consistency: a blind post-process that takes the flicker out of per-frame
colorization, in the spirit of Bonneel et al. 2015 and Lai et al. 2018 (the methods He et
al. 2018 leave video to).

Frame by frame, at work resolution, with only the previous frame kept:
1. optical flow between the previous and the current grey frame, both ways (OpenCV's DIS,
   as ``vidcolor.eval.metrics`` computes it);
2. the previous output's chrominance is warped onto the current frame along the flow;
3. a pixel is trusted where the two flows agree and it is on no motion boundary (the
   occlusion test of the evaluation protocol) and its grey level matches the warped one;
4. trusted pixels blend the warped colour with the frame's own colorization, the more so
   the closer the two are (a real change of colour is kept, a flicker is not); others keep
   their own colorization.
A frame where too few pixels can be trusted starts afresh, as does a new shot.
"""

from __future__ import annotations

import numpy as np

from vidcolor.ops.flow import backward_warp, occlusion_mask, optical_flow

MODES = ("none", "smooth", "recurrent", "both")
DEFAULT_MODE = "smooth"


def engine_flags(mode: str) -> dict[str, bool]:
    """What a ``--temporal`` mode turns on in an ``Engine``: ``follow`` (the previous
    colorized frame guides the next) and ``smooth`` (this module's stage)."""
    return {"follow": mode in ("recurrent", "both"), "smooth": mode in ("smooth", "both")}


class TemporalSmoother:
    """Streaming temporal smoothing of chrominance. ``strength``: the weight of the warped
    previous colour where it is trusted and agrees; ``sigma``: how far apart (Lab ab units)
    the warped and the own colour may be before the own one takes over; ``grey_tolerance``:
    largest grey-level difference of a trusted pixel; ``min_trusted``: the share of trusted
    pixels under which a frame starts afresh (a cut)."""

    def __init__(self, strength: float = 0.85, sigma: float = 12.0, grey_tolerance: float = 12.0,
                 min_trusted: float = 0.35):
        self.strength, self.sigma, self.grey_tolerance, self.min_trusted = strength, sigma, grey_tolerance, min_trusted
        self.restarts = 0  # frames that started afresh because too little could be trusted
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame (a new shot, or a new sequence)."""
        self._grey: np.ndarray | None = None
        self._ab: np.ndarray | None = None

    def __call__(self, grey: np.ndarray, ab: np.ndarray) -> np.ndarray:
        """One frame: grey levels ``(h, w)`` uint8 and its own colorization ab ``(h, w, 2)``
        float32 -> the smoothed ab ``(h, w, 2)``."""
        ab = np.ascontiguousarray(ab, dtype=np.float32)
        if self._grey is None or self._grey.shape != grey.shape:
            out = ab
        else:
            out = self._blend(grey, ab)
        self._grey, self._ab = grey, out
        return out

    def _blend(self, grey: np.ndarray, ab: np.ndarray) -> np.ndarray:
        back = optical_flow(grey, self._grey)  # current -> previous
        forward = optical_flow(self._grey, grey)  # previous -> current
        trusted = ~occlusion_mask(back, forward)
        trusted &= np.abs(backward_warp(self._grey, back).astype(np.float32) - grey) <= self.grey_tolerance
        if trusted.mean() < self.min_trusted:
            self.restarts += 1
            return ab
        previous = backward_warp(self._ab, back)
        agreement = np.exp(-((previous - ab) ** 2).sum(-1) / (2 * self.sigma ** 2))
        weight = (self.strength * agreement * trusted)[..., None].astype(np.float32)
        return weight * previous + (1 - weight) * ab
