"""What the user sees while a run goes: log lines that do not break the progress bars."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

log = logging.getLogger("vidcolor")


class _TqdmHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        prefix = {logging.WARNING: "warning: ", logging.ERROR: "error: "}.get(record.levelno, "")
        tqdm.write(f"vidcolor: {prefix}{record.getMessage()}", file=sys.stderr)


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
