"""Training: one short loop for every model, checkpoints that resume exactly.

A run folder holds ``checkpoint.pt`` (model name, config, step, model, optimiser and scaler
state; the data position is the step, since batch ``k`` is drawn from a generator seeded by
``(seed, k)``), ``log.csv`` (losses and validation figures), ``val_STEP.png`` sheets (rows:
grey, reference, output, original) and the exported weights ``MODEL.safetensors``.
Ctrl-C writes a checkpoint before stopping.

Models:
- ``exemplar``: the exemplar network, two-branch batches (``vidcolor.train.losses``); its backbone
  stays frozen, from ``backbone_weights`` when given.
- ``backbone``: the compact backbone trained by colorization as the pretext task (Larsson et
  al. 2016, section 4.1): a light hypercolumn head predicts ab from the five levels.
- the automatic networks (``eccv16``, ``siggraph17``, ``larsson``, ``pixcolor``): each by its
  own ``training_losses`` on the target pictures of the batches (no reference). eccv16's
  class rebalancing weights come from the colour prior of the training data (lambda 1/2),
  computed once and kept in the checkpoint.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vidcolor.models.exemplar import backbones
from vidcolor.ops import color
from vidcolor import console
from vidcolor.io.atomic import atomic_output
from vidcolor.train.data import ExemplarPairs, load_media
from vidcolor.errors import InputError, ModelError
from vidcolor.models.exemplar.network import ExemplarConfig, ExemplarNet, lightness_to_grey
from vidcolor.models.exemplar.network import save as save_exemplar
from vidcolor.train.losses import chrominance_loss, exemplar_losses
from vidcolor.eval.metrics import psnr

AUTOMATIC = ("eccv16", "siggraph17", "larsson", "pixcolor")
MODELS = ("exemplar", "backbone", *AUTOMATIC)


@dataclass
class TrainConfig:
    model: str = "exemplar"
    steps: int = 2000
    batch_size: int = 8
    size: int = 128  # training crops, pixels
    lr: float = 2e-4
    seed: int = 0
    precision: str = "fp32"  # bf16 | fp16 | fp32 (autocast on CUDA)
    val_every: int = 250
    val_pairs: int = 16
    load_size: int = 160  # media are held in memory with this short side
    backbone: str = "compact"
    backbone_weights: str = ""  # a backbone.safetensors from a `backbone` run
    width: int = 16  # base width of the exemplar U-Net and of the automatic networks (BENCHMARKS.md, 5.4)
    alpha: float = 0.005  # weight of the perceptual branch
    related_share: float = 0.2  # exemplar: share of pairs of two related pictures

    @classmethod
    def load(cls, path: Path | None, **overrides) -> "TrainConfig":
        """Defaults, then a JSON or TOML file, then the command line's values."""
        values: dict = {}
        if path is not None:
            text = Path(path).read_text()
            if Path(path).suffix.lower() == ".toml":
                import tomllib

                values = tomllib.loads(text)
            else:
                values = json.loads(text)
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"unknown training setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
        config = cls(**values)
        if config.model not in MODELS:
            raise InputError(f"unknown model {config.model!r} to train; choose {', '.join(MODELS)}")
        if config.precision not in ("bf16", "fp16", "fp32"):
            raise InputError("--precision: choose bf16, fp16 or fp32")
        if config.steps < 1 or config.batch_size < 1 or config.size % 16:
            raise InputError("steps and batch size must be positive and the crop size a multiple of 16")
        return config


class BackbonePretext(nn.Module):
    """Backbone + hypercolumn head (Larsson et al. 2016): every level is projected by a 1x1
    convolution, brought to full size and summed; a 1x1 convolution predicts ab."""

    def __init__(self, name: str = "compact", hidden: int = 64):
        super().__init__()
        self.backbone = backbones.create(name)
        self.project = nn.ModuleList(nn.Conv2d(c, hidden, 1) for c in self.backbone.channels)
        self.out = nn.Conv2d(hidden, 2, 1)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        size = lightness.shape[-2:]
        levels = self.backbone(lightness_to_grey(lightness))
        column = sum(
            F.interpolate(p(f), size=size, mode="bilinear", align_corners=False) for p, f in zip(self.project, levels)
        )
        return color.denormalize_ab(torch.tanh(self.out(torch.relu(column))))


def build(config: TrainConfig) -> nn.Module:
    if config.model in AUTOMATIC:
        from vidcolor.models import automatic

        cls = automatic.network_class(config.model)
        sizes = {"width": config.width} if "width" in cls.Config.__dataclass_fields__ else {}
        return automatic.create(config.model, **sizes)
    if config.model == "backbone":
        model = BackbonePretext(config.backbone)
        target = model.backbone
    else:
        model = ExemplarNet(ExemplarConfig(backbone=config.backbone, width=config.width))
        target = model.backbone
    if config.backbone_weights:
        trained = backbones.load(config.backbone_weights)
        if trained.name != target.name:
            raise ModelError(f"{config.backbone_weights}: a {trained.name} backbone, the settings ask for {target.name}")
        target.load_state_dict(trained.state_dict())
    return model


def colour_prior(clips, samples: int = 4096) -> torch.Tensor:
    """The colour prior over the 313 bins of the training pictures (``samples`` pixels of each)."""
    from vidcolor.ops import quantize

    g = torch.Generator().manual_seed(0)
    picked = []
    for clip in clips:
        for frame in clip.frames:
            ab = color.rgb_to_lab(frame[None])[:, 1:].flatten(2)
            picked.append(ab[:, :, torch.randint(0, ab.shape[-1], (min(samples, ab.shape[-1]),), generator=g)])
    return quantize.empirical_prior(x[..., None] for x in picked)


def step_losses(model: nn.Module, config: TrainConfig, targets: torch.Tensor, refs: torch.Tensor,
                step: int = 0, rebalance: torch.Tensor | None = None) -> dict:
    if config.model == "eccv16":
        return model.training_losses(targets, rebalance)
    if config.model in AUTOMATIC:
        return model.training_losses(targets, generator=torch.Generator().manual_seed(config.seed * 1_000_003 + step))
    if config.model == "backbone":
        lab = color.rgb_to_lab(targets)
        loss = chrominance_loss(model(lab[:, :1]), lab[:, 1:])
        return {"loss": loss}
    parts = exemplar_losses(model, targets, refs, config.alpha)
    return {"loss": parts.total, "chrominance": parts.chrominance, "perceptual": parts.perceptual}


@torch.no_grad()
def predict(model: nn.Module, config: TrainConfig, targets: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """Inference on validation pairs: sRGB outputs ``(B, 3, H, W)``."""
    lightness = color.rgb_to_lab(targets)[:, :1]
    if config.model in AUTOMATIC:
        from vidcolor.models.automatic import AutoOptions

        ab = model.colorize(lightness, AutoOptions())
    elif config.model == "backbone":
        ab = model(lightness)
    else:
        ab = model(lightness, model.prepare(refs))
    return color.lab_to_rgb(torch.cat((lightness, ab.float()), 1))


def _uint8(rgb: torch.Tensor) -> np.ndarray:
    return (rgb.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def validate(model, config, pairs, device, sheet: Path | None) -> dict:
    model.eval()
    targets, refs = (t.to(device) for t in pairs)
    outputs = predict(model, config, targets, refs)
    lightness = color.rgb_to_lab(targets)[:, :1]
    grey = color.lab_to_rgb(torch.cat((lightness, torch.zeros_like(lightness).expand(-1, 2, -1, -1)), 1))
    originals, out, flat = _uint8(targets), _uint8(outputs), _uint8(grey)
    figures = {
        "val_psnr": float(np.mean([psnr(a, b) for a, b in zip(out, originals)])),
        "val_grey_psnr": float(np.mean([psnr(a, b) for a, b in zip(flat, originals)])),
    }
    if sheet is not None:
        from vidcolor.io.images import write_image

        n = min(6, len(originals))
        rows = [np.concatenate(list(x[:n]), 1) for x in (flat, _uint8(refs), out, originals)]
        write_image(sheet, np.concatenate(rows, 0))
    model.train()
    return figures


def _autocast(device: torch.device, precision: str):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None and device.type == "cuda")


def train(config: TrainConfig, data: list[Path], run_dir: Path, val: list[Path] | None = None,
          device: str = "cpu", resume: bool = False, steps: int | None = None) -> Path:
    """Train ``config.model`` on the media under ``data``; returns the exported weights.
    ``resume`` continues the run in ``run_dir`` with its own settings (``steps``, when
    given, sets a new total)."""
    from vidcolor.film.engine import resolve_device

    run_dir = Path(run_dir)
    checkpoint_path = run_dir / "checkpoint.pt"
    dev = resolve_device(device)
    torch.manual_seed(config.seed)
    state = None
    if resume:
        if not checkpoint_path.is_file():
            raise InputError(f"{run_dir}: no checkpoint.pt to resume from")
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        if state.get("model") != config.model:
            raise InputError(f"{run_dir}: holds a {state.get('model')} run, not {config.model}")
        config = replace(TrainConfig(**state["config"]), steps=steps or state["config"]["steps"])
    elif checkpoint_path.exists():
        raise InputError(f"{run_dir}: holds a run already; resume it with --resume or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)

    model = build(config).to(dev)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(trainable, lr=config.lr)
    scaler = torch.amp.GradScaler(dev.type, enabled=config.precision == "fp16" and dev.type == "cuda")
    step = 0
    if state is not None:
        model.load_state_dict(state["state"])
        optimiser.load_state_dict(state["optimiser"])
        scaler.load_state_dict(state["scaler"])
        step = state["step"]

    clips = load_media(data, config.load_size)
    related = None
    if config.model == "exemplar" and config.related_share > 0:
        from vidcolor.train.data import related_items

        related = related_items(clips, model.backbone.eval(), dev)
    batches = ExemplarPairs(clips, config.size, config.batch_size, config.seed, related=related,
                            related_share=config.related_share)
    val_clips = load_media(val, config.load_size) if val else clips
    val_pairs = ExemplarPairs(val_clips, config.size, config.val_pairs, config.seed + 7919).batch_at(0)
    rebalance = None
    if config.model == "eccv16":
        from vidcolor.ops import quantize

        prior = state["prior"] if state is not None and "prior" in state else colour_prior(clips)
        rebalance = quantize.rebalancing_weights(prior).to(dev)

    def save_checkpoint() -> None:
        payload = {
            "model": config.model, "config": asdict(config), "step": step, "state": model.state_dict(),
            "optimiser": optimiser.state_dict(), "scaler": scaler.state_dict(),
        }
        if rebalance is not None:
            payload["prior"] = prior
        with atomic_output(checkpoint_path) as partial:
            torch.save(payload, partial)

    log_path = run_dir / "log.csv"
    columns: list[str] = []  # the losses of the model, known from the first step (or the log's header)
    if log_path.exists():
        with log_path.open(newline="") as f:
            columns = next(csv.reader(f), [])
    model.train()
    started = time.perf_counter()
    shown: dict = {}
    try:
        with console.progress(config.steps, f"training {config.model}", unit="steps") as bar:
            bar.update(step)
            while step < config.steps:
                targets, refs = (t.to(dev) for t in batches.batch_at(step))
                with _autocast(dev, config.precision):
                    losses = step_losses(model, config, targets, refs, step, rebalance)
                if not math.isfinite(losses["loss"].item()):
                    raise ModelError(f"training diverged at step {step} (loss {losses['loss'].item()}); lower --lr")
                optimiser.zero_grad(set_to_none=True)
                scaler.scale(losses["loss"]).backward()
                scaler.step(optimiser)
                scaler.update()
                step += 1
                row = {k: float(v.detach()) for k, v in losses.items()}
                if step % config.val_every == 0 or step == config.steps:
                    row.update(validate(model, config, val_pairs, dev, run_dir / f"val_{step:06d}.png"))
                    save_checkpoint()
                    shown = {"val_psnr": f"{row['val_psnr']:.2f}"}
                row["step"], row["seconds"] = step, round(time.perf_counter() - started, 2)
                with log_path.open("a", newline="") as f:
                    if not columns:
                        columns = ["step", *losses, "val_psnr", "val_grey_psnr", "seconds"]
                        csv.writer(f).writerow(columns)
                    csv.writer(f).writerow([row.get(c, "") for c in columns])
                bar.set_postfix(loss=f"{row['loss']:.3f}", **shown)
                bar.update(1)
    except KeyboardInterrupt:
        save_checkpoint()
        console.log.info(f"stopped at step {step}; checkpoint saved, continue with --resume {run_dir}")
        raise
    return export(model, config, run_dir, step)


def export(model: nn.Module, config: TrainConfig, run_dir: Path, step: int) -> Path:
    model = model.cpu().to(memory_format=torch.contiguous_format).eval()
    if config.model in AUTOMATIC:
        from vidcolor.models import automatic

        path = run_dir / f"{config.model}.safetensors"
        automatic.save(model, path, {"steps": step, "size": config.size, "batch_size": config.batch_size})
    elif config.model == "backbone":
        path = run_dir / "backbone.safetensors"
        backbones.save(model.backbone, path)
    else:
        path = run_dir / "exemplar.safetensors"
        save_exemplar(model, path, {"steps": step, "size": config.size, "batch_size": config.batch_size})
    return path
