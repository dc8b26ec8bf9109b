"""``vidcolor batch``: colour every film and picture of a folder or a manifest
(``vidcolor.batch``), here or on a Ray cluster."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from vidcolor import console
from vidcolor.batch.run import PART_MINUTES, REPORT
from vidcolor.cli.app import app, reports_errors
from vidcolor.errors import BatchError


@app.command("batch")
@reports_errors
def batch(
    source: Path = typer.Argument(..., help="A folder of films and pictures (recursed), or a CSV/JSON manifest: "
                                            "source, output and options per row."),
    outdir: Path = typer.Option(..., "-o", "--output", help="Output folder (same relative paths; report.json)."),
    reference: List[Path] = typer.Option([], "--reference", "-r", help="Reference(s) for every job without its own."),
    auto: Optional[bool] = typer.Option(None, "--auto", help="Automatic colorization, no reference."),
    model: Optional[str] = typer.Option(None, "--model", help="Colorizer by name (as for a single film)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Trained weights for --model."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda."),
    work_res: Optional[int] = typer.Option(None, "--work-res", help="Short side (pixels) at which colour is predicted."),
    temporal: Optional[str] = typer.Option(None, "--temporal", help="Film: none, smooth, recurrent or both."),
    codec: Optional[str] = typer.Option(None, "--codec", help="Video encoder, e.g. libx264, ffv1."),
    crf: Optional[int] = typer.Option(None, "--crf", help="Quality for libx264/libx265."),
    auto_mode: Optional[str] = typer.Option(None, "--auto-mode", help="Films with --auto: keyframes or per-frame."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run on a Ray cluster: its address, or 'local' to start one "
                                                          "on this machine."),
    workers: Optional[int] = typer.Option(None, "--workers", help="With --ray: workers (default: the cluster's CPUs)."),
    gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", help="With --ray: GPUs each worker reserves."),
    retries: int = typer.Option(3, "--retries", help="With --ray: runs again of a job whose worker died."),
    part_minutes: float = typer.Option(PART_MINUTES, "--part-minutes", help="With --ray: films longer than this are "
                                       "coloured in parts of about this length, side by side (0: whole films)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no notes; errors only."),
) -> None:
    """Colour a folder or a manifest of films and pictures; a re-run finishes what is not done."""
    from vidcolor.batch import run_batch
    from vidcolor.batch.plan import defaults

    console.setup(quiet)
    options = defaults(reference=list(reference) or None, auto=auto, model=model, weights=weights, device=device,
                       work_res=work_res, temporal=temporal, codec=codec, crf=crf, auto_mode=auto_mode)
    summary = run_batch(source, outdir, options, ray=ray, workers=workers, gpus_per_worker=gpus_per_worker,
                        retries=retries, part_minutes=part_minutes)
    if summary["failed"]:
        failed = ", ".join(summary["failed_names"][:3]) + (", ..." if summary["failed"] > 3 else "")
        raise BatchError(f"{summary['failed']} of {summary['jobs']} jobs failed ({failed}); "
                         f"the others are done: see {outdir / REPORT}")
