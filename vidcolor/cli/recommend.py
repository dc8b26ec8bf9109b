"""``vidcolor recommend``: the best gallery images as references for a picture or film."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vidcolor import console
from vidcolor.cli.app import app, reports_errors
from vidcolor.errors import InputError


@app.command("recommend")
@reports_errors
def recommend_command(
    target: Path = typer.Argument(..., help="A grey photo, or a film (its middle frame is used)."),
    gallery: Path = typer.Option(
        ..., "--gallery", help="Folder of colour images (recursed); its index is kept in it as .vidcolor-gallery.npz."
    ),
    top: int = typer.Option(5, "--top", help="How many references to list."),
    weights: Optional[Path] = typer.Option(
        None, "--weights", help="Backbone weights or an exemplar checkpoint (default: the installed exemplar network's)."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of lines."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no notes; results and errors only."),
) -> None:
    """List the gallery images that suit a target best as colour references (score, global score, path)."""
    import json

    from vidcolor.film.engine import resolve_device
    from vidcolor.film.recommend import recommend_for

    console.setup(quiet)
    if top < 1:
        raise InputError("--top must be at least 1")
    found = recommend_for(target, gallery, top=top, weights=weights, device=resolve_device(device))
    if as_json:
        typer.echo(json.dumps([{"path": str(r.path), "score": r.score, "global_score": r.global_score} for r in found], indent=2))
    else:
        for r in found:
            typer.echo(f"{r.score:.4f}\t{r.global_score:.4f}\t{r.path}")
