"""Importing the authors' DDColor checkpoints: ``vidcolor weights import ddcolor FILE``.

Kang et al. publish PyTorch files of the large model (``ddcolor_paper.pth``,
``ddcolor_modelscope.pth``, ``ddcolor_artistic.pth``), of the tiny one
(``ddcolor_paper_tiny.pth``), and per-model ``pytorch_model.bin`` files; a state dict, bare
or under the key ``params``. The file is read without running pickled code
(``weights_only``); its variant (encoder, colour decoder, number of queries) is recognised
from its keys and shapes alone, then every key and shape must be the variant's (the
classifier head ``encoder.arch.head_cls`` that some files carry is not part of the network
and is dropped; BatchNorm counters may be absent). A file whose sha256 is none of the
published ones is refused unless ``any_hash`` (weights fine-tuned from them, say). The
network is written as ``ddcolor.safetensors`` and used by ``--auto --model ddcolor``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from vidcolor.errors import InputError, ModelError
from vidcolor.models import automatic, weights
from vidcolor.models.ddcolor.encoder import VARIANTS
from vidcolor.models.ddcolor.network import DDColor
from vidcolor.models.official import map_state, read_state_dict

PUBLISHED = {  # sha256 of each published file (the Hugging Face LFS records of piddnad's model zoo)
    "789781789db1bafc2165e1cf9658580f871cce64a81901ec49127877813f10b9": "ddcolor_paper.pth",
    "17c460d7e55b32a598370621d77173be59e03c24b0823f06821db23a50c263ce": "ddcolor_modelscope.pth",
    "a591ee5beedad36de703d8977e92d0c30c1eedc6453fd1b300f3b460842a23a9": "ddcolor_artistic.pth",
    "81dd643904f4664c3718513e3320ae3db0c567f0d3e18398606659adee7bfc17": "ddcolor_paper_tiny.pth",
    "8a1277bc90a1bfbb6d2d83933a9a6bc821931879ca93e26e4fcec12165d41fce": "ddcolor_paper_tiny/pytorch_model.bin",
    "5c77db8292398a2ec1397003f0a90266c28e97b013515d5e9a32e73a4c54a67d": "ddcolor_paper/pytorch_model.bin",
}
DROPPED = ("encoder.arch.head_cls.",)


def read_state(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in read_state_dict(path).items() if not k.startswith(DROPPED)}


def variant(state: dict[str, torch.Tensor], path: Path) -> DDColor.Config:
    """The published variant the keys and shapes describe; a one-line error otherwise."""
    if "refine_net.0.0.weight_orig" not in state or "encoder.arch.stages.0.0.norm.weight" not in state:
        raise ModelError(f"{path}: not DDColor weights (no encoder.arch.stages or refine_net.0.0.weight_orig)")
    dims = tuple(int(state[f"encoder.arch.stages.{i}.0.norm.weight"].shape[0]) if
                 f"encoder.arch.stages.{i}.0.norm.weight" in state else 0 for i in range(4))
    depths = tuple(len({k.split(".")[4] for k in state if k.startswith(f"encoder.arch.stages.{i}.")}) for i in range(4))
    encoder = next((name for name, shape in VARIANTS.items() if shape == (depths, dims)), None)
    if encoder is None:
        raise ModelError(f"{path}: a DDColor encoder of depths {list(depths)} and widths {list(dims)}, "
                         f"none of the released ({', '.join(VARIANTS)})")
    if "decoder.color_decoder.query_feat.weight" in state:
        decoder = "multi"
    elif "decoder.color_decoder.transformer.decoder.norm.weight" in state:
        decoder = "single"
    else:
        raise ModelError(f"{path}: an unknown DDColor colour decoder (neither multi-scale nor single-scale keys)")
    if "decoder.last_shuf.conv.0.weight_orig" not in state:
        raise ModelError(f"{path}: a DDColor variant without spectral normalisation in its last layer, not released")
    queries = int(state["refine_net.0.0.weight_orig"].shape[1]) - 3
    return DDColor.Config(encoder=encoder, decoder=decoder, num_queries=queries)


def import_release(path: Path | str, folder: Path | None = None, any_hash: bool = False) -> Path:
    """Check, recognise, map and install an authors' DDColor file; returns the installed file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    digest = weights.sha256(path)
    published = PUBLISHED.get(digest)
    if published is None and not any_hash:
        raise ModelError(f"{path}: sha256 {digest[:8]}... is none of the published DDColor files "
                         f"({', '.join(sorted(set(PUBLISHED.values())))}); pass `any_hash` to import "
                         "other weights of the same layout")
    state = read_state(path)
    config = variant(state, path)
    model = DDColor(config)
    model.load_state_dict(map_state(state, model, path, f"DDColor {config.encoder}/{config.decoder}"))
    folder = folder or weights.weights_dir()
    target = folder / f"ddcolor{weights.SUFFIX}"
    automatic.save(model.eval(), target, {"source": published or path.name})
    weights.add_to_manifest({
        "name": "ddcolor",
        "file": target.name,
        "architecture": f"DDColor (Kang et al., ICCV 2023): ConvNeXt-{config.encoder}, {config.decoder}-scale colour decoder",
        "config": asdict(config),
        "sha256": weights.sha256(target),
        "parameters": sum(p.numel() for p in model.parameters()),
        "source": {"file": path.name, "sha256": digest, "release": published, "official": published is not None},
    }, folder)
    return target
