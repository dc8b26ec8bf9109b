"""The automatic colorization networks: a registry by name, their options, training and files.

Every automatic network is an ``AutomaticNetwork`` (a plain ``nn.Module``) registered with
``@register("name")``. It has a ``Config`` dataclass (its architecture settings, stored in
its weights file), ``OPTIONS`` (the user's options it reads: the command's flags without
``--``) and

    colorize(lightness, options) -> ab

taking CIE L ``(B, 1, H, W)`` in [0, 100] and returning ab ``(B, 2, H, W)`` in Lab units at
the same size. Networks that can draw several different colorizations (PixColor) also have
``colorize_samples(lightness, options, count) -> (count, B, 2, H, W)``. ``AutoOptions``
carries what the command line lets a user steer; each network reads the fields it knows.

Training (``vidcolor.train.loop``) calls every network alike:

    training_losses(rgb, generator=..., weights=...) -> {"loss": ..., ...}

on sRGB target pictures, ``generator`` seeded per step for the random numbers the losses
draw. A network whose losses need statistics of the whole training data computes them by
``training_prior(clips)`` (once per run, kept in the run's checkpoint) and turns them into
the ``weights`` its losses take by ``prior_weights(prior)``; the others have no prior.

Weights files are safetensors whose metadata hold ``model`` (the registry name) and
``config`` (JSON of the ``Config``): ``save`` and ``load`` (``vidcolor.models.weights``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from vidcolor.models import weights
from vidcolor.models.registry import Registry
from vidcolor.models.kept import kept


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
    temperature: float | None = None  # eccv16 annealed mean; None: the one tuned with its weights
    hints: list[Hint] = field(default_factory=list)  # siggraph17 local hints
    global_hint: torch.Tensor | None = None  # sRGB (1, 3, H, W) in [0, 1]: siggraph17, larsson
    saturation: float | None = None  # siggraph17 global saturation hint, in [0, 1]
    seed: int = 0  # pixcolor sampling


class AutomaticNetwork(nn.Module):
    """What every automatic network has; see the module's description."""

    name: str = ""
    OPTIONS: tuple[str, ...] = ()
    RANK: int = 100  # place in the measured quality of the shipped weights (1: best), for the default
    TRAINABLE: bool = True  # ``vidcolor train NAME`` trains it (False: the authors' weights only)

    def colorize(self, lightness: torch.Tensor, options: AutoOptions = AutoOptions()) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - each network has its own

    def training_losses(self, rgb: torch.Tensor, *, generator: torch.Generator | None = None,
                        weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        raise NotImplementedError  # pragma: no cover - each network has its own

    @staticmethod
    def training_prior(clips) -> torch.Tensor | None:
        """Statistics of the training pictures that the losses need; None: they need none."""
        return None

    @staticmethod
    def prior_weights(prior: torch.Tensor) -> torch.Tensor | None:
        """The ``weights`` that ``training_losses`` takes, from ``training_prior``'s statistics."""
        return None


NETWORKS = Registry("automatic model")
register = NETWORKS.register
names = NETWORKS.names
network_class = NETWORKS.get


def trainable() -> list[str]:
    """The networks ``vidcolor train`` trains."""
    return [name for name in names() if network_class(name).TRAINABLE]


config_from_dict = weights.load_config


def takers(option: str) -> list[str]:
    """The networks that take the user's ``option`` (``OPTIONS``), by name."""
    return [name for name in names() if option in network_class(name).OPTIONS]


def create(name: str, **config) -> nn.Module:
    """A network by name with its default config, changed by ``config``."""
    cls = network_class(name)
    return cls(config_from_dict(cls.Config, config))


def save(model: nn.Module, path: Path | str, extra: dict | None = None) -> None:
    """Weights, name and config as one safetensors file (written whole, then renamed)."""
    weights.save_module(model, path, model.name, model.config, extra)


@kept
def load(path: Path | str, name: str | None = None, device: torch.device | str = "cpu") -> nn.Module:
    """A network from a file written by ``save``; ``name``, when given, must match."""
    stored = weights.read_model(path, name)
    found = stored.name or ""
    cls = network_class(found)
    model = cls(weights.load_config(cls.Config, stored.config()))
    weights.load_strict(model, stored.state, path, f"the {found} network")
    return model.to(device).eval()

