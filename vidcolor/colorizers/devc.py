"""The authors' DEVC networks (Zhang et al. 2019) as a colorizer: ``--model devc``.

Weights: ``devc.safetensors``, installed by ``vidcolor weights import devc PATH`` from the
authors' release. Frames of any size and aspect ratio are padded (edges repeated) to
multiples of 8 and cropped back. Within a shot each frame is fed the previous frame's
colour, as in the authors' inference; the first frame of a shot, and a separate photo, get
none (zeros). The authors' post-processing is an option (``DEVCPost``): their ab x 1.25
and their edge-aware smoother guided by L (``vidcolor.ops.edge_smoothing``); both are on
by default, as in their test script.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vidcolor.colorizers.base import Colorizer, register
from vidcolor.errors import InputError, ModelError
from vidcolor.models.devc.network import MULTIPLE, PreparedReference, load
from vidcolor.models.weights import default_weights
from vidcolor.ops import color
from vidcolor.ops.edge_smoothing import fast_global_smoother

POSTS = ("authors", "boost", "smooth", "none")


@dataclass(frozen=True)
class DEVCPost:
    """The authors' post-processing: ab times ``boost`` (1.25), then, with ``smooth``, the
    fast global smoother (lambda 500, sigma_color 4) guided by L x 2.55 as 8-bit levels."""

    boost: float = 1.25
    smooth: bool = True
    lam: float = 500.0
    sigma_color: float = 4.0

    @classmethod
    def named(cls, name: str) -> "DEVCPost":
        """``authors`` (both), ``boost`` (x 1.25 only), ``smooth`` (the smoother only), ``none``."""
        if name not in POSTS:
            raise InputError(f"`post={name}`: choose {', '.join(POSTS)}")
        return cls(boost=1.25 if name in ("authors", "boost") else 1.0, smooth=name in ("authors", "smooth"))

    def __call__(self, ab: torch.Tensor, lightness: torch.Tensor) -> torch.Tensor:
        ab = ab * self.boost
        if self.smooth:
            guide = (lightness * 2.55).floor().clamp(0, 255)  # the authors' uint8 guide
            ab = fast_global_smoother(ab, guide, self.lam, self.sigma_color)
        return ab


@register("devc")
class DEVCColorizer(Colorizer):
    """VGG-19 + WarpNet + ColorVidNet from ``weights`` or the installed ``devc.safetensors``."""

    needs_reference = True
    takes_weights = True
    tracks_frames = True

    def __init__(self, device="cpu", weights: Path | str | None = None, options: DEVCPost | None = None):
        super().__init__(device)
        path = Path(weights) if weights else default_weights("devc")
        if path is None:
            raise ModelError("model 'devc' has no installed weights; import the authors' release with "
                             "'vidcolor weights import devc colorization_checkpoint.zip'")
        self.net = load(path, self.device)
        self.post = options if options is not None else DEVCPost()
        self._last: torch.Tensor | None = None  # the previous frame's Lab input (L - 50, a, b), padded

    def new_shot(self) -> None:
        self._last = None

    def prepare(self, reference: torch.Tensor) -> PreparedReference:
        rgb, _ = color.pad_to(reference.to(self.device), MULTIPLE)
        return self.net.prepare(rgb, color.rgb_to_lab(rgb))

    def colorize(self, lightness: torch.Tensor, prepared: PreparedReference, sequence: bool = False) -> torch.Tensor:
        padded, (h, w) = color.pad_to(lightness.to(self.device), MULTIPLE)
        last = self._last if sequence and self._last is not None and self._last.shape[-2:] == padded.shape[-2:] else None
        if sequence:
            ab, self._last = self.net.colorize(padded, prepared, last)
        else:  # separate pictures: each one alone
            ab = torch.cat([self.net.colorize(padded[k : k + 1], prepared)[0] for k in range(padded.shape[0])])
        ab = ab[..., :h, :w].float()
        return self.post(ab, lightness.to(self.device).float())
