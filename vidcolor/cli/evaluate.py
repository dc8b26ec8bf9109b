"""``vidcolor eval``: measure quality against colour originals."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vidcolor import console
from vidcolor.cli.app import app, reports_errors
from vidcolor.errors import OutputError
from vidcolor.film.temporal import DEFAULT_MODE as DEFAULT_TEMPORAL
from vidcolor.io.atomic import check_output


@app.command("eval")
@reports_errors
def eval_command(
    data: Path = typer.Argument(..., help="A folder of colour videos and photos (recursed), or one file."),
    model: str = typer.Option(..., "--model", help="Colorizer by name, e.g. transfer."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Trained weights for --model (default: the installed ones)."),
    temporal: str = typer.Option(
        DEFAULT_TEMPORAL, "--temporal", help="Film: none, smooth (flow-guided smoothing), recurrent (the last "
        "colorized frame guides the exemplar model) or both.",
    ),
    reference_mode: str = typer.Option(
        "keyframe",
        "--reference-mode",
        help="keyframe: each shot's reference is its original first frame; exemplar: another item's "
        "first frame; none: automatic models.",
    ),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write every figure to this JSON file."),
    sheet: Optional[Path] = typer.Option(
        None, "--sheet", help="Write a PNG contact sheet (rows: grey, reference, output, original) of a few items."
    ),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="Evaluate at most N frames of each video."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    work_res: int = typer.Option(256, "--work-res", help="Short side (pixels) at which colour is predicted."),
    auto_mode: str = typer.Option(
        "per-frame", "--auto-mode", help="Automatic models on videos: per-frame, or keyframes as films are coloured."),
    key_every: float = typer.Option(4.0, "--key-every", help="With --auto-mode keyframes: a keyframe at least every N seconds."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no notes; the table and errors only."),
) -> None:
    """Measure quality and speed on colour originals: grey them, colour them, compare, with baselines."""
    from vidcolor.eval.evaluate import evaluate, format_table, write_json

    console.setup(quiet)
    if sheet is not None and sheet.suffix.lower() != ".png":
        raise OutputError(f"--sheet {sheet}: the contact sheet is written as .png")
    for target in (json_out, sheet):
        if target is not None:
            if target.is_dir():
                raise OutputError(f"{target}: is a folder")
            check_output(target, overwrite=True)
    report = evaluate(
        data,
        model,
        reference_mode=reference_mode,
        device=device,
        work_res=work_res,
        max_frames=max_frames,
        sheet=sheet,
        weights=weights,
        temporal=temporal,
        auto_mode=auto_mode,
        key_every=key_every,
    )
    typer.echo(format_table(report))
    if json_out is not None:
        write_json(report, json_out)
        console.log.info(f"wrote {json_out}")
    if sheet is not None:
        console.log.info(f"wrote {sheet}")
