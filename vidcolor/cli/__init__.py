"""The ``vidcolor`` command line: one module per command, each parsing its options and
calling the library (``vidcolor.api`` and the packages below it); ``run`` is the entry
point's, with usage errors in one line too."""

from __future__ import annotations

import sys

import typer

import vidcolor.cli.colorize  # noqa: F401  (each command registers itself on the app, in this order)
import vidcolor.cli.shots  # noqa: F401
import vidcolor.cli.evaluate  # noqa: F401
import vidcolor.cli.recommend  # noqa: F401
import vidcolor.cli.train  # noqa: F401
import vidcolor.cli.weights  # noqa: F401
import vidcolor.cli.palette  # noqa: F401
import vidcolor.cli.batch  # noqa: F401
from vidcolor import stopping
from vidcolor.cli.app import app

COMMANDS = {"colorize", "shots", "eval", "train", "recommend", "weights", "palette", "batch"}


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


__all__ = ["app", "normalize_argv", "run"]
