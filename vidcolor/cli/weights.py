"""``vidcolor weights list|import|verify``: the installed trained weights."""

from __future__ import annotations

from pathlib import Path

import typer

from vidcolor.cli.app import app, reports_errors
from vidcolor.errors import ModelError


weights_app = typer.Typer(no_args_is_help=True, help="The installed trained weights: list and verify them.")
app.add_typer(weights_app, name="weights")


@weights_app.command("list")
@reports_errors
def weights_list() -> None:
    """Each installed weights file: model, file, parameters, training steps or source, and its status."""
    from vidcolor.models import weights

    entries = weights.manifest()
    if not entries:
        typer.echo(f"no weights are installed in {weights.weights_dir()}")
        return
    for entry in entries:
        problem = weights.verify(entry)
        typer.echo(f"{entry['name']}\t{entry['file']}\t{weights.describe(entry)}\t{'ok' if problem is None else problem}")


@weights_app.command("import")
@reports_errors
def weights_import(
    name: str = typer.Argument(..., help="eccv16, siggraph17, devc or ddcolor."),
    file: Path = typer.Argument(..., help="The authors' released .pth file (devc: their zip, or a folder of its files)."),
    any_hash: bool = typer.Option(False, "--any-hash", help="Accept a file of the same layout that is not the release."),
) -> None:
    """Install the authors' released weights (sha256, keys and shapes checked) for --model NAME."""
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
