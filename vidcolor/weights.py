"""Where trained weights live: ``$VIDCOLOR_WEIGHTS`` when set, else the ``weights/`` folder
beside the package."""

from __future__ import annotations

import os
from pathlib import Path

SUFFIX = ".safetensors"


def weights_dir() -> Path:
    configured = os.environ.get("VIDCOLOR_WEIGHTS")
    return Path(configured) if configured else Path(__file__).resolve().parents[1] / "weights"


def default_weights(model: str) -> Path | None:
    """The installed default file of ``model``, or None when there is none."""
    path = weights_dir() / f"{model}{SUFFIX}"
    return path if path.is_file() else None
