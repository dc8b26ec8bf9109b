"""The ``vidcolor`` command line. It parses options and calls the library; every error the
library reports becomes one line on stderr and a non-zero exit (``VIDCOLOR_DEBUG=1`` shows
the traceback instead)."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from vidcolor import console, stopping
from vidcolor.api import seconds
from vidcolor.io.atomic import as_output_error, check_output, check_writable_folder
from vidcolor.errors import InputError, ModelError, OutputError, VidcolorError
from vidcolor.film.shots import DEFAULT_THRESHOLD
from vidcolor.film.temporal import DEFAULT_MODE as DEFAULT_TEMPORAL

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Colour for black-and-white film and photographs. "
    "Run 'vidcolor INPUT --reference REF' (the colorize command is the default).",
)


def _fail(message: str, code: int) -> None:
    typer.echo(f"vidcolor: error: {message}", err=True)
    raise typer.Exit(code)


def _load_libraries() -> None:
    """Import the heavy libraries in the main thread before any work starts, so that no
    worker thread imports one while a signal stops the main thread (``vidcolor.stopping``)."""
    import av  # noqa: F401
    import cv2  # noqa: F401
    import numpy.ma  # noqa: F401  (numpy's percentile imports it on first use)
    import torch  # noqa: F401


def reports_errors(command):
    """Catch everything once, here: one line, a non-zero exit, no traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            _load_libraries()
            stopping.while_working()
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except VidcolorError as e:
            _fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted; no partial output was left behind", 130)
        except OSError as e:
            if os.environ.get("VIDCOLOR_DEBUG"):
                raise
            converted = as_output_error(e, Path(e.filename or "output"))
            _fail(str(converted) if isinstance(converted, VidcolorError) else f"{e.strerror or e}", 1)
        except Exception as e:  # a bug: still one line, with the way to see more
            if os.environ.get("VIDCOLOR_DEBUG"):
                raise
            _fail(f"unexpected {type(e).__name__}: {e} (set VIDCOLOR_DEBUG=1 to see the traceback)", 1)

    return wrapper


def format_time(seconds: float) -> str:
    minutes, s = divmod(max(0.0, seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours:02d}:{minutes:02d}:{s:06.3f}"


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
    model: Optional[str] = typer.Option(None, "--model", help="Colorizer by name (default: transfer)."),
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
    decode: Optional[str] = typer.Option(None, "--decode", help="eccv16: annealed (default), mean or mode."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="eccv16: annealed-mean temperature (0.38)."),
    hints: Optional[Path] = typer.Option(None, "--hints", help="siggraph17: JSON list of colour points {x, y, color, size}."),
    global_hint: Optional[Path] = typer.Option(
        None, "--global-hint", help="siggraph17, larsson: take the colour distribution of this image."
    ),
    saturation: Optional[float] = typer.Option(None, "--saturation", help="siggraph17: global saturation in [0, 1]."),
    samples: Optional[int] = typer.Option(None, "--samples", help="pixcolor: write N different colorizations (_s1, _s2, ...)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="pixcolor: random seed of the samples (default 0)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no notes; errors only."),
) -> None:
    """Colour a film, a photo or a folder of photos."""
    import vidcolor

    console.setup(quiet)
    target = vidcolor.colorize(
        input, output, reference=reference, auto=auto, model=model, weights=weights, device=device,
        auto_reference=auto_reference, gallery=gallery, temporal=temporal, work_res=work_res, batch_size=batch_size,
        codec=codec, crf=crf, start=start, end=end, shot_threshold=shot_threshold, preview=preview,
        overwrite=overwrite, resume=resume, decode=decode, temperature=temperature, hints=hints,
        global_hint=global_hint, saturation=saturation, samples=samples, seed=seed,
    )
    console.log.info(f"wrote {target}")


@app.command("shots")
@reports_errors
def shots(
    film: Path = typer.Argument(..., help="A video file."),
    threshold: float = typer.Option(DEFAULT_THRESHOLD, "--shot-threshold", "--threshold", help="Cut detector threshold in [0, 1]."),
    export_keyframes: Optional[Path] = typer.Option(
        None, "--export-keyframes", help="Write the first frame of each shot as PNG into this folder."
    ),
    start: Optional[str] = typer.Option(None, "--start", help="Start time."),
    end: Optional[str] = typer.Option(None, "--end", help="End time."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """List the shots of a film (index, frames, times); optionally export their keyframes."""
    import numpy as np

    from vidcolor.io.images import eight_bit, write_image
    from vidcolor.film.shots import scan_shots

    console.setup(quiet)
    if not 0.0 < threshold <= 1.0:
        raise InputError("--shot-threshold must be in (0, 1]")
    if export_keyframes is not None:
        if export_keyframes.exists() and not export_keyframes.is_dir():
            raise OutputError(f"--export-keyframes {export_keyframes}: exists and is not a folder")
        check_writable_folder(export_keyframes)
    written = []

    def export(shot, grey) -> None:
        path = export_keyframes / f"shot_{shot.index:04d}.png"
        write_image(path, np.repeat(eight_bit(grey)[..., None], 3, axis=2))
        written.append(path)

    with console.progress(None, film.name) as bar:
        found = scan_shots(
            film,
            threshold,
            seconds(start, "--start"),
            seconds(end, "--end"),
            on_keyframe=export if export_keyframes else None,
            progress=bar.update,
        )
    typer.echo(f"{'shot':>5} {'start frame':>11} {'end frame':>10} {'start':>13} {'end':>13}")
    for s in found:
        typer.echo(
            f"{s.index:>5} {s.start_frame:>11} {s.end_frame - 1:>10} {format_time(s.start_time):>13} {format_time(s.end_time):>13}"
        )
    if export_keyframes:
        console.log.info(f"wrote {len(written)} keyframes to {export_keyframes}")


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
    )
    typer.echo(format_table(report))
    if json_out is not None:
        write_json(report, json_out)
        console.log.info(f"wrote {json_out}")
    if sheet is not None:
        console.log.info(f"wrote {sheet}")


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
    )
    weights = train(settings, list(data), out or Path("runs") / model, list(val) or None, device, resume, steps)
    console.log.info(f"wrote {weights}")


weights_app = typer.Typer(no_args_is_help=True, help="The installed trained weights: list and verify them.")
app.add_typer(weights_app, name="weights")


@weights_app.command("list")
@reports_errors
def weights_list() -> None:
    """Each installed weights file: model, file, parameters, training steps, and its status."""
    from vidcolor.models import weights

    entries = weights.manifest()
    if not entries:
        typer.echo(f"no weights are installed in {weights.weights_dir()}")
        return
    for entry in entries:
        problem = weights.verify(entry)
        params = f"{entry['parameters'] / 1e6:.1f} M parameters" if "parameters" in entry else ""
        steps = f"{entry['training']['steps']} steps" if "steps" in entry.get("training", {}) else ""
        details = ", ".join(x for x in (params, steps) if x)
        typer.echo(f"{entry['name']}\t{entry['file']}\t{details}\t{'ok' if problem is None else problem}")


@weights_app.command("import")
@reports_errors
def weights_import(
    name: str = typer.Argument(..., help="eccv16 or siggraph17."),
    file: Path = typer.Argument(..., help="The authors' released .pth file."),
    any_hash: bool = typer.Option(False, "--any-hash", help="Accept a file of the same layout that is not the release."),
) -> None:
    """Install the authors' released weights (sha256, keys and shapes checked) for --auto --model NAME."""
    from vidcolor.models.official import import_release

    target = import_release(name, file, any_hash=any_hash)
    typer.echo(f"{name}: installed {target}")


@weights_app.command("verify")
@reports_errors
def weights_verify() -> None:
    """Check every installed file against the manifest's sha256 and load it; exit 2 on a problem."""
    from vidcolor.models import weights
    from vidcolor.colorizers import create

    entries = weights.manifest()
    for entry in entries:
        problem = weights.verify(entry)
        if problem is None:
            create(entry["name"], device="cpu", weights=weights.weights_dir() / entry["file"])
        typer.echo(f"{entry['name']}: {problem or 'ok'}")
        if problem:
            raise ModelError(problem)
    typer.echo(f"{len(entries)} weights file(s) verified in {weights.weights_dir()}")


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


COMMANDS = {"colorize", "shots", "eval", "train", "recommend", "weights", "palette"}


def normalize_argv(argv: list[str]) -> list[str]:
    """``vidcolor FILM ...`` means ``vidcolor colorize FILM ...``."""
    if argv and argv[0] not in COMMANDS and argv[0] not in ("--help", "-h"):
        return ["colorize", *argv]
    return argv


# Typer's own copy of Click (or Click itself): its usage errors
_click = sys.modules[typer.BadParameter.__module__]


def run(argv: list[str]) -> None:
    """Run the command line ``argv`` and exit; a usage error is one line too (exit 2). The
    process-wide settings are made here: glibc keeps freed buffers for the next frame."""
    from vidcolor.film.allocator import keep_freed_memory

    keep_freed_memory()
    try:
        result = app(args=normalize_argv(argv), prog_name="vidcolor", standalone_mode=False)
    except _click.NoArgsIsHelpError as e:
        typer.echo(e.format_message())
        sys.exit(2)
    except _click.UsageError as e:
        path = e.ctx.command_path if e.ctx is not None else "vidcolor"
        message = " ".join(e.format_message().split())
        typer.echo(f"vidcolor: error: {message} (see '{path} --help')", err=True)
        sys.exit(e.exit_code)
    except _click.Abort:
        typer.echo("vidcolor: error: interrupted; nothing was written", err=True)
        sys.exit(stopping.EXIT_CODE)
    sys.exit(result if isinstance(result, int) else 0)
