"""The learned exemplar network (He et al. 2018) as a colorizer: ``--model exemplar``.

Where the network carries a calibrated confidence (``ExemplarNet.confidence``), its colour is
kept only as far as it is trusted: ``ab = c * ab_network + (1 - c) * ab_prior``, the prior
being the best automatic network with weights installed (its own colour for the frame), or
no colour when there is none. A reference that does not fit the frame thus gives the
prior's colours rather than confidently wrong ones. ``confidence`` holds each frame's mean
confidence of the last batch, for the per-shot report.

The frames of a shot are matched at film speed by a ``Tracker`` (each frame starts from the
previous one's match); ``new_shot`` starts afresh, and ``track=False`` searches every frame
in full.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from vidcolor.colorizers.base import Colorizer, register
from vidcolor.errors import ModelError
from vidcolor.ops import color
from vidcolor.models.exemplar.correspondence import Tracker
from vidcolor.models.exemplar.network import PreparedReference, load
from vidcolor.models.weights import default_weights


TRUSTED = 0.01  # when fewer of a batch's pixels than this are more doubted than trusted, the prior is not run


@register("exemplar")
class ExemplarColorizer(Colorizer):
    """Similarity sub-net + Colorization sub-net, weights from ``weights`` (a file written
    by ``vidcolor.models.exemplar.network.save``) or the installed default. On CUDA it runs channels-last
    under bf16 autocast."""

    needs_reference = True
    takes_weights = True
    follows_previous = True
    tracks_frames = True

    def __init__(self, device="cpu", weights: Path | str | None = None, prior: str | None = "auto",
                 track: bool = True):
        super().__init__(device)
        path = Path(weights) if weights else default_weights("exemplar")
        if path is None:
            raise ModelError("model 'exemplar' has no installed weights; pass `weights=FILE` or use `model=transfer`")
        self.net = load(path, self.device)
        if self.device.type == "cuda":
            self.net = self.net.to(memory_format=torch.channels_last)
        if prior == "auto":
            from vidcolor.colorizers import best_automatic

            prior = best_automatic()
        self.prior_name = prior
        self._prior: Colorizer | None = None
        self.confidence: torch.Tensor | None = None
        self.tracker = Tracker() if track else None

    def new_shot(self) -> None:
        if self.tracker is not None:
            self.tracker.reset()

    @property
    def prior(self) -> Colorizer | None:
        """The automatic colorizer whose colour takes over where the match is not trusted."""
        if self._prior is None and self.prior_name is not None:
            from vidcolor.colorizers import create

            self._prior = create(self.prior_name, device=self.device)
        return self._prior

    @property
    def backbone(self):
        """The feature backbone, also used to recommend references."""
        return self.net.backbone

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def prepare(self, reference: torch.Tensor) -> PreparedReference:
        with self._autocast():
            return self.net.prepare(reference.to(self.device))

    def colorize(self, lightness: torch.Tensor, prepared: PreparedReference,
                 previous: tuple[torch.Tensor, torch.Tensor] | None = None, sequence: bool = False) -> torch.Tensor:
        with self._autocast():
            guide = self.net.prepare_lab(*previous) if previous is not None else None
            ab, confidence = self.net.predict(lightness, prepared, guide, self.tracker if sequence else None)
        ab = ab.float()
        if confidence is None:
            self.confidence = None
            return ab
        self.confidence = confidence.mean((1, 2, 3)).cpu()
        if float((confidence < 0.5).float().mean()) < TRUSTED:
            return ab  # trusted nearly everywhere: the prior is not worth its time
        return confidence * ab + (1 - confidence) * self._fallback(lightness, ab)

    def _fallback(self, lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """The prior's colour (no colour without one), predicted at half the work resolution:
        a fallback's broad colours, at a quarter of the cost."""
        if self.prior is None:
            return torch.zeros_like(ab)
        size = lightness.shape[-2:]
        half = color.resize(lightness, color.work_size(*size, max(32, min(size) // 2)))
        guess = self.prior.colorize(half, None).float()
        return F.interpolate(guess, size=size, mode="bilinear", align_corners=False)

