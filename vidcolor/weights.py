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


def write(path: Path | str, state: dict, metadata: dict[str, str]) -> None:
    """A state dict as one safetensors file with ``metadata`` (written whole, then renamed)."""
    from safetensors.torch import save_file

    from vidcolor.atomic import atomic_output

    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_output(Path(path)) as partial:
        save_file(tensors, str(partial), metadata=metadata)


def read(path: Path | str, tensors: bool = True) -> tuple[dict[str, str], dict]:
    """The metadata and (unless ``tensors`` is False) the tensors of a safetensors file."""
    from safetensors import safe_open

    from vidcolor.errors import ModelError

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such weights file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
    except Exception as e:
        raise ModelError(f"{path}: not a safetensors weights file ({e})") from None
    return metadata, state


def load_strict(module, state: dict, path: Path | str, what: str) -> None:
    """Load ``state`` into ``module`` only if every key and shape matches; else a one-line
    error naming the first keys missing or unexpected, or the first shape that differs."""
    from vidcolor.errors import ModelError

    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelError(f"{path}: not weights of {what} (missing keys {missing[:3]}, unexpected keys {unexpected[:3]})")
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise ModelError(f"{path}: {key} has shape {tuple(value.shape)}, {what} needs {tuple(expected[key].shape)}")
    module.load_state_dict(state)
