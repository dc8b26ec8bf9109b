"""The exemplar colorization network of He et al. 2018, "Deep Exemplar-based Colorization".

``ExemplarNet`` = a Similarity sub-net (a frozen feature ``backbone`` and the dense
correspondence of ``vidcolor.models.exemplar.correspondence``, no learned weights of its own) feeding the
``ColorizationNet`` U-Net with 13 channels: T_L, the warped reference chrominance R'_ab and
the ten bidirectional similarity maps. Checkpoints are safetensors files whose metadata hold
the model name and its ``ExemplarConfig`` (``vidcolor.models.weights``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn as nn

from vidcolor.models.exemplar import backbones
from vidcolor.ops import color
from vidcolor.models import weights
from vidcolor.ops.color import lightness_to_grey  # noqa: F401  (also imported from here)
from vidcolor.models.exemplar.correspondence import Correspondence, Tracker, correspond
from vidcolor.models.kept import kept

INPUT_CHANNELS = 13
LEVELS = 5  # feature pyramid levels: five similarity maps each way
MODEL_NAME = "exemplar"


@dataclass(frozen=True)
class ExemplarConfig:
    backbone: str = "compact"
    width: int = 16  # base channels of the U-Net (the paper: 64; 16 is as good on our data, BENCHMARKS.md 5.4)
    match_level: int = 4  # pyramid level of the global matching (stride 8)
    radius: int = 1  # window radius of the coarse-to-fine refinement
    confidence: bool = False  # a calibrated per-pixel confidence from the similarity maps (``confidence``)

    @classmethod
    def from_dict(cls, values: dict) -> "ExemplarConfig":
        return weights.load_config(cls, values, "exemplar")


def _block(cin: int, cout: int, convs: int, stride: int = 1, dilation: int = 1, norm: bool = True) -> nn.Sequential:
    """``convs`` conv-ReLU pairs (the first may be strided), then BatchNorm."""
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [
            nn.Conv2d(cin if i == 0 else cout, cout, 3, stride=stride if i == 0 else 1, padding=dilation, dilation=dilation),
            nn.ReLU(inplace=True),
        ]
    if norm:
        layers.append(nn.BatchNorm2d(cout, affine=False))
    return nn.Sequential(*layers)


class _Up(nn.Module):
    """Deconvolution by 2, plus a 1x1 projection of the encoder block's output (the skip)."""

    def __init__(self, cin: int, skip: int, cout: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)
        self.skip = nn.Conv2d(skip, cout, 3, padding=1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.up(x) + self.skip(skip))


class ColorizationNet(nn.Module):
    """The Colorization sub-net C (He et al. 2018, section 3.2.2): a 10-block U-Net.

    Blocks 1-4 halve the resolution and double the channels (stride-2 convolution), blocks
    5-6 use dilation 2, blocks 8-10 double the resolution by deconvolution; skip connections
    join blocks 1-10, 2-9 and 3-8; every block but the last ends with BatchNorm; a 1x1
    convolution and tanh give ab in [-1, 1] (times ``color.AB_SCALE`` in Lab units).
    Input height and width must be multiples of 8.
    """

    def __init__(self, width: int = 64):
        super().__init__()
        c1, c2, c3, c4 = width, width * 2, width * 4, width * 8
        self.block1 = _block(INPUT_CHANNELS, c1, 2)
        self.block2 = _block(c1, c2, 2, stride=2)
        self.block3 = _block(c2, c3, 3, stride=2)
        self.block4 = _block(c3, c4, 3, stride=2)
        self.block5 = _block(c4, c4, 3, dilation=2)
        self.block6 = _block(c4, c4, 3, dilation=2)
        self.block7 = _block(c4, c4, 3)
        self.up8, self.block8 = _Up(c4, c3, c3), _block(c3, c3, 2)
        self.up9, self.block9 = _Up(c3, c2, c2), _block(c2, c2, 1)
        self.up10, self.block10 = _Up(c2, c1, c1), _block(c1, c1, 1, norm=False)
        self.out = nn.Conv2d(c1, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 13, H, W)`` -> normalised ab ``(B, 2, H, W)`` in [-1, 1]."""
        x1 = self.block1(x)
        x2 = self.block2(x1)
        x3 = self.block3(x2)
        x = self.block7(self.block6(self.block5(self.block4(x3))))
        x = self.block8(self.up8(x, x3))
        x = self.block9(self.up9(x, x2))
        x = self.block10(self.up10(x, x1))
        return torch.tanh(self.out(x))


@dataclass
class PreparedReference:
    """What a reference contributes to every frame: its luminance pyramid and its ab."""

    features: list[torch.Tensor]
    ab: torch.Tensor  # (1 or B, 2, H, W) Lab units


class ExemplarNet(nn.Module):
    """Similarity sub-net + Colorization sub-net (He et al. 2018, figure 3)."""

    def __init__(self, config: ExemplarConfig = ExemplarConfig()):
        super().__init__()
        self.config = config
        self.backbone = backbones.create(config.backbone)
        self.colorizer = ColorizationNet(config.width)
        self.backbone.requires_grad_(False)
        if config.confidence:
            self.confidence_head = nn.Conv2d(2 * LEVELS, 1, 1)

    def set_confidence(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Give the network its calibrated confidence: ``sigmoid(weight . similarity + bias)``
        over the ten similarity maps (``train/calibrate_confidence.py`` fits it)."""
        if not self.config.confidence:
            self.config = replace(self.config, confidence=True)
            self.confidence_head = nn.Conv2d(2 * LEVELS, 1, 1)
        with torch.no_grad():
            self.confidence_head.weight.copy_(weight.view(1, 2 * LEVELS, 1, 1))
            self.confidence_head.bias.copy_(bias.view(1))

    def confidence(self, similarity: torch.Tensor) -> torch.Tensor | None:
        """How far each pixel's matched colour can be trusted, in [0, 1] ``(B, 1, h, w)``,
        from the similarity maps ``(B, 10, h, w)``; None when the network has no calibration."""
        if not self.config.confidence:
            return None
        return torch.sigmoid(self.confidence_head(similarity.float()))

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()  # the feature extractor stays fixed, as in the paper
        return self

    def features(self, lightness: torch.Tensor) -> list[torch.Tensor]:
        return self.backbone(lightness_to_grey(lightness))

    def prepare(self, rgb: torch.Tensor) -> PreparedReference:
        """A reference image sRGB ``(1 or B, 3, H, W)`` in [0, 1]."""
        lab = color.rgb_to_lab(rgb)
        return self.prepare_lab(lab[:, :1], lab[:, 1:])

    def prepare_lab(self, lightness: torch.Tensor, ab: torch.Tensor) -> PreparedReference:
        return PreparedReference(self.features(lightness), ab)

    def similarity(self, lightness: torch.Tensor, reference: PreparedReference,
                   tracker: Tracker | None = None) -> Correspondence:
        """The Similarity sub-net for targets L ``(B, 1, H, W)``; with a ``tracker``, the
        frames follow the ones it saw last (a film's shot) and are found at film speed."""
        features = self.features(lightness)
        size = tuple(lightness.shape[-2:])
        if tracker is None:
            return correspond(features, reference.features, reference.ab, size, self.config.match_level,
                              self.config.radius)
        greys = [color.lightness_to_grey_levels(lightness[i : i + 1])[0, 0] for i in range(lightness.shape[0])]
        return tracker.correspond(features, reference.features, reference.ab, size, greys, reference,
                                  self.config.match_level, self.config.radius)

    def colorize(self, lightness: torch.Tensor, guide_ab: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
        """The Colorization sub-net: T_L, aligned ab (R'_ab, or T'_ab in training) and the ten
        similarity maps -> predicted ab in Lab units."""
        x = torch.cat((color.normalize_l(lightness), color.normalize_ab(guide_ab), similarity), 1)
        return color.denormalize_ab(self.colorizer(x))

    def forward(self, lightness: torch.Tensor, reference: PreparedReference,
                previous: PreparedReference | None = None) -> torch.Tensor:
        """Colorize targets from a reference: ab ``(B, 2, h, w)`` (see ``predict``)."""
        return self.predict(lightness, reference, previous)[0]

    def predict(self, lightness: torch.Tensor, reference: PreparedReference,
                previous: PreparedReference | None = None,
                tracker: Tracker | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Colorize targets from a reference: ab and its confidence (``confidence``).
        ``previous`` (video): the last colorized frame as a second exemplar; each pixel takes
        its aligned colour and similarity maps from whichever exemplar it matches better
        (mean forward similarity over the levels). ``tracker``: see ``similarity``."""
        found = self.similarity(lightness, reference, tracker)
        warped, similarity = found.warped_ab, found.similarity
        if previous is not None:
            near = self.similarity(lightness, previous)
            better = near.similarity[:, :5].mean(1, keepdim=True) > similarity[:, :5].mean(1, keepdim=True)
            warped = torch.where(better, near.warped_ab, warped)
            similarity = torch.where(better, near.similarity, similarity)
        return self.colorize(lightness, warped, similarity), self.confidence(similarity)


# --- checkpoints -------------------------------------------------------------------------

def save(model: ExemplarNet, path: Path | str, extra: dict | None = None) -> None:
    """Weights and config as one safetensors file (written whole, then renamed)."""
    weights.save_module(model, path, MODEL_NAME, model.config, extra)


@kept
def load(path: Path | str, device: torch.device | str = "cpu") -> ExemplarNet:
    """An ``ExemplarNet`` from a file written by ``save`` (strict: every key, every shape)."""
    stored = weights.read_model(path, MODEL_NAME)
    model = ExemplarNet(ExemplarConfig.from_dict(stored.config()))
    weights.load_strict(model, stored.state, path, "the exemplar network")
    return model.to(device).eval()
