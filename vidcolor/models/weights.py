"""Where trained weights live: ``$VIDCOLOR_WEIGHTS`` when set, else the package's own
``vidcolor/weights/`` (installed with it, from a wheel too). The folder's ``MANIFEST.json`` describes each file: model name,
architecture and config, sha256, parameter count, training data and steps, and the quality
measured on held-out data (``vidcolor weights list|verify``).

Every network's file is written and read here: ``save_module`` writes its state with
``model`` (its name), ``config`` (JSON of its config dataclass) and any further values as
metadata; ``read_model`` reads a file back, checking the model it holds; ``load_config``
rebuilds the config, refusing unknown settings; ``load_strict`` loads the state."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

SUFFIX = ".safetensors"
MANIFEST = "MANIFEST.json"


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

    from vidcolor.io.atomic import atomic_output

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


def save_module(module, path: Path | str, name: str, config=None, extra: dict | None = None) -> None:
    """``module``'s state as one safetensors file whose metadata hold ``model`` (``name``),
    ``config`` (JSON of the ``config`` dataclass, when given) and ``extra``'s values as text."""
    metadata = {"model": name}
    if config is not None:
        metadata["config"] = json.dumps(asdict(config))
    metadata.update({k: str(v) for k, v in (extra or {}).items()})
    write(path, module.state_dict(), metadata)


@dataclass
class Stored:
    """A network's file as read: the model it holds, its metadata and its tensors."""

    name: str | None
    metadata: dict[str, str]
    state: dict

    def config(self) -> dict:
        """The stored config's settings (none when the file has no config)."""
        return json.loads(self.metadata.get("config", "{}"))


def read_model(path: Path | str, expected: str | None = None) -> Stored:
    """A file written by ``save_module``; ``expected``, when given, is the model it must hold."""
    from vidcolor.errors import ModelError

    metadata, state = read(path)
    found = metadata.get("model")
    if expected is not None and found != expected:
        raise ModelError(f"{path}: holds model {found!r}, not {expected!r}")
    return Stored(found, metadata, state)


def load_config(cls: type, values: dict, what: str | None = None):
    """The config dataclass ``cls`` from ``values``; an unknown setting is refused in one
    line (``unknown WHAT setting 'x'``, or, without ``what``, naming ``cls``)."""
    from vidcolor.errors import ModelError

    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        where = f"unknown {what} setting {unknown[0]!r}" if what else f"unknown setting {unknown[0]!r} for {cls.__qualname__}"
        raise ModelError(where)
    return cls(**values)


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


def sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest(folder: Path | None = None) -> list[dict]:
    """The entries of ``MANIFEST.json`` in ``folder`` (default: the weights folder); none
    when there is no manifest."""
    from vidcolor.errors import ModelError

    path = (folder or weights_dir()) / MANIFEST
    if not path.is_file():
        return []
    try:
        entries = json.loads(path.read_text())["weights"]
    except (ValueError, KeyError, TypeError) as e:
        raise ModelError(f"{path}: not a weights manifest ({e})") from None
    for entry in entries:
        if not {"name", "file", "sha256"} <= set(entry):
            raise ModelError(f"{path}: an entry lacks name, file or sha256")
    return entries


def verify(entry: dict, folder: Path | None = None) -> str | None:
    """What is wrong with a manifest entry's file (missing, changed), or None when it is
    present and its sha256 matches."""
    path = (folder or weights_dir()) / entry["file"]
    if not path.is_file():
        return f"{path}: missing"
    found = sha256(path)
    if found != entry["sha256"]:
        return f"{path}: sha256 {found[:12]}..., the manifest says {entry['sha256'][:12]}..."
    return None


def describe(entry: dict) -> str:
    """A manifest entry in a few words: parameters, then its training steps or its source."""
    parts = [f"{entry['parameters'] / 1e6:.1f} M parameters"] if "parameters" in entry else []
    if "steps" in entry.get("training", {}):
        parts.append(f"{entry['training']['steps']} steps")
    source = entry.get("source")
    if isinstance(source, dict):
        official = source.get("official", True)
        parts.append(f"from {source.get('release') or source.get('file')}" + ("" if official else " (not the published file)"))
    return ", ".join(parts)


def add_to_manifest(entry: dict, folder: Path | None = None) -> None:
    """Add ``entry`` to the folder's manifest, replacing an entry of the same name
    (written whole, then renamed)."""
    from vidcolor.io.atomic import atomic_output

    folder = folder or weights_dir()
    entries = [e for e in manifest(folder) if e["name"] != entry["name"]] + [entry]
    with atomic_output(folder / MANIFEST) as partial:
        partial.write_text(json.dumps({"weights": entries}, indent=2) + "\n")
