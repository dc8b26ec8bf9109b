"""Colorizers by name: ``create("transfer", device="cpu")``."""

from __future__ import annotations

from typing import Callable

from vidcolor.colorizers.base import Colorizer
from vidcolor.errors import ModelError

_REGISTRY: dict[str, Callable[..., Colorizer]] = {}


def register(name: str):
    """Class decorator adding a colorizer to the registry under ``name``."""

    def add(cls):
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return add


def names(automatic: bool | None = None) -> list[str]:
    """Registered names; ``automatic=True`` lists those that need no reference."""
    return sorted(n for n, c in _REGISTRY.items() if automatic is None or (not c.needs_reference) == automatic)


def create(name: str, device="cpu", **options) -> Colorizer:
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(names())}")
    if options.get("weights") and not _REGISTRY[name].takes_weights:
        raise ModelError(f"model {name!r} uses no trained weights; leave out --weights")
    return _REGISTRY[name](device=device, **options)


from vidcolor.colorizers import automatic, exemplar, transfer  # noqa: E402,F401  (registers the built-in models)

__all__ = ["Colorizer", "create", "names", "register"]
