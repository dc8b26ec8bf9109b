"""The learned exemplar network (He et al. 2018) as a colorizer: ``--model exemplar``."""

from __future__ import annotations

from pathlib import Path

import torch

from vidcolor.colorizers.base import Colorizer, register
from vidcolor.errors import ModelError
from vidcolor.models.exemplar.network import PreparedReference, load
from vidcolor.models.weights import default_weights


@register("exemplar")
class ExemplarColorizer(Colorizer):
    """Similarity sub-net + Colorization sub-net, weights from ``weights`` (a file written
    by ``vidcolor.models.exemplar.network.save``) or the installed default. On CUDA it runs channels-last
    under bf16 autocast."""

    needs_reference = True
    takes_weights = True
    follows_previous = True

    def __init__(self, device="cpu", weights: Path | str | None = None):
        super().__init__(device)
        path = Path(weights) if weights else default_weights("exemplar")
        if path is None:
            raise ModelError("model 'exemplar' has no installed weights; pass `weights=FILE` or use `model=transfer`")
        self.net = load(path, self.device)
        if self.device.type == "cuda":
            self.net = self.net.to(memory_format=torch.channels_last)

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
                 previous: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        with self._autocast():
            guide = self.net.prepare_lab(*previous) if previous is not None else None
            return self.net(lightness, prepared, guide).float()
