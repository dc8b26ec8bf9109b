"""How the ``vidcolor`` program stops on Ctrl-C (SIGINT) and SIGTERM.

While it starts (Python imports its libraries, the options are parsed) nothing has been
written, so a signal ends it at once: one line and exit 130. Raising ``KeyboardInterrupt``
there would be unsafe: an extension module importing another (PyTorch importing NumPy)
swallows the exception and goes on with a half-imported library, and an import stopped
half way can leave its lock held for a worker thread to wait on forever.

Once the libraries are loaded (``while_working``), a signal raises ``KeyboardInterrupt``
in the main thread, so the run removes its partial output and keeps the finished
segments of a film; a second signal while it cleans up ends it at once. A library may turn
the ``KeyboardInterrupt`` into an error of its own (PyTorch does, inside some of its C++
calls): ``interrupted`` still tells that the signal came, so the run is reported as
interrupted, not as that error.

A program that imports vidcolor as a library keeps its own signal handlers: these are
set only by the ``vidcolor`` entry point.
"""

from __future__ import annotations

import os
import signal

SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_CODE = 130


def _end_at_once(signum, frame) -> None:
    os.write(2, b"vidcolor: error: interrupted; nothing was written\n")
    os._exit(EXIT_CODE)


def _end_again(signum, frame) -> None:
    os.write(2, b"vidcolor: error: interrupted again; stopped without cleaning up\n")
    os._exit(EXIT_CODE)


_raised: list[int] = []  # the signals that raised KeyboardInterrupt


def _raise_interrupt(signum, frame) -> None:
    _install(_end_again)
    _raised.append(signum)
    raise KeyboardInterrupt


def interrupted() -> bool:
    """Whether a signal has raised ``KeyboardInterrupt`` in this program."""
    return bool(_raised)


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` again where a loop that goes on past one item's error sees
    an error that was an interrupt."""
    if interrupted():
        raise KeyboardInterrupt


def _install(handler) -> None:
    for sig in SIGNALS:
        signal.signal(sig, handler)


def while_starting() -> None:
    """A signal ends the program at once (set first thing by the entry point)."""
    _install(_end_at_once)


def while_working() -> None:
    """From now on a signal raises ``KeyboardInterrupt``; only where ``while_starting`` is
    in force, so a library user's or a test runner's handlers are left alone."""
    if signal.getsignal(signal.SIGINT) is _end_at_once:
        _install(_raise_interrupt)
