"""The colorizer interface: batches of lightness in, chrominance out; and the registry of
colorizers by name, where each adapter registers itself (``@register("transfer")``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

from vidcolor.models.registry import Registry


class Colorizer(ABC):
    """Predicts ab for batches of frames at work resolution.

    ``prepare(reference)`` turns a reference image (sRGB ``(1, 3, H, W)`` in [0, 1], already
    at work resolution) into whatever the model needs per reference; it is called once per
    reference and its result is handed back with every batch of that reference's frames.
    ``colorize(lightness, prepared)`` maps L ``(B, 1, h, w)`` in [0, 100] to ab
    ``(B, 2, h, w)`` in Lab units. Models with ``follows_previous`` also take ``previous``:
    the L and ab ``(1, 1|2, h, w)`` of the frame colorized just before (video only); models
    with ``tracks_frames`` take ``sequence``: the frames are consecutive frames of a shot,
    following the last call's (until ``new_shot``).
    Models that can tell how far their colour is to be trusted leave each frame's mean
    confidence in [0, 1] in ``confidence`` after every ``colorize``.
    """

    name: str = ""
    needs_reference: bool = True
    takes_weights: bool = False
    follows_previous: bool = False
    tracks_frames: bool = False  # ``colorize`` takes ``sequence``: the frames follow the last call's
    RANK: int = 100  # place in the measured quality (1: best), for choosing a default
    confidence: torch.Tensor | None = None  # models that know it: each frame's mean confidence in the last batch

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)

    def prepare(self, reference: torch.Tensor | None) -> Any:
        return reference

    def new_shot(self) -> None:
        """The next frames do not follow the last ones (a cut, or separate pictures): models
        that carry state from frame to frame drop it."""

    @abstractmethod
    def colorize(self, lightness: torch.Tensor, prepared: Any) -> torch.Tensor:
        """L ``(B, 1, h, w)`` -> ab ``(B, 2, h, w)``."""


COLORIZERS: Registry[Colorizer] = Registry("model")
register = COLORIZERS.register
