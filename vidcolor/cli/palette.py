"""``vidcolor palette``: the colours the siggraph17 network suggests at a point."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vidcolor.cli.app import app, reports_errors
from vidcolor.errors import InputError


@app.command("palette")
@reports_errors
def palette_command(
    image: Path = typer.Argument(..., help="A grey (or colour) photo."),
    at: str = typer.Option(..., "--at", help="The point: X,Y in pixels, or fractions of the width and height (0.5,0.25)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="siggraph17 weights (default: the installed ones)."),
    hints: Optional[Path] = typer.Option(None, "--hints", help="JSON colour points already given."),
    top: int = typer.Option(9, "--top", help="How many colours (K of the k-means)."),
    work_res: int = typer.Option(256, "--work-res", help="Short side (pixels) at which the network runs."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
) -> None:
    """Suggest colours for a point of a picture (siggraph17's colour distribution): share, colour, a, b."""
    import numpy as np

    from vidcolor.ops import color
    from vidcolor import colorizers
    from vidcolor.colorizers import guidance
    from vidcolor.film.engine import resolve_device
    from vidcolor.film.pipeline import load_grey
    from vidcolor.models.siggraph17 import _fraction, palette

    grey = load_grey(image)
    h, w = grey.shape[:2]
    try:
        x, y = (float(v) if "." in v else int(v) for v in at.split(","))
        fx, fy = _fraction(x, w), _fraction(y, h)
    except ValueError as e:
        raise InputError(f"--at {at!r}: give X,Y in pixels or fractions ({e})") from None
    if top < 1:
        raise InputError("--top must be at least 1")
    dev = resolve_device(device)
    colorizer = colorizers.create("siggraph17", device=dev, weights=weights,
                                  options=guidance.build("siggraph17", image, hints=hints))
    lightness = color.grey_to_lightness(np.stack([grey]), dev).unsqueeze(1)
    small = color.resize(lightness, color.work_size(h, w, work_res))
    for hex_colour, (a, b), share in palette(colorizer.net, small, fx, fy, top, colorizer.options):
        typer.echo(f"{share:.3f}\t{hex_colour}\t{a:.1f}\t{b:.1f}")
