"""``vidcolor INPUT``: colour a film, a photo or a folder of photos (``vidcolor.colorize``)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from vidcolor import console
from vidcolor.cli.app import app, reports_errors
from vidcolor.film.shots import DEFAULT_THRESHOLD
from vidcolor.film.temporal import DEFAULT_MODE as DEFAULT_TEMPORAL


@app.command("colorize")
@reports_errors
def colorize(
    input: Path = typer.Argument(..., help="A video file, an image file, or a folder of images (recursed)."),
    output: Optional[Path] = typer.Option(
        None, "-o", "--output", help="Where to write; default: beside the input with a _color suffix."
    ),
    reference: List[Path] = typer.Option(
        [],
        "--reference",
        "-r",
        help="Colour reference image; repeat it or give a folder to let each shot pick the best, "
        "or a CSV/JSON mapping shot_index,reference_path.",
    ),
    auto_reference: bool = typer.Option(
        False, "--auto-reference", help="Pick each shot's (or photo's) reference from --gallery by recommendation."
    ),
    gallery: Optional[Path] = typer.Option(
        None, "--gallery", help="Folder of colour images for --auto-reference (default: $VIDCOLOR_GALLERY)."
    ),
    auto: bool = typer.Option(False, "--auto", help="Automatic colorization, no reference."),
    model: Optional[str] = typer.Option(
        None, "--model", help="Colorizer by name (default: exemplar where its weights are installed, else transfer)."
    ),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Trained weights for --model (default: the installed ones)."),
    temporal: str = typer.Option(
        DEFAULT_TEMPORAL, "--temporal", help="Film: none, smooth (flow-guided smoothing), recurrent (the last "
        "colorized frame guides the exemplar model) or both.",
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    work_res: int = typer.Option(256, "--work-res", help="Short side (pixels) at which colour is predicted."),
    batch_size: int = typer.Option(4, "--batch-size", help="Frames per colorizer call."),
    crf: int = typer.Option(18, "--crf", help="Quality for libx264/libx265 (lower is better, 18 is near lossless)."),
    codec: str = typer.Option("libx264", "--codec", help="Video encoder, e.g. libx264, libx265, ffv1, prores_ks."),
    start: Optional[str] = typer.Option(None, "--start", help="Start time: seconds or [HH:]MM:SS[.mmm]."),
    end: Optional[str] = typer.Option(None, "--end", help="End time: seconds or [HH:]MM:SS[.mmm]."),
    shot_threshold: float = typer.Option(DEFAULT_THRESHOLD, "--shot-threshold", help="Cut detector threshold in [0, 1]."),
    preview: bool = typer.Option(
        False, "--preview", help="Only write a PNG contact sheet of a few frames (grey, reference, output)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    resume: bool = typer.Option(False, "--resume", help="Film: continue an interrupted run (same options)."),
    report: bool = typer.Option(
        False, "--report", help="Film: also write OUTPUT.report.json, each shot's reference and match confidence."
    ),
    decode: Optional[str] = typer.Option(None, "--decode", help="eccv16: annealed (default), mean or mode."),
    temperature: Optional[float] = typer.Option(
        None, "--temperature", help="eccv16: annealed-mean temperature (default: the one tuned with the weights)."),
    hints: Optional[Path] = typer.Option(None, "--hints", help="siggraph17: JSON list of colour points {x, y, color, size}."),
    global_hint: Optional[Path] = typer.Option(
        None, "--global-hint", help="siggraph17, larsson: take the colour distribution of this image."
    ),
    saturation: Optional[float] = typer.Option(None, "--saturation", help="siggraph17: global saturation in [0, 1]."),
    samples: Optional[int] = typer.Option(None, "--samples", help="pixcolor: write N different colorizations (_s1, _s2, ...)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="pixcolor: random seed of the samples (default 0)."),
    auto_mode: str = typer.Option(
        "keyframes", "--auto-mode", help="Film with --auto: keyframes (coloured automatically, carried through each shot "
                                         "by the exemplar network) or per-frame."),
    key_every: float = typer.Option(4.0, "--key-every", help="Film with --auto keyframes: at least one keyframe every N seconds."),
    post: Optional[str] = typer.Option(
        None, "--post", help="devc: the authors' post-processing: authors (ab x 1.25 and their smoother, the default), "
                             "boost, smooth or none."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no notes; errors only."),
) -> None:
    """Colour a film, a photo or a folder of photos."""
    import vidcolor

    console.setup(quiet)
    target = vidcolor.colorize(
        input, output, reference=reference, auto=auto, model=model, weights=weights, device=device,
        auto_reference=auto_reference, gallery=gallery, temporal=temporal, work_res=work_res, batch_size=batch_size,
        codec=codec, crf=crf, start=start, end=end, shot_threshold=shot_threshold, preview=preview,
        overwrite=overwrite, resume=resume, report=report, decode=decode, temperature=temperature, hints=hints,
        global_hint=global_hint, saturation=saturation, samples=samples, seed=seed, post=post, auto_mode=auto_mode,
        key_every=key_every,
    )
    console.log.info(f"wrote {target}")
