"""The command line's application and its one error handler: every error the library reports
becomes one line on stderr and a non-zero exit (``VIDCOLOR_DEBUG=1`` shows the traceback
instead)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import typer

from vidcolor import stopping
from vidcolor.io.atomic import as_output_error
from vidcolor.errors import VidcolorError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Colour for black-and-white film and photographs. "
    "Run 'vidcolor INPUT --reference REF' (the colorize command is the default).",
)


INTERRUPTED = "interrupted; no partial output was left behind"


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
        except KeyboardInterrupt:
            _fail(INTERRUPTED, stopping.EXIT_CODE)
        except Exception as e:
            if stopping.interrupted():  # a library turned the interrupt into an error of its own
                _fail(INTERRUPTED, stopping.EXIT_CODE)
            _report(e)

    return wrapper


def _report(e: Exception) -> None:
    """The one line for an error a command ended with (or, with ``VIDCOLOR_DEBUG=1``, the
    error itself for anything but the library's own errors)."""
    if isinstance(e, VidcolorError):
        _fail(e.for_command_line(), e.exit_code)
    if os.environ.get("VIDCOLOR_DEBUG"):
        raise e
    if isinstance(e, OSError):
        converted = as_output_error(e, Path(e.filename or "output"))
        _fail(converted.for_command_line() if isinstance(converted, VidcolorError) else f"{e.strerror or e}", 1)
    _fail(f"unexpected {type(e).__name__}: {e} (set VIDCOLOR_DEBUG=1 to see the traceback)", 1)  # a bug
