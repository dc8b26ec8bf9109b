"""Importing the authors' released weights: ``vidcolor weights import eccv16|siggraph17 FILE``.

Zhang et al. publish PyTorch state dicts of their two networks; the file name ends in the
first 8 hex digits of the file's sha256. Our ``eccv16`` and ``siggraph17`` modules keep the
authors' layer names and shapes, so the mapping is one to one: every key of the file must
be one of ours with the same shape, and every one of ours must be in the file (BatchNorm's
``num_batches_tracked`` counters, which older PyTorch versions did not write, are the only
keys that may be absent). The imported network is written as ``NAME.safetensors`` in the
weights folder with its manifest entry, and is used from then on by ``--auto --model NAME``.

The release's constants go into the config: eccv16's logits come with the factor 1/0.38
folded in (so the default annealed mean, T = 0.38, is the authors' output), and
siggraph17's distribution branch is scaled by 0.2 before its softmax.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from vidcolor.models import automatic, weights
from vidcolor.errors import InputError, ModelError


@dataclass(frozen=True)
class Release:
    file: str
    sha256_prefix: str
    config: dict = field(default_factory=dict)


RELEASES = {
    "eccv16": Release("colorization_release_v2-9b330a0b.pth", "9b330a0b", {"width": 64, "logit_scale": 0.38}),
    "siggraph17": Release("siggraph17-df00044c.pth", "df00044c", {"width": 64, "global_hints": False, "class_scale": 0.2}),
}


def read_state_dict(source, where: Path | str | None = None) -> dict[str, torch.Tensor]:
    """A PyTorch state dict from ``source`` (a path or a binary file object), read without
    running pickled code; one held under ``state_dict`` or ``params`` is unwrapped and a
    ``module.`` prefix dropped. ``where`` names it in errors (default: ``source``)."""
    where = where or source
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelError(f"{where}: not a readable PyTorch state dict ({type(e).__name__})") from None
    for wrapper in ("state_dict", "params"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{where}: not a PyTorch state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def map_state(state: dict[str, torch.Tensor], model: torch.nn.Module, path: Path, name: str) -> dict[str, torch.Tensor]:
    """The file's tensors under our keys, checked: exactly our keys (counters may be
    missing) and our shapes; a clear error names what is missing, unexpected or misshapen."""
    ours = model.state_dict()
    counters = {k for k in ours if k.endswith("num_batches_tracked")}
    missing = sorted(set(ours) - set(state) - counters)
    unexpected = sorted(set(state) - set(ours))
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}"] if missing else []) + \
                ([f"unexpected {', '.join(unexpected[:4])}{' ...' if len(unexpected) > 4 else ''}"] if unexpected else [])
        raise ModelError(f"{path}: not the authors' {name} weights ({'; '.join(parts)})")
    for key, value in state.items():
        if tuple(value.shape) != tuple(ours[key].shape):
            raise ModelError(f"{path}: {key} has shape {tuple(value.shape)}, {name} needs {tuple(ours[key].shape)}")
    mapped = {k: state[k].to(ours[k].dtype) for k in state}
    mapped.update({k: ours[k].clone() for k in counters - set(state)})
    return mapped


def importable() -> list[str]:
    """The models whose authors' release ``import_release`` takes."""
    return sorted([*RELEASES, "devc", "ddcolor"])


def import_release(name: str, path: Path | str, folder: Path | None = None, any_hash: bool = False) -> Path:
    """Check, map and install the authors' ``name`` weights from ``path``; returns the
    installed file. ``any_hash`` accepts a file of the same layout whose sha256 is not the
    release's (weights fine-tuned from it, say). ``devc`` and ``ddcolor``: see their ``release``."""
    if name == "devc":
        from vidcolor.models.devc.release import import_release as import_devc

        return import_devc(path, folder)
    if name == "ddcolor":
        from vidcolor.models.ddcolor.release import import_release as import_ddcolor

        return import_ddcolor(path, folder, any_hash)
    if name not in RELEASES:
        raise InputError(f"no released weights are known for {name!r}; importable: {', '.join(importable())}")
    release, path = RELEASES[name], Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    digest = weights.sha256(path)
    if not any_hash and not digest.startswith(release.sha256_prefix):
        raise ModelError(f"{path}: sha256 begins {digest[:8]}, the released {name} weights ({release.file}) begin "
                         f"{release.sha256_prefix}; pass `any_hash` to import other weights of the same layout")
    model = automatic.create(name, **release.config)
    model.load_state_dict(map_state(read_state_dict(path), model, path, name))
    folder = folder or weights.weights_dir()
    target = folder / f"{name}{weights.SUFFIX}"
    automatic.save(model.eval(), target, {"source": release.file if digest.startswith(release.sha256_prefix) else path.name})
    weights.add_to_manifest({
        "name": name,
        "file": target.name,
        "architecture": f"{type(model).__name__} ({type(model).__doc__.splitlines()[0].strip()})",
        "config": asdict(model.config),
        "sha256": weights.sha256(target),
        "parameters": sum(p.numel() for p in model.parameters()),
        "source": {"file": path.name, "sha256": digest, "release": release.file,
                   "official": digest.startswith(release.sha256_prefix)},
    }, folder)
    return target
