"""Networks kept loaded between runs of one process.

A batch's worker colours film after film with the same networks: reading and building them
again for each film costs seconds that a long batch pays a thousand times. ``keep_loaded()``
makes every loader wrapped by ``kept`` hand back the network it built before from the same
file (same path, size and modification time) for the same device. The networks are used for
inference only and hold no state between calls, so sharing them changes no colour. Off by
default: a single run builds its networks once anyway.
"""

from __future__ import annotations

import functools
from pathlib import Path

_networks: dict | None = None


def keep_loaded(on: bool = True) -> None:
    """Keep (``on``) or stop keeping, and forget, the networks loaded in this process."""
    global _networks
    _networks = {} if on else None


def kept(load):
    """``load(path, *args)`` -> its network, from the process's store while ``keep_loaded``."""

    @functools.wraps(load)
    def loader(path, *args, **kwargs):
        if _networks is None:
            return load(path, *args, **kwargs)
        stat = Path(path).stat()
        key = (load.__module__, load.__qualname__, str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns,
               tuple(map(str, args)), tuple(sorted((k, str(v)) for k, v in kwargs.items())))
        if key not in _networks:
            _networks[key] = load(path, *args, **kwargs)
        return _networks[key]

    return loader
