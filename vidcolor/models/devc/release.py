"""Importing the authors' DEVC release: ``vidcolor weights import devc PATH``.

Zhang et al. publish ``colorization_checkpoint.zip``; PATH is that zip, or a folder holding
its files (anywhere below it). Three of them are the network: ``nonlocal_net_iter_76000.pth``
(WarpNet), ``colornet_iter_76000.pth`` (ColorVidNet) and ``vgg19_conv.pth`` (the VGG-19
convolutions); ``vgg19_gray.pth`` serves only their training losses and is not read. Each is
a plain state dict, read without running pickled code (``weights_only``), and must hold
exactly the keys and shapes of our module of the same name. The authors publish no
checksums of these files, so the check is the layout (every key, every shape, the parameter
count); the sha256 of each file read is kept in the manifest. The network is written as
``devc.safetensors`` in the weights folder and used from then on by ``--model devc``.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from vidcolor.errors import InputError, ModelError
from vidcolor.models import weights
from vidcolor.models.devc.network import DEVC, save
from vidcolor.models.official import map_state, read_state_dict

RELEASE = "colorization_checkpoint.zip"
FILES = {  # our sub-network: the release's file
    "nonlocal_net": "nonlocal_net_iter_76000.pth",
    "colornet": "colornet_iter_76000.pth",
    "vgg": "vgg19_conv.pth",
}


def read_release(path: Path) -> dict[str, tuple[bytes, str]]:
    """The bytes of each file the network needs, by sub-network, and where each was found."""
    found: dict[str, tuple[bytes, str]] = {}
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise InputError(f"{path}: neither the authors' {RELEASE} nor a folder of its files")
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                for part, name in FILES.items():
                    if Path(member).name == name and part not in found:
                        found[part] = (archive.read(member), f"{path}:{member}")
    elif path.is_dir():
        for part, name in FILES.items():
            hits = sorted(path.rglob(name))
            if hits:
                found[part] = (hits[0].read_bytes(), str(hits[0]))
    else:
        raise InputError(f"{path}: no such file or folder")
    missing = [FILES[p] for p in FILES if p not in found]
    if missing:
        raise ModelError(f"{path}: the DEVC release's {', '.join(missing)} not found")
    return found


def import_release(path: Path | str, folder: Path | None = None) -> Path:
    """Check, map and install the authors' DEVC networks from ``path``; returns the file."""
    path = Path(path)
    files = read_release(path)
    model = DEVC()
    state, sources = {}, {}
    for part, (data, where) in files.items():
        module = getattr(model, part)
        mapped = map_state(read_state_dict(io.BytesIO(data), where), module, Path(where), f"DEVC {part} ({FILES[part]})")
        state.update({f"{part}.{k}": v for k, v in mapped.items()})
        sources[FILES[part]] = weights.sha256_bytes(data)
    model.load_state_dict(state)
    folder = folder or weights.weights_dir()
    target = folder / f"devc{weights.SUFFIX}"
    save(model.eval(), target, {"source": RELEASE if path.is_file() else path.name})
    weights.add_to_manifest({
        "name": "devc",
        "file": target.name,
        "architecture": "DEVC (Zhang et al., CVPR 2019): VGG-19 + WarpNet + ColorVidNet",
        "sha256": weights.sha256(target),
        "parameters": sum(p.numel() for p in model.parameters()),
        "source": {"release": RELEASE, "files": sources,
                   "checked": "every key and shape; the authors publish no checksums"},
    }, folder)
    return target
