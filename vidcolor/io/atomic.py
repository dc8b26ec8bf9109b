"""Outputs appear only when complete: write beside the target, rename at the end."""

from __future__ import annotations

import errno
import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from vidcolor.errors import OutputError


def partial_path(path: Path) -> Path:
    """The temporary file a complete output is renamed from (same folder, same extension,
    so the format is still guessed from it)."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def check_output(path: Path, overwrite: bool, inputs: tuple[Path, ...] = ()) -> None:
    """Refuse an output that would replace an input, exists without ``--overwrite``, or
    lies in a folder that cannot be written."""
    for source in inputs:
        if path.exists() and source.exists() and path.resolve() == source.resolve():
            raise OutputError(f"{path}: the output would replace the input; choose another -o")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give the output a file name")
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: exists; pass `overwrite` to replace it")
    check_writable_folder(path.parent)


def check_output_folder(folder: Path, source: Path) -> None:
    """Refuse an output folder that is the input folder, is a file, or cannot be written."""
    if folder.exists() and folder.resolve() == source.resolve():
        raise OutputError(f"{folder}: the output folder would be the input folder; choose another -o")
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder")
    check_writable_folder(folder)


def check_writable_folder(folder: Path) -> None:
    """Refuse a folder that cannot be created or written (its nearest existing ancestor
    must be a writable folder)."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{folder}: cannot write here (permission denied)")


@contextmanager
def output_lock(path: Path) -> Iterator[None]:
    """Hold the lock file ``.NAME.lock`` beside ``path`` while the block writes it: a second
    run writing the same output at the same time is refused instead of breaking the first."""
    lock = path.with_name(f".{path.name}.lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = _take_lock(lock)
    except OSError as e:
        raise as_output_error(e, path) from None
    if fd is None:
        raise OutputError(f"{path}: another run is writing it; wait for that run to end or choose another -o")
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


def _take_lock(lock: Path) -> int | None:
    """An open descriptor of ``lock`` holding its exclusive lock, or None when another
    process holds it. Retries when the file was removed between opening and locking it."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            if os.path.samestat(os.fstat(fd), os.stat(lock)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` in one rename, on
    any error or interruption it is removed and ``path`` is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise as_output_error(e, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def as_output_error(error: OSError, path: Path, kept: bool = False) -> Exception:
    """Turn the OS errors of writing into one-line output errors; others pass unchanged.
    ``kept``: the finished part of the work was kept for ``--resume``."""
    if error.errno == errno.ENOSPC:
        if kept:
            return OutputError(f"{path}: disk full; the finished part is kept: free some space and run again "
                               "with `resume`")
        return OutputError(f"{path}: disk full; free some space and run again (nothing was written)")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"{path}: cannot write here ({error.strerror})")
    return error
