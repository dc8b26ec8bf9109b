"""Training: one short loop for every model, checkpoints that resume exactly.

A run folder holds ``checkpoint.pt`` (model name, config, step, model, optimiser and scaler
state; the data position is the step, since batch ``k`` is drawn from a generator seeded by
``(seed, k)``), ``log.csv`` (losses and validation figures), ``val_STEP.png`` sheets (rows:
grey, reference, output, original) and the exported weights ``MODEL.safetensors``.
Ctrl-C writes a checkpoint before stopping.

Models, each trained by its ``Trainer`` (``trainer(name)`` chooses it):
- ``exemplar``: the exemplar network, two-branch batches (``vidcolor.train.losses``); its backbone
  stays frozen, from ``backbone_weights`` when given.
- ``backbone``: the compact backbone trained by colorization as the pretext task (Larsson et
  al. 2016, section 4.1): a light hypercolumn head predicts ab from the five levels.
- the automatic networks (every name in ``vidcolor.models.automatic``): each by its own
  ``training_losses`` on the target pictures of the batches (no reference). A network whose
  losses need statistics of the training data (eccv16: the colour prior behind its class
  rebalancing weights) computes them once by its ``training_prior``; they are kept in the
  checkpoint.
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

from vidcolor.models import automatic
from vidcolor.models.exemplar import backbones
from vidcolor.ops import color
from vidcolor import console
from vidcolor.io.atomic import atomic_output
from vidcolor.train.data import ExemplarPairs, load_media, unrelated_count
from vidcolor.errors import InputError, ModelError
from vidcolor.models.exemplar.network import ExemplarConfig, ExemplarNet, lightness_to_grey
from vidcolor.models.exemplar.network import save as save_exemplar
from vidcolor.models.weights import load_strict
from vidcolor.train.losses import chrominance_loss, exemplar_losses
from vidcolor.eval.metrics import psnr


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
    init_weights: str = ""  # start from trained weights of the same model (e.g. the shipped ones) and go on training
    width: int = 16  # base width of the exemplar U-Net and of the automatic networks (BENCHMARKS.md, 5.4)
    alpha: float = 0.005  # weight of the perceptual branch
    related_share: float = 0.2  # exemplar: share of pairs of two related pictures
    unrelated_share: float = 0.0  # exemplar: share of each batch (its last pairs) with an unrelated reference

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
        if config.model not in models():
            raise InputError(f"unknown model {config.model!r} to train; choose {', '.join(models())}")
        if config.precision not in ("bf16", "fp16", "fp32"):
            raise InputError("`precision`: choose bf16, fp16 or fp32")
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


class Trainer:
    """What the loop does differently for one kind of model: build it, the statistics of
    the training data its losses need (kept in the checkpoint), the related pictures its
    batches pair, its losses on a batch of (target, reference) pairs, its colours on
    validation pairs and its exported file (``MODEL.safetensors``)."""

    def build(self, config: TrainConfig) -> nn.Module:
        raise NotImplementedError  # pragma: no cover

    def start_from(self, model: nn.Module, path: Path) -> None:
        """Load trained weights of the same model and layout into ``model`` (strict)."""
        raise InputError(f"{path}: `init_weights` is not supported for this model")

    def prior(self, model: nn.Module, clips) -> torch.Tensor | None:
        return None

    def prior_weights(self, model: nn.Module, prior: torch.Tensor) -> torch.Tensor | None:
        return None

    def related(self, model: nn.Module, config: TrainConfig, clips, device) -> list | None:
        return None

    def losses(self, model: nn.Module, config: TrainConfig, targets: torch.Tensor, refs: torch.Tensor, step: int,
               weights: torch.Tensor | None) -> dict:
        raise NotImplementedError  # pragma: no cover

    def predict(self, model: nn.Module, lightness: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover

    def export(self, model: nn.Module, config: TrainConfig, path: Path, step: int) -> None:
        raise NotImplementedError  # pragma: no cover


def _run_facts(config: TrainConfig, step: int) -> dict:
    return {"steps": step, "size": config.size, "batch_size": config.batch_size}


class AutomaticTrainer(Trainer):
    """Any automatic network, through what it declares (``vidcolor.models.automatic``)."""

    def build(self, config):
        cls = automatic.network_class(config.model)
        sizes = {"width": config.width} if "width" in cls.Config.__dataclass_fields__ else {}
        return automatic.create(config.model, **sizes)

    def start_from(self, model, path):
        trained = automatic.load(path, model.name)
        load_strict(model, trained.state_dict(), path, f"the {model.name} network of these settings")

    def prior(self, model, clips):
        return model.training_prior(clips)

    def prior_weights(self, model, prior):
        return model.prior_weights(prior)

    def losses(self, model, config, targets, refs, step, weights):
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        return model.training_losses(targets, generator=generator, weights=weights)

    def predict(self, model, lightness, refs):
        return model.colorize(lightness, automatic.AutoOptions())

    def export(self, model, config, path, step):
        automatic.save(model, path, _run_facts(config, step))


def _start_from_trained_backbone(config: TrainConfig, target: backbones.Backbone) -> None:
    if config.backbone_weights:
        trained = backbones.load(config.backbone_weights)
        if trained.name != target.name:
            raise ModelError(f"{config.backbone_weights}: a {trained.name} backbone, the settings ask for {target.name}")
        target.load_state_dict(trained.state_dict())


class BackboneTrainer(Trainer):
    """The backbone with the hypercolumn head of the pretext task; its file holds the backbone."""

    def build(self, config):
        model = BackbonePretext(config.backbone)
        _start_from_trained_backbone(config, model.backbone)
        return model

    def losses(self, model, config, targets, refs, step, weights):
        lab = color.rgb_to_lab(targets)
        loss = chrominance_loss(model(lab[:, :1]), lab[:, 1:])
        return {"loss": loss}

    def predict(self, model, lightness, refs):
        return model(lightness)

    def export(self, model, config, path, step):
        backbones.save(model.backbone, path)


class ExemplarTrainer(Trainer):
    """The exemplar network on two-branch batches of (target, reference) pairs."""

    def build(self, config):
        model = ExemplarNet(ExemplarConfig(backbone=config.backbone, width=config.width))
        _start_from_trained_backbone(config, model.backbone)
        return model

    def start_from(self, model, path):
        from vidcolor.models.exemplar.network import load

        trained = load(path)
        mine, theirs = model.config, trained.config
        if (mine.backbone, mine.width) != (theirs.backbone, theirs.width):
            raise InputError(f"{path}: a {theirs.backbone} network of width {theirs.width}; "
                             f"the settings ask for {mine.backbone}, width {mine.width}")
        # the confidence is calibrated on the finished network (train/calibrate_confidence.py)
        state = {k: v for k, v in trained.state_dict().items() if not k.startswith("confidence_head.")}
        load_strict(model, state, path, "the exemplar network of these settings")

    def related(self, model, config, clips, device):
        if config.related_share <= 0:
            return None
        from vidcolor.train.data import related_items

        return related_items(clips, model.backbone.eval(), device)

    def losses(self, model, config, targets, refs, step, weights):
        unrelated = unrelated_count(targets.shape[0], config.unrelated_share)
        parts = exemplar_losses(model, targets, refs, config.alpha, unrelated=unrelated)
        return {"loss": parts.total, "chrominance": parts.chrominance, "perceptual": parts.perceptual,
                "unrelated": parts.unrelated}

    def predict(self, model, lightness, refs):
        return model(lightness, model.prepare(refs))

    def export(self, model, config, path, step):
        save_exemplar(model, path, _run_facts(config, step))


TRAINERS = {"exemplar": ExemplarTrainer, "backbone": BackboneTrainer}


def models() -> tuple[str, ...]:
    """What ``vidcolor train`` trains: the exemplar network, the backbone, the automatic networks
    that are trained here (not DDColor, whose weights are the authors')."""
    return (*TRAINERS, *automatic.trainable())


def trainer(name: str) -> Trainer:
    """The ``Trainer`` of model ``name``."""
    return TRAINERS[name]() if name in TRAINERS else AutomaticTrainer()


def build(config: TrainConfig) -> nn.Module:
    return trainer(config.model).build(config)


def step_losses(model: nn.Module, config: TrainConfig, targets: torch.Tensor, refs: torch.Tensor,
                step: int = 0, weights: torch.Tensor | None = None) -> dict:
    """The model's losses on a batch; ``weights``: what its prior gives its losses (``Trainer.prior_weights``)."""
    return trainer(config.model).losses(model, config, targets, refs, step, weights)


@torch.no_grad()
def predict(model: nn.Module, config: TrainConfig, targets: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """Inference on validation pairs: sRGB outputs ``(B, 3, H, W)``."""
    lightness = color.rgb_to_lab(targets)[:, :1]
    ab = trainer(config.model).predict(model, lightness, refs)
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
        raise InputError(f"{run_dir}: holds a run already; resume it with `resume` or choose another `out`")
    run_dir.mkdir(parents=True, exist_ok=True)

    kind = trainer(config.model)
    model = kind.build(config).to(dev)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(trainable, lr=config.lr)
    scaler = torch.amp.GradScaler(dev.type, enabled=config.precision == "fp16" and dev.type == "cuda")
    step = 0
    if state is None and config.init_weights:
        if not Path(config.init_weights).is_file():
            raise InputError(f"{config.init_weights}: no such weights file to start from")
        kind.start_from(model, Path(config.init_weights))
    if state is not None:
        model.load_state_dict(state["state"])
        optimiser.load_state_dict(state["optimiser"])
        scaler.load_state_dict(state["scaler"])
        step = state["step"]

    clips = load_media(data, config.load_size)
    related = kind.related(model, config, clips, dev)
    batches = ExemplarPairs(clips, config.size, config.batch_size, config.seed, related=related,
                            related_share=config.related_share, unrelated_share=config.unrelated_share)
    val_clips = load_media(val, config.load_size) if val else clips
    val_pairs = ExemplarPairs(val_clips, config.size, config.val_pairs, config.seed + 7919).batch_at(0)
    prior = state["prior"] if state is not None and "prior" in state else kind.prior(model, clips)
    weights = None
    if prior is not None:
        weights = kind.prior_weights(model, prior).to(dev)

    def save_checkpoint() -> None:
        payload = {
            "model": config.model, "config": asdict(config), "step": step, "state": model.state_dict(),
            "optimiser": optimiser.state_dict(), "scaler": scaler.state_dict(),
        }
        if prior is not None:
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
                    losses = kind.losses(model, config, targets, refs, step, weights)
                if not math.isfinite(losses["loss"].item()):
                    raise ModelError(f"training diverged at step {step} (loss {losses['loss'].item()}); lower `lr`")
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
        console.log.info(f"stopped at step {step}; checkpoint saved, continue with `resume={run_dir}`")
        raise
    return export(model, config, run_dir, step)


def export(model: nn.Module, config: TrainConfig, run_dir: Path, step: int) -> Path:
    model = model.cpu().to(memory_format=torch.contiguous_format).eval()
    path = run_dir / f"{config.model}.safetensors"
    trainer(config.model).export(model, config, path, step)
    return path
