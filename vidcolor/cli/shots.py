"""``vidcolor shots``: list a film's shots and export their keyframes."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vidcolor import console
from vidcolor.api import seconds
from vidcolor.cli.app import app, reports_errors
from vidcolor.errors import InputError, OutputError
from vidcolor.film.shots import DEFAULT_THRESHOLD
from vidcolor.io.atomic import check_writable_folder


def format_time(seconds: float) -> str:
    minutes, s = divmod(max(0.0, seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours:02d}:{minutes:02d}:{s:06.3f}"


@app.command("shots")
@reports_errors
def shots(
    film: Path = typer.Argument(..., help="A video file."),
    threshold: float = typer.Option(DEFAULT_THRESHOLD, "--shot-threshold", "--threshold", help="Cut detector threshold in [0, 1]."),
    export_keyframes: Optional[Path] = typer.Option(
        None, "--export-keyframes", help="Write the first frame of each shot as PNG into this folder, with keyframes.csv "
                                         "mapping shots to them (pass the folder back with --reference)."
    ),
    auto: bool = typer.Option(False, "--auto", help="Export the keyframes coloured by an automatic network."),
    model: Optional[str] = typer.Option(None, "--model", help="With --auto: the automatic network (default: the best installed)."),
    device: str = typer.Option("auto", "--device", help="With --auto: auto, cpu or cuda."),
    start: Optional[str] = typer.Option(None, "--start", help="Start time."),
    end: Optional[str] = typer.Option(None, "--end", help="End time."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """List the shots of a film (index, frames, times); optionally export their keyframes."""
    from vidcolor.film.keyframes import KeyframeExport
    from vidcolor.film.shots import scan_shots

    console.setup(quiet)
    if not 0.0 < threshold <= 1.0:
        raise InputError("--shot-threshold must be in (0, 1]")
    if (auto or model) and export_keyframes is None:
        raise InputError("--auto and --model colour the exported keyframes: give --export-keyframes DIR")
    if export_keyframes is not None:
        if export_keyframes.exists() and not export_keyframes.is_dir():
            raise OutputError(f"--export-keyframes {export_keyframes}: exists and is not a folder")
        check_writable_folder(export_keyframes)
    export = KeyframeExport(export_keyframes, model, device, auto) if export_keyframes is not None else None

    with console.progress(None, film.name) as bar:
        found = scan_shots(
            film,
            threshold,
            seconds(start, "start"),
            seconds(end, "end"),
            on_keyframe=export,
            progress=bar.update,
        )
    typer.echo(f"{'shot':>5} {'start frame':>11} {'end frame':>10} {'start':>13} {'end':>13}")
    for s in found:
        typer.echo(
            f"{s.index:>5} {s.start_frame:>11} {s.end_frame - 1:>10} {format_time(s.start_time):>13} {format_time(s.end_time):>13}"
        )
    if export is not None:
        export.finish(found)
        coloured = f" coloured by {export.model}" if export.model else ""
        console.log.info(f"wrote {len(export.written)} keyframes{coloured} and their mapping to {export_keyframes}")
