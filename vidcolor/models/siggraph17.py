"""Real-Time User-Guided Image Colorization with Learned Deep Priors (Zhang, Zhu, Isola,
Geng, Lin, Yu and Efros, SIGGRAPH 2017): ``--auto --model siggraph17``.

A U-Net takes the grey picture with the user's local hints (ab where a colour was given, a
mask of where) and predicts ab directly (tanh x 110). Blocks 1-7 are those of Zhang et al.
2016 with stride 1, the resolution halved by taking every second pixel before blocks 2, 3
and 4; blocks 8-10 double it back by deconvolution, each adding a 3x3 projection of the
encoder block of the same resolution (shortcuts 3-8, 2-9, 1-10). A side branch on block 8
predicts the colour distribution over the 529 cells of the ab grid, from which
``palette`` suggests colours at a point (weighted k-means, K = 9). The global hints network
(``Config.global_hints``) feeds a picture's 313-bin colour histogram and mean saturation,
each with a flag saying whether it is given, through 1x1 convolutions into block 5.
Layers and names follow the authors' released PyTorch model (local hints only), so their
weights load as they are (``vidcolor.models.official``). Inputs: (L - 50) / 100, ab / 110, mask.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidcolor.ops import color, quantize
from vidcolor.models.automatic import AutomaticNetwork, AutoOptions, Hint, register
from vidcolor.ops.color import pad_to
from vidcolor.models.eccv16 import AB_NORM, conv_block, normalise_l
from vidcolor.errors import InputError, ModelError
from vidcolor.ops.quantize import grid_bins

PALETTE_SIZE = 9


def _global_layer(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 1), nn.ReLU(True), nn.BatchNorm2d(cout)]


@register("siggraph17")
class SIGGRAPH17(AutomaticNetwork):
    """The user-guided colorization network of Zhang et al. 2017 (figure 2)."""

    OPTIONS = ("hints", "global_hint", "saturation")
    RANK = 1  # BENCHMARKS.md, 7

    @dataclass(frozen=True)
    class Config:
        width: int = 64  # channels of block 1 (the paper's 64)
        global_hints: bool = False  # the global hints network (histogram and saturation)
        class_scale: float = 1.0  # distribution logits = output x this (the authors' release: 0.2)

    def __init__(self, config: "SIGGRAPH17.Config" = Config()):
        super().__init__()
        self.config = config
        c1, c2, c3, c4 = (config.width * m for m in (1, 2, 4, 8))
        self.model1 = conv_block(4, c1, 2)
        self.model2 = conv_block(c1, c2, 2)
        self.model3 = conv_block(c2, c3, 3)
        self.model4 = conv_block(c3, c4, 3)
        self.model5 = conv_block(c4, c4, 3, dilation=2)
        self.model6 = conv_block(c4, c4, 3, dilation=2)
        self.model7 = conv_block(c4, c4, 3)
        self.model8up = nn.Sequential(nn.ConvTranspose2d(c4, c3, 4, stride=2, padding=1))
        self.model3short8 = nn.Sequential(nn.Conv2d(c3, c3, 3, padding=1))
        self.model8 = nn.Sequential(nn.ReLU(True), *conv_block(c3, c3, 2))
        self.model9up = nn.Sequential(nn.ConvTranspose2d(c3, c2, 4, stride=2, padding=1))
        self.model2short9 = nn.Sequential(nn.Conv2d(c2, c2, 3, padding=1))
        self.model9 = nn.Sequential(nn.ReLU(True), *conv_block(c2, c2, 1))
        self.model10up = nn.Sequential(nn.ConvTranspose2d(c2, c2, 4, stride=2, padding=1))
        self.model1short10 = nn.Sequential(nn.Conv2d(c1, c2, 3, padding=1))
        self.model10 = nn.Sequential(nn.ReLU(True), nn.Conv2d(c2, c2, 3, padding=1), nn.LeakyReLU(0.2, True))
        self.model_class = nn.Sequential(nn.Conv2d(c3, len(quantize.full_grid()), 1))
        self.model_out = nn.Sequential(nn.Conv2d(c2, 2, 1), nn.Tanh())
        if config.global_hints:
            q = len(quantize.ab_bins())
            self.global_hist = nn.Conv2d(q + 1, c4, 1)
            self.global_sat = nn.Conv2d(2, c4, 1)
            self.global_main = nn.Sequential(nn.ReLU(True), nn.BatchNorm2d(c4), *_global_layer(c4, c4),
                                             *_global_layer(c4, c4), *_global_layer(c4, c4))

    # -- the network ---------------------------------------------------------------------

    def global_features(self, hist: torch.Tensor | None, saturation: torch.Tensor | None, b: int, like: torch.Tensor):
        """The global hints network: histogram ``(B, 313)`` and saturation ``(B,)`` (None:
        not given, flag 0) -> ``(B, C, 1, 1)`` added to block 4's output."""
        q = len(quantize.ab_bins())
        zeros = like.new_zeros(b, 1)
        h = torch.cat((hist.to(like), torch.ones_like(zeros)), 1) if hist is not None else like.new_zeros(b, q + 1)
        s = torch.stack((saturation.to(like), torch.ones(b, device=like.device, dtype=like.dtype)), 1) if saturation is not None \
            else like.new_zeros(b, 2)
        return self.global_main(self.global_hist(h[:, :, None, None]) + self.global_sat(s[:, :, None, None]))

    def forward(self, lightness: torch.Tensor, hint_ab: torch.Tensor, mask: torch.Tensor,
                hist: torch.Tensor | None = None, saturation: torch.Tensor | None = None):
        """L ``(B, 1, H, W)`` (H, W multiples of 8), hint ab in Lab units and mask ``(B, 1,
        H, W)`` -> (ab ``(B, 2, H, W)`` in Lab units, distribution logits ``(B, 529, H/4, W/4)``)."""
        x = torch.cat((normalise_l(lightness), hint_ab / AB_NORM, mask), 1)
        conv1 = self.model1(x)
        conv2 = self.model2(conv1[:, :, ::2, ::2])
        conv3 = self.model3(conv2[:, :, ::2, ::2])
        x = self.model4(conv3[:, :, ::2, ::2])
        if self.config.global_hints:
            x = x + self.global_features(hist, saturation, x.shape[0], x)
        elif hist is not None or saturation is not None:
            raise ModelError("these siggraph17 weights have no global hints network; leave out `global_hint` and `saturation`")
        x = self.model7(self.model6(self.model5(x)))
        conv8 = self.model8(self.model8up(x) + self.model3short8(conv3))
        x = self.model9(self.model9up(conv8) + self.model2short9(conv2))
        x = self.model10(self.model10up(x) + self.model1short10(conv1))
        return self.model_out(x) * AB_NORM, self.model_class(conv8) * self.config.class_scale

    # -- use -----------------------------------------------------------------------------

    def _global_inputs(self, options: AutoOptions, b: int, device):
        hist = sat = None
        if options.global_hint is not None:
            lab = color.rgb_to_lab(options.global_hint.to(device).float())
            hist = quantize.histogram(lab[:, 1:]).expand(b, -1)
            if options.saturation is None:
                sat = mean_saturation(options.global_hint.to(device).float()).expand(b)
        if options.saturation is not None:
            sat = torch.full((b,), float(options.saturation), device=device)
        return hist, sat

    def _run(self, lightness: torch.Tensor, options: AutoOptions):
        """The network on L of any size with the options' hints: (ab, distribution logits)
        on the padded grid, and the original size."""
        padded, (h, w) = pad_to(lightness, 8)
        pad = (0, padded.shape[-1] - w, 0, padded.shape[-2] - h)
        hint_ab, mask = (F.pad(x, pad).to(padded.dtype) for x in place_hints(options.hints, h, w, padded.shape[0], padded.device))
        hist, sat = self._global_inputs(options, padded.shape[0], padded.device)
        return self(padded, hint_ab, mask, hist, sat), (h, w)

    def colorize(self, lightness: torch.Tensor, options: AutoOptions = AutoOptions()) -> torch.Tensor:
        (ab, _), (h, w) = self._run(lightness, options)
        return ab[..., :h, :w]

    def distribution(self, lightness: torch.Tensor, options: AutoOptions = AutoOptions()) -> torch.Tensor:
        """The colour distribution over the 529 grid cells ``(B, 529, H, W)`` at full size."""
        (ab, logits), (h, w) = self._run(lightness, options)
        logits = F.interpolate(logits.float(), size=ab.shape[-2:], mode="bilinear", align_corners=False)
        return torch.softmax(logits, 1)[..., :h, :w]

    def training_losses(self, rgb: torch.Tensor, generator: torch.Generator | None = None,
                        weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Smooth-L1 (Huber, delta 1) between predicted and true ab with simulated hints, and
        cross-entropy of the distribution branch against each pixel's grid cell (as the
        paper trains them); global hints are given for half of the pictures when the
        network has them. There is no prior, so no ``weights`` (taken so that every
        network is called alike by the training loop)."""
        lab = color.rgb_to_lab(rgb)
        padded, _ = pad_to(lab, 8)
        lightness, ab = padded[:, :1], padded[:, 1:]
        hint_ab, mask = simulate_hints(ab, generator)
        hist = sat = None
        if self.config.global_hints:
            given = (torch.rand(ab.shape[0], generator=generator) < 0.5).to(ab)
            hist = quantize.histogram(ab) * given[:, None]
            sat = mean_saturation(F.pad(rgb, (0, padded.shape[-1] - rgb.shape[-1], 0, padded.shape[-2] - rgb.shape[-2]),
                                        mode="replicate")) * given
        out, logits = self(lightness, hint_ab, mask, hist, sat)
        regression = F.smooth_l1_loss(out.float(), ab.float(), beta=1.0)  # Lab units
        target = grid_bins(ab[:, :, ::4, ::4].float())  # the cell of the 529-grid of each pixel
        classification = F.cross_entropy(logits.float(), target)
        return {"loss": regression + classification, "regression": regression, "classification": classification}


# -- hints ------------------------------------------------------------------------------


def place_hints(hints: list[Hint], h: int, w: int, batch: int = 1, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Local hints on an ``h x w`` picture: hint ab ``(B, 2, h, w)`` (Lab units, 0 where no
    hint) and mask ``(B, 1, h, w)`` (1 where a hint is). Each hint is a square of constant
    ab centred on its point, ``size`` times the short side wide (one pixel at the least),
    clipped to the picture; a later hint overwrites an earlier one where they overlap."""
    ab = torch.zeros(batch, 2, h, w, device=device)
    mask = torch.zeros(batch, 1, h, w, device=device)
    for hint in hints:
        cx = min(w - 1, max(0, int(hint.x * w)))
        cy = min(h - 1, max(0, int(hint.y * h)))
        side = max(1, round(hint.size * min(h, w)))
        half = side // 2
        x0, y0 = max(0, cx - half), max(0, cy - half)
        x1, y1 = min(w, cx - half + side), min(h, cy - half + side)
        ab[:, 0, y0:y1, x0:x1] = hint.ab[0]
        ab[:, 1, y0:y1, x0:x1] = hint.ab[1]
        mask[:, :, y0:y1, x0:x1] = 1.0
    return ab, mask


def simulate_hints(ab: torch.Tensor, generator: torch.Generator | None = None, p: float = 1 / 8,
                   full_share: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """Training hints as the paper simulates them: per picture a geometric number of points
    (success probability ``p``), each a square of side uniform in 1..9 at a location drawn
    from a Gaussian around the centre (mean (H - P + 1) / 2, std (H - P + 1) / 4), holding
    the mean true ab over the square; the whole picture is revealed for ``full_share`` of
    the pictures."""
    b, _, h, w = ab.shape
    hint_ab = torch.zeros_like(ab)
    mask = torch.zeros(b, 1, h, w, device=ab.device, dtype=ab.dtype)
    for i in range(b):
        if float(torch.rand(1, generator=generator)) < full_share:
            hint_ab[i], mask[i] = ab[i], 1.0
            continue
        u = max(float(torch.rand(1, generator=generator)), 1e-12)
        points = int(math.floor(math.log(u) / math.log(1 - p)))  # failures before a success
        for _ in range(points):
            side = int(torch.randint(1, 10, (1,), generator=generator))
            span_y, span_x = max(1, h - side + 1), max(1, w - side + 1)
            y = int(torch.normal(span_y / 2, span_y / 4, (1,), generator=generator).clamp(0, span_y - 1))
            x = int(torch.normal(span_x / 2, span_x / 4, (1,), generator=generator).clamp(0, span_x - 1))
            patch = ab[i, :, y : y + side, x : x + side]
            hint_ab[i, :, y : y + side, x : x + side] = patch.mean((1, 2), keepdim=True)
            mask[i, :, y : y + side, x : x + side] = 1.0
    return hint_ab, mask


def _parse_colour(value) -> tuple[float, float]:
    if isinstance(value, str):
        text = value.lstrip("#")
        if len(text) != 6:
            raise ValueError(f"colour {value!r} is not #RRGGBB")
        rgb = torch.tensor([int(text[i : i + 2], 16) for i in (0, 2, 4)], dtype=torch.float32) / 255
        lab = color.rgb_to_lab(rgb.view(1, 3, 1, 1))
        return float(lab[0, 1]), float(lab[0, 2])
    a, b = (float(v) for v in value)
    return a, b


def _fraction(value, extent: int) -> float:
    """Pixels (an int, or any number above 1) or a fraction in [0, 1] (a float)."""
    value = float(value) if isinstance(value, float) else int(value)
    if isinstance(value, float) and 0.0 <= value <= 1.0:
        return value
    if not 0 <= value < extent:
        raise ValueError(f"{value} is outside the picture (0..{extent - 1})")
    return (value + 0.5) / extent


def parse_hints(path: Path, width: int, height: int) -> list[Hint]:
    """A JSON list of hints, each ``{"x": .., "y": .., "color": "#RRGGBB"}`` or ``"ab": [a,
    b]`` and optionally ``"size"`` (the square's side in pixels of the input, default 3).
    ``x`` and ``y`` are pixels (integers) or fractions of the width and height (numbers
    written with a decimal point, in [0, 1])."""
    try:
        items = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable JSON list of hints ({e})") from None
    if not isinstance(items, list):
        raise InputError(f"{path}: hints must be a JSON list of {{x, y, color}} objects")
    hints = []
    for k, item in enumerate(items):
        try:
            if not isinstance(item, dict) or not {"x", "y"} <= set(item) or not ({"color", "ab"} & set(item)):
                raise ValueError("needs x, y and color (or ab)")
            ab = _parse_colour(item["color"] if "color" in item else item["ab"])
            size = float(item.get("size", 3))
            if size < 1:
                raise ValueError("size must be at least 1 pixel")
            hints.append(Hint(_fraction(item["x"], width), _fraction(item["y"], height), ab, size / min(width, height)))
        except (ValueError, TypeError) as e:
            raise InputError(f"{path}: hint {k + 1}: {e}") from None
    return hints


# -- global hints and palettes --------------------------------------------------------------


def mean_saturation(rgb: torch.Tensor) -> torch.Tensor:
    """Mean HSV saturation of sRGB pictures ``(B, 3, H, W)`` -> ``(B,)``."""
    top = rgb.amax(1)
    return ((top - rgb.amin(1)) / top.clamp_min(1e-6)).flatten(1).mean(1)


def weighted_kmeans(points: torch.Tensor, weights: torch.Tensor, k: int = PALETTE_SIZE, iterations: int = 30):
    """k-means of ``points`` ``(N, 2)`` weighted by ``weights`` ``(N,)``: centres ``(k', 2)``
    and their shares of the weight (summing to 1), heaviest first; k-means++-like seeding
    by weight, deterministic."""
    order = weights.argsort(descending=True)
    centres = [points[order[0]]]
    for _ in range(1, min(k, int((weights > 0).sum()))):
        dist = torch.cdist(points, torch.stack(centres)).amin(1)
        centres.append(points[(weights * dist.square()).argmax()])
    centres = torch.stack(centres)
    for _ in range(iterations):
        assign = torch.cdist(points, centres).argmin(1)
        mass = torch.zeros(len(centres)).index_add_(0, assign, weights)
        sums = torch.zeros_like(centres).index_add_(0, assign, points * weights[:, None])
        moved = torch.where(mass[:, None] > 0, sums / mass.clamp_min(1e-12)[:, None], centres)
        if torch.allclose(moved, centres):
            break
        centres = moved
    assign = torch.cdist(points, centres).argmin(1)
    share = torch.zeros(len(centres)).index_add_(0, assign, weights)
    share = share / share.sum()
    keep = share.argsort(descending=True)
    keep = keep[share[keep] > 0]
    return centres[keep], share[keep]


def palette(net: SIGGRAPH17, lightness: torch.Tensor, x: float, y: float, k: int = PALETTE_SIZE,
            options: AutoOptions = AutoOptions()) -> list[tuple[str, tuple[float, float], float]]:
    """Suggested colours at a point (fractions ``x, y``) of one picture L ``(1, 1, H, W)``:
    the distribution branch's probabilities over the 529 grid cells there, clustered by
    weighted k-means into ``k`` colours; each as (#RRGGBB at the point's L, ab, share)."""
    with torch.no_grad():
        probs = net.distribution(lightness, options)[0]  # (529, H, W)
    h, w = probs.shape[-2:]
    px, py = min(w - 1, int(x * w)), min(h - 1, int(y * h))
    centres, shares = weighted_kmeans(quantize.full_grid(), probs[:, py, px].cpu(), k)
    l = lightness[0, 0, py, px].cpu()
    out = []
    for ab, share in zip(centres, shares):
        lab = torch.cat((l.view(1, 1, 1, 1), ab.view(1, 2, 1, 1)), 1)
        rgb = (color.lab_to_rgb(lab).clamp(0, 1) * 255).round().int().flatten().tolist()
        out.append(("#%02x%02x%02x" % tuple(rgb), (float(ab[0]), float(ab[1])), float(share)))
    return out
