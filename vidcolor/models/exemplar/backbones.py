"""Feature backbones for matching and perceptual losses: a five-level pyramid per image.

Every backbone takes sRGB ``(B, 3, H, W)`` or grey ``(B, 1, H, W)`` in [0, 1] (a grey image is
the sRGB colour with R = G = B) and returns five feature maps, finest first, at strides
1, 2, 4, 8 and 16 — the paper's relu1_1 ... relu5_1 levels.

- ``vgg19_gray``: VGG-19 (Simonyan & Zisserman) as He et al. 2018 use it. ImageNet weights
  come from a torchvision ``vgg19`` state dict file the user has (``load_torchvision_vgg19``);
  for one-channel input conv1_1 is folded over RGB (the paper's gray-VGG-19): the features
  of the grey image replicated to three channels, except where conv1_1's zero padding
  reaches (the one-pixel border).
- ``compact``: a small backbone of our own (about 1 M parameters), trained from our data.

``create(name)`` builds one by name; ``names()`` lists them. ``save`` writes a backbone's
weights as safetensors (``vidcolor.models.weights``); ``load`` reads them back, or takes the
backbone out of an exemplar checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidcolor.errors import ModelError
from vidcolor.models.registry import Registry
from vidcolor.models.kept import kept

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

BACKBONES = Registry("backbone")
PREFIX = "backbone."  # the backbone's keys in an exemplar network's state
register = BACKBONES.register
names = BACKBONES.names


def create(name: str) -> "Backbone":
    return BACKBONES.get(name)()


class Backbone(nn.Module):
    """Image -> five feature maps (strides 1, 2, 4, 8, 16)."""

    name: str = ""
    channels: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


# VGG-19 "E" configuration: convolutions per stage; a 2x2 max-pool separates stages.
VGG19_STAGES = ((3, 64, 64), (64, 128, 128), (128, 256, 256, 256, 256), (256, 512, 512, 512, 512), (512, 512, 512, 512, 512))


@register("vgg19_gray")
class VGG19Gray(Backbone):
    """VGG-19 convolutions up to relu5_1 (He et al. 2018, section 3.1: gray-VGG-19).

    Layers are kept in torchvision's ``features`` order so its state dict maps by index; the
    ImageNet normalisation is applied inside, so inputs are plain sRGB in [0, 1].
    """

    channels = (64, 128, 256, 512, 512)

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        self.taps: list[int] = []  # index in ``features`` of relu{i}_1
        for s, stage in enumerate(VGG19_STAGES):
            if s:
                layers.append(nn.MaxPool2d(2, 2))
            for k, (cin, cout) in enumerate(zip(stage[:-1], stage[1:])):
                layers += [_conv(cin, cout), nn.ReLU(inplace=True)]
                if k == 0:
                    self.taps.append(len(layers) - 1)
                if s == 4:
                    break  # relu5_1 is the deepest level used
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _first_conv(self, image: torch.Tensor) -> torch.Tensor:
        conv = self.features[0]
        if image.shape[1] == 3:
            return conv((image - self.mean) / self.std)
        # gray adaptation: sum conv1_1 over RGB with the normalisation folded in
        weight = (conv.weight / self.std.view(1, 3, 1, 1)).sum(1, keepdim=True)
        bias = conv.bias - (conv.weight * (self.mean / self.std).view(1, 3, 1, 1)).sum((1, 2, 3))
        return F.conv2d(image, weight, bias, padding=1)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = self._first_conv(image)
        out = []
        for i, layer in enumerate(self.features):
            if i:
                x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


def load_torchvision_vgg19(path: Path | str) -> VGG19Gray:
    """A ``VGG19Gray`` with ImageNet weights from torchvision's ``vgg19`` state dict file
    (``features.{i}.weight|bias``; the classifier and layers past conv5_1 are not used)."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelError(f"{path}: not a readable PyTorch state dict ({e})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    model = VGG19Gray()
    wanted = model.features.state_dict()
    mapped = {k: state[f"features.{k}"] for k in wanted if f"features.{k}" in state}
    missing = sorted(set(wanted) - set(mapped))
    if missing:
        raise ModelError(f"{path}: not a torchvision VGG-19 state dict (missing features.{missing[0]})")
    for key, value in mapped.items():
        if tuple(value.shape) != tuple(wanted[key].shape):
            raise ModelError(f"{path}: features.{key} has shape {tuple(value.shape)}, VGG-19 needs {tuple(wanted[key].shape)}")
    model.features.load_state_dict(mapped)
    return model


class _Stage(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


@register("compact")
class CompactBackbone(Backbone):
    """Five stages of two 3x3 conv-BN-ReLU layers, strided 1, 2, 2, 2, 2 (about 1.2 M
    parameters): the same pyramid as VGG-19 at a fraction of the cost, for training on our
    own data (colorization as the pretext task, Larsson et al. 2016, section 4.1)."""

    channels = (24, 48, 96, 160, 256)

    def __init__(self):
        super().__init__()
        widths = (3,) + self.channels
        self.stages = nn.ModuleList(
            _Stage(widths[i], widths[i + 1], 1 if i == 0 else 2) for i in range(5)
        )

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = (image.expand(-1, 3, -1, -1) - 0.45) / 0.25
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


def save(backbone: Backbone, path: Path | str) -> None:
    """A backbone's weights, as safetensors naming the architecture (written whole, then renamed)."""
    from vidcolor.models import weights

    weights.save_module(backbone, path, "backbone", extra={"backbone": backbone.name})


@kept
def load(path: Path | str, device: torch.device | str = "cpu") -> Backbone:
    """A backbone from a file written by ``save``, the backbone of an exemplar checkpoint, or
    (``.pth``/``.pt``) ImageNet VGG-19 from a torchvision ``vgg19`` state dict."""
    from vidcolor.models import weights

    if Path(path).suffix.lower() in (".pth", ".pt"):
        return load_torchvision_vgg19(path).to(device).eval()
    stored = weights.read_model(path)
    state = stored.state
    if stored.name == "exemplar":  # the frozen backbone inside an exemplar network's file
        name = stored.config().get("backbone", "compact")
        state = {key[len(PREFIX):]: value for key, value in state.items() if key.startswith(PREFIX)}
    elif stored.name == "backbone":
        name = stored.metadata.get("backbone", "")
    else:
        raise ModelError(f"{path}: holds model {stored.name!r}, not a backbone or an exemplar network")
    model = create(name)
    weights.load_strict(model, state, path, f"backbone {model.name!r}")
    return model.to(device).eval()
