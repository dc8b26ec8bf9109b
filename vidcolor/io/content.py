"""What a file is, by its content rather than by where it lies.

A resumed film must come from the same source with the same settings, and on a shared disk
the same source may be mounted at another path on another machine, with another
modification time. So a file is known by its size and the SHA-256 of its first and last
``EDGE`` bytes (whole files up to twice that are read whole); a film also by its streams'
layout; a folder by its files' relative names and identities. Reading two megabytes of a
reel is cheap beside colouring it, and two different films agreeing on size, both ends and
streams is not a risk worth a full read of every reel.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

EDGE = 1 << 20


def file_id(path: Path) -> str:
    """``size:sha256`` of the file's first and last ``EDGE`` bytes (all of it when small)."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        digest.update(file.read(EDGE))
        if size > 2 * EDGE:
            file.seek(size - EDGE)
        digest.update(file.read(EDGE))
    return f"{size}:{digest.hexdigest()}"


def stream_layout(streams) -> list[str]:
    """Each of a film's streams (an open container's) as ``type:codec``, in file order."""
    return [f"{s.type}:{s.codec_context.name if s.codec_context else '?'}" for s in streams]


def identity(path: Path) -> str | list:
    """A file's ``file_id``; a folder's sorted ``[relative name, file_id]`` of its files."""
    path = Path(path)
    if path.is_dir():
        return [[f.relative_to(path).as_posix(), file_id(f)] for f in sorted(path.rglob("*")) if f.is_file()]
    return file_id(path)


def film_identity(path: Path, streams) -> dict:
    """What a resumed run checks of its source film: content and stream layout."""
    return {"content": file_id(path), "streams": stream_layout(streams)}
