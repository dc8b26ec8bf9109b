"""A folder of colour originals, as evaluation and training read it: its videos and photos
(``find_items``), and a video's frames decoded as uint8 RGB (``video_frames``). PyAV is
imported where a video is opened, so a folder of photos needs none."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from vidcolor.errors import CorruptMediaError, InputError
from vidcolor.io.images import IMAGE_SUFFIXES, read_rgb
from vidcolor.console import log

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov"}


@dataclass
class Item:
    path: Path
    name: str  # path relative to DATA
    kind: str  # "video" or "photo"


def find_items(data: Path) -> list[Item]:
    """Every video and photo under ``data`` (or ``data`` itself), sorted; hidden skipped."""
    data = Path(data)
    if not data.exists():
        raise InputError(f"{data}: no such file or folder")
    if data.is_file():
        candidates, root = [data], data.parent
    else:
        root = data
        candidates = sorted(
            p
            for p in data.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(data).parts)
        )
    items = []
    for path in candidates:
        suffix = path.suffix.lower()
        kind = "video" if suffix in VIDEO_SUFFIXES else "photo" if suffix in IMAGE_SUFFIXES else None
        if kind is not None:
            items.append(Item(path, str(path.relative_to(root)), kind))
    if not items:
        raise InputError(f"{data}: no videos ({', '.join(sorted(VIDEO_SUFFIXES))}) or photos to evaluate")
    return items


def video_frames(path: Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decode a video's frames one at a time as uint8 RGB ``(H, W, 3)`` (the originals)."""
    from vidcolor.io.video_reader import open_video

    container = open_video(path)
    try:
        for count, frame in enumerate(_decoded(container, path), 1):
            yield frame.to_ndarray(format="rgb24")
            if max_frames is not None and count >= max_frames:
                return
    finally:
        container.close()


def _decoded(container, path: Path) -> Iterator["av.VideoFrame"]:  # noqa: F821
    """Every decodable frame of the first video stream, the decoder's last ones included;
    undecodable packets are skipped with one warning, until too many come in a row."""
    import av

    from vidcolor.io.video_reader import MAX_CONSECUTIVE_BAD

    stream = container.streams.video[0]
    stream.thread_type = "SLICE"  # frame threads would hold back the last frames
    bad, consecutive = 0, 0
    for packet in container.demux(stream):
        try:
            frames = stream.decode(packet)
            consecutive = 0
        except av.error.EOFError:
            break
        except av.error.FFmpegError as e:
            bad, consecutive = bad + 1, consecutive + 1
            if bad == 1:
                log.warning(f"{path.name}: skipping undecodable data ({e}); continuing")
            if consecutive >= MAX_CONSECUTIVE_BAD:
                raise CorruptMediaError(f"{path}: {consecutive} undecodable packets in a row") from None
            continue
        yield from frames
    try:
        yield from stream.decode(None)  # what the decoder still holds
    except av.error.EOFError:  # demux's final empty packet already drained it
        pass


def frame_count(path: Path, max_frames: int | None) -> int:
    """The number of frames a video says it has (0 when unknown), capped by ``max_frames``."""
    from vidcolor.io.video_reader import open_video

    container = open_video(path)
    try:
        stream = container.streams.video[0]
        frames = stream.frames
        if not frames and stream.duration is not None and stream.average_rate:
            frames = int(round(float(stream.duration * stream.time_base * stream.average_rate)))
    finally:
        container.close()
    return min(frames, max_frames) if max_frames and frames else (frames or 0)


def first_frame(item: Item) -> np.ndarray:
    if item.kind == "photo":
        return read_rgb(item.path)
    with closing(video_frames(item.path, 1)) as frames:
        for rgb in frames:
            return rgb
    raise InputError(f"{item.path}: no frames")
