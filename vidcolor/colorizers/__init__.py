"""Colorizers by name: ``create("transfer", device="cpu")``."""

from __future__ import annotations

import vidcolor.colorizers.automatic  # noqa: F401  (each registers itself)
import vidcolor.colorizers.devc  # noqa: F401
import vidcolor.colorizers.exemplar  # noqa: F401
import vidcolor.colorizers.transfer  # noqa: F401
from vidcolor.colorizers.base import COLORIZERS, Colorizer, register
from vidcolor.errors import ModelError


def names(automatic: bool | None = None) -> list[str]:
    """Registered names; ``automatic=True`` lists those that need no reference."""
    return [n for n, c in sorted(COLORIZERS.items()) if automatic is None or (not c.needs_reference) == automatic]


def rank(name: str) -> int:
    """Where the model stands in the measured quality (1: best); the default is the best
    one with weights."""
    return COLORIZERS.get(name).RANK


def best_automatic() -> str | None:
    """The best-ranked automatic model with weights installed, or None."""
    from vidcolor.models.weights import default_weights

    installed = [n for n in names(automatic=True) if default_weights(n) is not None]
    return min(installed, key=rank) if installed else None


def create(name: str, device="cpu", **options) -> Colorizer:
    cls = COLORIZERS.get(name)
    if options.get("weights") and not cls.takes_weights:
        raise ModelError(f"model {name!r} uses no trained weights; leave out `weights`")
    return cls(device=device, **options)


__all__ = ["Colorizer", "best_automatic", "create", "names", "rank", "register"]
