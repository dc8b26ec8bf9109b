"""The automatic colorization networks: a registry by name, their options, and their files.

Every automatic network is a plain ``nn.Module`` registered with ``@register("name")``. It
has a ``Config`` dataclass (its architecture settings, stored in its weights file) and

    colorize(lightness, options) -> ab

taking CIE L ``(B, 1, H, W)`` in [0, 100] and returning ab ``(B, 2, H, W)`` in Lab units at
the same size. Networks that can draw several different colorizations (PixColor) also have
``colorize_samples(lightness, options, count) -> (count, B, 2, H, W)``. ``AutoOptions``
carries what the command line lets a user steer; each network reads the fields it knows.

Weights files are safetensors whose metadata hold ``model`` (the registry name) and
``config`` (JSON of the ``Config``): ``save`` and ``load``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn as nn

from vidcolor.models import weights
from vidcolor.errors import ModelError
from vidcolor.models.registry import Registry


@dataclass
class Hint:
    """A user's colour at a point (Zhang et al. 2017): centre ``x, y`` as fractions of the
    picture's width and height, ``ab`` in Lab units, and the side of the hint's square
    ``size`` as a fraction of the picture's short side (one pixel at the least)."""

    x: float
    y: float
    ab: tuple[float, float]
    size: float = 0.0


@dataclass
class AutoOptions:
    decode: str = "annealed"  # eccv16: annealed | mean | mode
    temperature: float = 0.38  # eccv16 annealed mean (Zhang et al. 2016)
    hints: list[Hint] = field(default_factory=list)  # siggraph17 local hints
    global_hint: torch.Tensor | None = None  # sRGB (1, 3, H, W) in [0, 1]: siggraph17, larsson
    saturation: float | None = None  # siggraph17 global saturation hint, in [0, 1]
    seed: int = 0  # pixcolor sampling


NETWORKS = Registry("automatic model")
register = NETWORKS.register
names = NETWORKS.names
network_class = NETWORKS.get


def config_from_dict(cls: type, values: dict):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ModelError(f"unknown setting {unknown[0]!r} for {cls.__qualname__}")
    return cls(**values)


def create(name: str, **config) -> nn.Module:
    """A network by name with its default config, changed by ``config``."""
    cls = network_class(name)
    return cls(config_from_dict(cls.Config, config))


def save(model: nn.Module, path: Path | str, extra: dict | None = None) -> None:
    """Weights, name and config as one safetensors file (written whole, then renamed)."""
    metadata = {"model": model.name, "config": json.dumps(asdict(model.config))}
    metadata.update({k: str(v) for k, v in (extra or {}).items()})
    weights.write(path, model.state_dict(), metadata)


def load(path: Path | str, name: str | None = None, device: torch.device | str = "cpu") -> nn.Module:
    """A network from a file written by ``save``; ``name``, when given, must match."""
    metadata, state = weights.read(path)
    found = metadata.get("model", "")
    if name is not None and found != name:
        raise ModelError(f"{path}: holds model {found!r}, not {name!r}")
    cls = network_class(found)
    model = cls(config_from_dict(cls.Config, json.loads(metadata.get("config", "{}"))))
    weights.load_strict(model, state, path, f"the {found} network")
    return model.to(device).eval()

