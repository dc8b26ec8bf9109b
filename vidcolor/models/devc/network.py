"""Deep Exemplar-based Video Colorization (Zhang et al., CVPR 2019): ``--model devc``.

Three networks, named and shaped as in the authors' release so their state dicts load one
to one (``vidcolor.models.devc.release``):

- ``CaffeVGG19`` (``vgg``): the VGG-19 convolutions of Simonyan and Zisserman with Caffe's
  input convention (BGR, 0-255, the ImageNet mean subtracted); it gives relu1_2 ... relu5_2.
- ``WarpNet`` (``nonlocal_net``), the correspondence sub-net: relu2_2 ... relu5_2 of the grey
  target and of the reference, each L2-normalised per pixel, are brought to 64 channels at
  a quarter of the resolution (reflection padding, InstanceNorm, PReLU), joined (256
  channels), refined by three residual blocks and projected by 1x1 convolutions (theta for
  the target, phi for the reference). Centred over positions and L2-normalised over
  channels, their cosines compare every target position with every reference position; the
  similarity map is each target position's best cosine, and the reference's Lab, average-
  pooled 4x4, is taken from the best match (the softmax of temperature 1e-10 of the
  authors' inference, an arg-max), both brought back x4 by nearest neighbours. The search
  runs through vidcolor's matcher: the fused kernel on CUDA, bounded chunks on the CPU.
- ``ColorVidNet`` (``colornet``), the colorization sub-net: a U-Net on seven channels
  (L - 50, the warped ab, the similarity map, the previous frame's Lab), InstanceNorm
  without affine parameters, subsampling by learned depthwise 1x1 convolutions of stride
  2, dilation 2 in blocks 5-6, nearest-neighbour upsampling and additive skips; output
  tanh x 128.

``DEVC.prepare`` encodes a reference once (the authors recompute it for every frame; the
result is the same); ``DEVC.colorize`` colours consecutive frames, each fed the previous
one's Lab (zeros for the first frame of a shot).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidcolor.models.exemplar.correspondence import match
from vidcolor.models.exemplar.matching import flatten
from vidcolor.models.kept import kept

CAFFE_MEAN_BGR = (0.40760392, 0.45795686, 0.48501961)  # 103.939, 116.779, 123.68 over 255
VGG_STAGES = ((3, 64, 64), (64, 128, 128), (128, 256, 256, 256, 256), (256, 512, 512, 512, 512),
              (512, 512, 512, 512, 512))
EPS = 2.220446049250313e-16  # the authors' normalisations add the float epsilon
OUTPUT_SCALE = 128.0
MULTIPLE = 8  # frame sides are padded to a multiple of this (three stride-2 stages)


def caffe_input(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``(B, 3, H, W)`` in [0, 1] -> Caffe VGG input: BGR, minus the mean, times 255."""
    mean = torch.tensor(CAFFE_MEAN_BGR, device=rgb.device, dtype=rgb.dtype).view(1, 3, 1, 1)
    return (rgb.flip(1) - mean) * 255.0


def unit_pixels(x: torch.Tensor) -> torch.Tensor:
    """Each pixel's feature vector divided by its L2 norm (plus the float epsilon)."""
    return x / (x.norm(dim=1, keepdim=True) + EPS)


class CaffeVGG19(nn.Module):
    """VGG-19 convolutions ``convS_K`` (3x3, padding 1), ReLU after each, 2x2 max-pooling
    between stages; ``forward`` returns relu1_2, relu2_2, relu3_2, relu4_2 and relu5_2."""

    def __init__(self):
        super().__init__()
        for s, stage in enumerate(VGG_STAGES, 1):
            for k, (cin, cout) in enumerate(zip(stage[:-1], stage[1:]), 1):
                self.add_module(f"conv{s}_{k}", nn.Conv2d(cin, cout, 3, padding=1))

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        x, out = caffe_input(rgb), []
        for s in range(1, 6):
            if s > 1:
                x = F.max_pool2d(x, 2, 2)
            x = F.relu(getattr(self, f"conv{s}_1")(x))
            x = F.relu(getattr(self, f"conv{s}_2")(x))
            out.append(x)  # relu{s}_2; the deeper convolutions of a stage feed only the next stage
            if s < 5:
                for k in range(3, len(VGG_STAGES[s - 1])):
                    x = F.relu(getattr(self, f"conv{s}_{k}")(x))
        return out


def _padded_conv(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    """Reflection padding, 3x3 convolution, InstanceNorm, PReLU: four slots of a sequence."""
    return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3, stride), nn.InstanceNorm2d(cout), nn.PReLU()]


class ResidualBlock(nn.Module):
    """x + IN(conv(PReLU(IN(conv(x))))), then the same PReLU; reflection padding."""

    def __init__(self, channels: int = 256):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3)
        self.conv2 = nn.Conv2d(channels, channels, 3)
        self.prelu = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.prelu(F.instance_norm(self.conv1(F.pad(x, (1, 1, 1, 1), mode="reflect"))))
        y = F.instance_norm(self.conv2(F.pad(y, (1, 1, 1, 1), mode="reflect")))
        return self.prelu(x + y)


@dataclass
class Warped:
    """The reference's Lab (L - 50, a, b) taken at each target pixel's best match, and the
    similarity map (that match's cosine), both at the frame's resolution."""

    lab: torch.Tensor  # (B, 3, H, W)
    similarity: torch.Tensor  # (B, 1, H, W)


@dataclass
class EncodedReference:
    keys: torch.Tensor  # (1, M, 256) phi, centred and unit length
    lab: torch.Tensor  # (1, M, 3) the reference's Lab (L - 50, a, b), average-pooled 4x4


class WarpNet(nn.Module):
    """The correspondence sub-net (see the module's description); 6.9 M parameters."""

    def __init__(self):
        super().__init__()
        up = nn.Upsample(scale_factor=2, mode="nearest")
        self.layer2_1 = nn.Sequential(*_padded_conv(128, 128), *_padded_conv(128, 64, stride=2))
        self.layer3_1 = nn.Sequential(*_padded_conv(256, 128), *_padded_conv(128, 64))
        self.layer4_1 = nn.Sequential(*_padded_conv(512, 256), *_padded_conv(256, 64), up)
        self.layer5_1 = nn.Sequential(*_padded_conv(512, 256), up, *_padded_conv(256, 64), up)
        self.layer = nn.Sequential(ResidualBlock(), ResidualBlock(), ResidualBlock())
        self.theta = nn.Conv2d(256, 256, 1)
        self.phi = nn.Conv2d(256, 256, 1)

    def features(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """relu2_2 ... relu5_2 (unit length per pixel) -> the refined 256-channel features at 1/4."""
        f2 = self.layer2_1(levels[0])
        f3 = self.layer3_1(levels[1])
        f4 = self.layer4_1(levels[2])
        f5 = self.layer5_1(levels[3])
        dh, dw = f2.shape[-2] - f5.shape[-2], f2.shape[-1] - f5.shape[-1]
        if dh or dw:  # relu5_2 rounds 1/16 down: the missing rows repeat the edges, split evenly
            f5 = F.pad(f5, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), mode="replicate")
        return self.layer(torch.cat((f2, f3, f4, f5), 1))

    @staticmethod
    def _unit_rows(x: torch.Tensor) -> torch.Tensor:
        rows = flatten(x)  # (B, N, C)
        rows = rows - rows.mean(1, keepdim=True)
        return rows / (rows.norm(dim=2, keepdim=True) + EPS)

    def encode_reference(self, levels: list[torch.Tensor], lab: torch.Tensor) -> EncodedReference:
        """A reference's relu2_2 ... relu5_2 (unit length) and Lab ``(1, 3, H, W)`` (L - 50)."""
        keys = self._unit_rows(self.phi(self.features(levels)))
        return EncodedReference(keys, flatten(F.avg_pool2d(lab, 4, 4)))

    def forward(self, levels: list[torch.Tensor], reference: EncodedReference) -> Warped:
        query_map = self.theta(self.features(levels))
        h, w = query_map.shape[-2:]
        found = match(self._unit_rows(query_map).float(), reference.keys.float())
        lab = reference.lab.float()[0][found.index]  # (B, N, 3)
        lab = lab.transpose(1, 2).reshape(-1, 3, h, w)
        similarity = found.best.view(-1, 1, h, w)
        return Warped(F.interpolate(lab, scale_factor=4, mode="nearest"),
                      F.interpolate(similarity, scale_factor=4, mode="nearest"))


def _conv(cin: int, cout: int, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation)


def _subsample(channels: int) -> nn.Conv2d:
    """A learned scale of every other pixel: depthwise 1x1, stride 2, no bias."""
    return nn.Conv2d(channels, channels, 1, 2, bias=False, groups=channels)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _conv(cin, cout))


class ColorVidNet(nn.Module):
    """The colorization sub-net (see the module's description); 32.8 M parameters."""

    def __init__(self, in_channels: int = 7):
        super().__init__()
        self.conv1_1 = nn.Sequential(_conv(in_channels, 32), nn.ReLU(True), _conv(32, 64))
        self.conv1_2 = _conv(64, 64)
        self.conv1_2norm_ss = _subsample(64)
        self.conv2_1, self.conv2_2 = _conv(64, 128), _conv(128, 128)
        self.conv2_2norm_ss = _subsample(128)
        self.conv3_1, self.conv3_2, self.conv3_3 = _conv(128, 256), _conv(256, 256), _conv(256, 256)
        self.conv3_3norm_ss = _subsample(256)
        self.conv4_1, self.conv4_2, self.conv4_3 = _conv(256, 512), _conv(512, 512), _conv(512, 512)
        self.conv5_1, self.conv5_2, self.conv5_3 = (_conv(512, 512, 2) for _ in range(3))
        self.conv6_1, self.conv6_2, self.conv6_3 = (_conv(512, 512, 2) for _ in range(3))
        self.conv7_1, self.conv7_2, self.conv7_3 = (_conv(512, 512) for _ in range(3))
        self.conv8_1, self.conv3_3_short = _up(512, 256), _conv(256, 256)
        self.conv8_2, self.conv8_3 = _conv(256, 256), _conv(256, 256)
        self.conv9_1, self.conv2_2_short = _up(256, 128), _conv(128, 128)
        self.conv9_2 = _conv(128, 128)
        self.conv10_1, self.conv1_2_short = _up(128, 128), _conv(64, 128)
        self.conv10_2 = _conv(128, 128)
        self.conv10_ab = nn.Conv2d(128, 2, 1)

    def _stage(self, x: torch.Tensor, *names: str) -> torch.Tensor:
        for name in names:
            x = F.relu(getattr(self, name)(x))
        return F.instance_norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n1 = self._stage(x, "conv1_1", "conv1_2")
        n2 = self._stage(self.conv1_2norm_ss(n1), "conv2_1", "conv2_2")
        n3 = self._stage(self.conv2_2norm_ss(n2), "conv3_1", "conv3_2", "conv3_3")
        x = self._stage(self.conv3_3norm_ss(n3), "conv4_1", "conv4_2", "conv4_3")
        x = self._stage(x, "conv5_1", "conv5_2", "conv5_3")
        x = self._stage(x, "conv6_1", "conv6_2", "conv6_3")
        x = self._stage(x, "conv7_1", "conv7_2", "conv7_3")
        x = F.relu(self.conv8_1(x) + self.conv3_3_short(n3))
        x = self._stage(x, "conv8_2", "conv8_3")
        x = F.relu(self.conv9_1(x) + self.conv2_2_short(n2))
        x = self._stage(x, "conv9_2")
        x = F.relu(self.conv10_1(x) + self.conv1_2_short(n1))
        x = F.leaky_relu(self.conv10_2(x), 0.2)
        return torch.tanh(self.conv10_ab(x)) * OUTPUT_SCALE


@dataclass
class PreparedReference:
    encoded: EncodedReference


def grey_input(lightness: torch.Tensor) -> torch.Tensor:
    """The grey frame as the authors' VGG sees it: L / 100 in all three channels."""
    return (lightness / 100.0).expand(-1, 3, -1, -1)


class DEVC(nn.Module):
    """VGG-19 + WarpNet + ColorVidNet (Zhang et al. 2019), by the release's names."""

    def __init__(self):
        super().__init__()
        self.vgg = CaffeVGG19()
        self.nonlocal_net = WarpNet()
        self.colornet = ColorVidNet(7)

    def _levels(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        return [unit_pixels(f) for f in self.vgg(rgb)[1:]]

    def prepare(self, reference_rgb: torch.Tensor, reference_lab: torch.Tensor) -> PreparedReference:
        """A reference, sRGB ``(1, 3, H, W)`` and its Lab, sides multiples of 8, encoded once."""
        lab = torch.cat((reference_lab[:, :1] - 50.0, reference_lab[:, 1:]), 1)
        return PreparedReference(self.nonlocal_net.encode_reference(self._levels(reference_rgb), lab))

    def warp(self, lightness: torch.Tensor, prepared: PreparedReference) -> Warped:
        """The reference's colour matched onto frames of L ``(B, 1, H, W)``, sides multiples of 8."""
        return self.nonlocal_net(self._levels(grey_input(lightness)), prepared.encoded)

    def colorize(self, lightness: torch.Tensor, prepared: PreparedReference,
                 previous: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Consecutive frames L ``(B, 1, H, W)`` in [0, 100] -> ab ``(B, 2, H, W)``, and the last
        frame's Lab input for the next call (``previous``: (1, 3, H, W) as L - 50, a, b;
        zeros when None)."""
        warped = self.warp(lightness, prepared)
        centred = lightness - 50.0
        last = previous if previous is not None else torch.zeros_like(centred[:1]).expand(-1, 3, -1, -1)
        out = []
        for k in range(lightness.shape[0]):
            x = torch.cat((centred[k : k + 1], warped.lab[k : k + 1, 1:], warped.similarity[k : k + 1], last), 1)
            ab = self.colornet(x.to(centred.dtype))
            last = torch.cat((centred[k : k + 1], ab), 1)
            out.append(ab)
        return torch.cat(out), last


# --- checkpoints -------------------------------------------------------------------------

MODEL_NAME = "devc"


def save(model: DEVC, path, extra: dict | None = None) -> None:
    """The three networks as one safetensors file (``vgg.*``, ``nonlocal_net.*``, ``colornet.*``)."""
    from vidcolor.models import weights

    weights.save_module(model, path, MODEL_NAME, None, extra)


@kept
def load(path, device: torch.device | str = "cpu") -> DEVC:
    """A ``DEVC`` from a file written by ``save`` (strict: every key, every shape)."""
    from vidcolor.models import weights

    stored = weights.read_model(path, MODEL_NAME)
    model = DEVC()
    weights.load_strict(model, stored.state, path, "DEVC (Zhang et al. 2019)")
    return model.to(device).eval()
