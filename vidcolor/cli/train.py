"""``vidcolor train``: train a model on your own colour photos and videos."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from vidcolor import console
from vidcolor.cli.app import app, reports_errors
from vidcolor.errors import InputError


@app.command("train")
@reports_errors
def train_command(
    model: str = typer.Argument(..., help="What to train: exemplar, backbone, eccv16, siggraph17, larsson or pixcolor."),
    more_data: List[Path] = typer.Argument(None, help="More data folders (--data A B C is --data A --data B --data C).",
                                           show_default=False),
    data: List[Path] = typer.Option(..., "--data", help="Folders of colour photos and videos (several may follow it)."),
    val: List[Path] = typer.Option([], "--val", help="Held-out folders for validation (default: the training data)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default: runs/MODEL)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Settings file (TOML or JSON), e.g. train/exemplar.toml."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Total optimisation steps."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Pairs per step."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Adam learning rate."),
    backbone_weights: Optional[Path] = typer.Option(None, "--backbone-weights", help="Start from a trained backbone."),
    init_weights: Optional[Path] = typer.Option(None, "--init-weights",
                                                help="Start from trained weights of the same model (e.g. the shipped ones)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    precision: Optional[str] = typer.Option(None, "--precision", help="bf16, fp16 or fp32 (mixed precision on CUDA)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its checkpoint."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a model on your own colour photos and videos; Ctrl-C saves a checkpoint."""
    from vidcolor.train.loop import TrainConfig, train

    console.setup(quiet)
    data = [*data, *(more_data or [])]
    for folder in [*data, *val]:
        if not folder.exists():
            raise InputError(f"{folder}: no such file or folder")
    if config is not None and not config.is_file():
        raise InputError(f"{config}: no such settings file")
    settings = TrainConfig.load(
        config, model=model, steps=steps, batch_size=batch_size, lr=lr, precision=precision,
        backbone_weights=str(backbone_weights) if backbone_weights else None,
        init_weights=str(init_weights) if init_weights else None,
    )
    weights = train(settings, list(data), out or Path("runs") / model, list(val) or None, device, resume, steps)
    console.log.info(f"wrote {weights}")
