"""What the user sees while a run goes: log lines that do not break the progress bars."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

from vidcolor import errors

log = logging.getLogger("vidcolor")


def _parameters(record: logging.LogRecord) -> bool:
    """Log lines name parameters as errors do (``vidcolor.errors``): Python's spelling for
    any handler, the flags' for the command line's."""
    message = record.getMessage()
    record.for_command_line = errors.as_flags(message)
    record.msg, record.args = errors.as_parameters(message), ()
    return True


log.addFilter(_parameters)


class _TqdmHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        prefix = {logging.WARNING: "warning: ", logging.ERROR: "error: "}.get(record.levelno, "")
        tqdm.write(f"vidcolor: {prefix}{getattr(record, 'for_command_line', record.getMessage())}", file=sys.stderr)


def setup(quiet: bool = False) -> None:
    """Send vidcolor's log to stderr through tqdm; ``quiet`` keeps only errors."""
    log.handlers[:] = [_TqdmHandler()]
    log.setLevel(logging.ERROR if quiet else logging.INFO)
    log.propagate = False


def progress(total: int | None, desc: str, unit: str = "frames") -> tqdm:
    """A progress bar with rate and ETA, silent when the log is quiet."""
    return tqdm(
        total=total or None,
        desc=desc,
        unit=unit,
        dynamic_ncols=True,
        leave=False,
        file=sys.stderr,
        disable=log.getEffectiveLevel() > logging.INFO,
    )
