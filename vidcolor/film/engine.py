"""The colorization step shared by films and photos: grey levels in, RGB out.

Lightness is kept at full resolution; the colorizer predicts ab at work resolution (short
side ``work_res``) and the chrominance is brought back to full size with the edge-aware
guided upsampling, then recombined with the original L. The full-size stages go a band of
rows at a time (``color.BAND_PIXELS``, above 1080p) into the uint8 (or uint16) output, so a large photo
needs little more memory than its grey levels and its RGB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from vidcolor.ops import color, gamut
from vidcolor.colorizers import Colorizer, create
from vidcolor.errors import DeviceError, ModelError
from vidcolor.film.temporal import TemporalSmoother


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("`device=cuda`: no CUDA GPU is available here; use `device=cpu`")
    if name not in ("cpu", "cuda"):
        raise DeviceError(f"`device={name}`: choose auto, cpu or cuda")
    return torch.device(name)


@dataclass(eq=False)
class Blend:
    """Two prepared references carried over the frames between them (two keyframes of a shot):
    a frame's colour is ``(1 - w) * ab(before) + w * ab(after)``, ``w`` its share of the way
    from frame ``first`` to frame ``last``, the distance weighting BiSTNet gives its two
    references. Without ``after``, ``before`` alone. The spans of a shot follow each other,
    so the temporal smoothing runs on across them (until ``new_shot``)."""

    before: Any
    after: Any | None = None
    first: int = 0
    last: int = 0

    def weights(self, indices: Sequence[int]) -> list[float]:
        if self.after is None or self.last <= self.first:
            return [0.0] * len(indices)
        return [min(1.0, max(0.0, (i - self.first) / (self.last - self.first))) for i in indices]


class Engine:
    def __init__(self, model: str, device: str = "auto", work_res: int = 256, weights: str | None = None,
                 follow: bool = False, options=None, smooth: bool = False):
        """``options``: an ``AutoOptions`` for the automatic networks. ``follow``: models that
        can take the last colorized frame as guidance do (the recurrent temporal mode);
        ``smooth``: the temporal smoothing stage runs on sequences (``vidcolor.film.temporal``)."""
        if work_res < 32:
            raise ModelError("`work_res` must be at least 32")
        self.device = resolve_device(device)
        kwargs = {"weights": weights} if weights else {}
        if options is not None:
            kwargs["options"] = options
        self.colorizer: Colorizer = create(model, device=self.device, **kwargs)
        self.work_res = work_res
        self.follow = follow and self.colorizer.follows_previous
        self._last: dict[int, tuple] = {}  # id(prepared) -> (prepared, L, ab) of the last frame coloured from it
        self.smoother = TemporalSmoother() if smooth else None
        self._smoothing: object = None  # the prepared reference the smoother's state belongs to
        self.confidence: torch.Tensor | None = None  # each frame's mean confidence in the last batch, if known

    @property
    def needs_reference(self) -> bool:
        return self.colorizer.needs_reference

    @torch.no_grad()
    def prepare(self, rgb: np.ndarray | None) -> Any:
        """Prepare a reference (uint8 RGB ``(H, W, 3)``) once, for many batches."""
        if rgb is None:
            return self.colorizer.prepare(None)
        full = rgb.shape[:2]

        def rows(top: int, bottom: int) -> torch.Tensor:
            return torch.from_numpy(rgb[top:bottom]).to(self.device).permute(2, 0, 1)[None].float() / 255.0

        return self.colorizer.prepare(color.resize_in_rows(rows, full, color.work_size(*full, self.work_res)))

    def new_shot(self) -> None:
        """The next frames start a new shot: forget the previous frame."""
        self._last = {}
        self.colorizer.new_shot()
        if self.smoother is not None:
            self.smoother.reset()

    @torch.no_grad()
    def colorize(self, greys: list[np.ndarray], prepared: Any, sequence: bool = False, with_raw: bool = False,
                 out: np.ndarray | None = None, indices: Sequence[int] | None = None):
        """Grey levels ``[(H, W), ...]`` (same size, uint8 or uint16) -> RGB ``(B, H, W, 3)``,
        uint8; or written into ``out``, ``(B, H, W, 3)`` uint8 or uint16 of any strides (a BGR
        image's channels reversed, say), and returned.
        ``sequence``: the frames follow the previous call's (video); models that can are
        guided by the last colorized frame while the reference stays the same, and the
        temporal smoothing (when on) carries colour over from the previous frame.
        ``prepared``: one reference, or a ``Blend`` of two, whose weights need the frames'
        ``indices``. ``with_raw``: also return the output without smoothing (for measuring it)."""
        grey, small = self._lightness(greys)
        if isinstance(prepared, Blend):
            ab = self._blend(small, prepared, sequence, indices)
        else:
            ab = self._predict(small, prepared, sequence)
        raw = ab
        if self.smoother is not None and sequence:
            ab = self._smooth(small, ab, prepared)
        rgb = self._full_size(ab, small, grey, out)
        if not with_raw:
            return rgb
        return rgb, (rgb if raw is ab else self._full_size(raw, small, grey))

    def _predict(self, small: torch.Tensor, prepared: Any, sequence: bool) -> torch.Tensor:
        """The colorizer's ab for one reference; in the recurrent mode, guided by the last frame
        coloured from the same reference."""
        extra = {"sequence": sequence} if self.colorizer.tracks_frames else {}
        if self.follow and sequence:
            last = self._last.get(id(prepared))  # holding ``prepared`` keeps its id from being reused
            previous = last[1:] if last is not None and last[1].shape == small[-1:].shape else None
            ab = self.colorizer.colorize(small, prepared, previous, **extra).float()
            self._last.pop(id(prepared), None)
            self._last[id(prepared)] = (prepared, small[-1:], ab[-1:])
            while len(self._last) > 2:  # the two references of a Blend at most
                del self._last[next(iter(self._last))]
        else:
            ab = self.colorizer.colorize(small, prepared, **extra).float()
        self.confidence = self.colorizer.confidence
        return ab

    def _blend(self, small: torch.Tensor, blend: Blend, sequence: bool, indices: Sequence[int] | None) -> torch.Tensor:
        """Each frame's colour from the two references of ``blend``, mixed by its weight."""
        if indices is None or len(indices) != small.shape[0]:
            raise ValueError("a Blend of two references needs each frame's index")
        ab = self._predict(small, blend.before, sequence)
        if blend.after is None:
            return ab
        confidence = self.confidence
        w = torch.tensor(blend.weights(indices), dtype=ab.dtype, device=ab.device)
        ab = (1 - w)[:, None, None, None] * ab + w[:, None, None, None] * self._predict(small, blend.after, sequence)
        if confidence is not None and self.confidence is not None:
            self.confidence = (1 - w.cpu()) * confidence + w.cpu() * self.confidence
        return ab

    def _lightness(self, greys: list[np.ndarray]) -> tuple[np.ndarray, torch.Tensor]:
        """The grey levels as one array ``(B, H, W)`` and their L at work resolution
        ``(B, 1, h, w)`` (never the L of the full size at once)."""
        grey = greys[0][None] if len(greys) == 1 else np.stack(greys)
        full = grey.shape[-2:]

        def rows(top: int, bottom: int) -> torch.Tensor:
            return color.grey_to_lightness(grey[:, top:bottom], self.device).unsqueeze(1)

        return grey, color.resize_in_rows(rows, full, color.work_size(*full, self.work_res))

    def _full_size(self, ab: torch.Tensor, small: torch.Tensor, grey: np.ndarray,
                   out: np.ndarray | None = None) -> np.ndarray:
        """ab at work resolution -> RGB at full size on the original L (guided upsampling), a
        band of rows (of every frame) at a time into ``out`` (a new uint8 array when None).
        A frame that fits in one band is done whole. Colour is kept legal (``ops.gamut``)."""
        count, height, width = grey.shape
        if out is None:
            out = np.empty((count, height, width, 3), np.uint8)
        dtype = torch.uint16 if out.dtype == np.uint16 else torch.uint8
        coeffs = color.guided_coefficients(ab.float(), small)
        step = color.band_rows(width, height)
        for top in range(0, height, step):
            bottom = min(height, top + step)
            lightness = color.grey_to_lightness(grey[:, top:bottom], self.device).unsqueeze(1)
            band = color.apply_coefficients(color.coefficient_rows(coeffs, (height, width), top, bottom), lightness)
            band = gamut.legal_ab(lightness, band)  # every model's colour, shown as sRGB can at each L
            out[:, top:bottom] = color.compose_rgb(lightness, band, dtype).cpu().numpy()
        return out

    def _smooth(self, small: torch.Tensor, ab: torch.Tensor, prepared: Any) -> torch.Tensor:
        """The temporal stage, frame by frame at work resolution; a new reference is a new shot,
        but keyframes (``Blend``) carry one shot's colour on."""
        if self._smoothing is not prepared and not isinstance(prepared, Blend):
            self.smoother.reset()
            self._smoothing = prepared
        greys = (small[:, 0] * 2.55).round().clamp(0, 255).byte().cpu().numpy()
        frames = ab.permute(0, 2, 3, 1).cpu().numpy()
        out = np.stack([self.smoother(g, a) for g, a in zip(greys, frames)])
        return torch.from_numpy(out).permute(0, 3, 1, 2).to(ab.device)

    @torch.no_grad()
    def colorize_samples(self, greys: list[np.ndarray], count: int,
                         out: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """``count`` different colorizations of the same frames (models that sample), one
        after the other: RGB ``(B, H, W, 3)`` each, written into ``out`` when given (as
        :meth:`colorize`; the next sample overwrites it)."""
        grey, small = self._lightness(greys)
        for ab in self.colorizer.colorize_samples(small, count):
            yield self._full_size(ab, small, grey, out)
