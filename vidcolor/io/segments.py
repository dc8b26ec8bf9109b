"""Resumable film output.

A film's colour frames are encoded into segment files of about ``SEGMENT_SECONDS`` each in a
work folder beside the output (``.NAME.resume/``), each recorded in the folder's
``segments.json`` once it is complete. When the last frame is written the segments are
joined, their packets copied as they are, with the source's audio and subtitle packets into
the output (through the usual hidden partial file and rename), and the folder is removed.

If the run is stopped, the folder stays: ``--resume`` continues it. The frames of finished
segments are decoded again (decoding is cheap beside colorization) but not colorized, and
the next segment starts where they end. Every segment starts afresh (the temporal state is
reset at its first frame in every run), so a resumed film is the same, frame for frame and
timestamp for timestamp, as one made in a single run. A folder made with other settings
or from another source is refused by ``--resume``, and replaced by a run without it; the
source is known by its content, so the folder resumes from any path the film is reached by.

Only finished segments stay in the folder: the unfinished one is removed when the run stops
(an interruption, a full disk), or by ``--resume`` after a run that was killed. The manifest
keeps each segment's digest; a finished segment whose file is missing or has changed is
done again on ``--resume``, with the ones after it, in one note.

Joining: each segment's packets keep their presentation times; where an encoder's frame
reordering makes a segment's first decoding times fall before the previous segment's last,
they are moved just after it (never past their presentation time), and packets that come
with no decoding time (Matroska stores none) get ones between their neighbours'. The
output's video stream takes the input's frame rate.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import av

from vidcolor.io.atomic import as_output_error, partial_path
from vidcolor.io.content import film_identity
from vidcolor.errors import InputError, OutputError
from vidcolor.io.video_reader import VideoInfo, VideoReader
from vidcolor.io.video_writer import VideoWriter
from vidcolor.console import log


SEGMENT_SECONDS = 10.0
MANIFEST = "segments.json"


def work_folder(output: Path) -> Path:
    return output.with_name(f".{output.name}.resume")


def fingerprint(source: Path, settings: dict) -> dict:
    """What a resumed run must share with the first: the source film's content and stream
    layout (not its path or time: a shared disk may be mounted elsewhere on another machine,
    ``vidcolor.io.content``) and the settings."""
    return {"source": film_identity(source), "settings": json.loads(json.dumps(settings, default=str))}


def segment_length(rate) -> int:
    """Frames in a segment of a film at ``rate`` frames per second (``SEGMENT_SECONDS`` each)."""
    return max(1, round(SEGMENT_SECONDS * float(rate)))


class SegmentedOutput:
    """Colour frames in, segment files out; ``join`` makes the final film."""

    def __init__(self, output: Path, info: VideoInfo, codec: str, crf: int, offset: float, key: dict,
                 resume: bool):
        self.output, self.info, self.codec, self.crf, self.offset = output, info, codec, crf, offset
        self.folder = work_folder(output)
        self.segment_frames = segment_length(info.rate)
        self.key = key
        self.segments: list[dict] = []
        if resume:
            self._load()
        elif self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._writer: VideoWriter | None = None
        self._current: dict | None = None

    def _load(self) -> None:
        manifest = self.folder / MANIFEST
        if not manifest.is_file():
            raise InputError(f"{self.output}: no unfinished run to resume (no {self.folder.name}/{MANIFEST}); "
                             "run without `resume`")
        try:
            saved = json.loads(manifest.read_text())
        except ValueError:
            raise InputError(f"{manifest}: unreadable; run without `resume` to start again") from None
        if saved.get("key") != self.key:
            raise InputError(f"{self.output}: the unfinished run was made from another source or with other settings; "
                             "run without `resume` to start again, or with the same options")
        listed = saved.get("segments", [])
        self.segments = self._usable(listed)
        if len(self.segments) < len(listed):
            self._save(self.segments)
        self._tidy()

    def _usable(self, listed: list) -> list[dict]:
        """The listed segments up to the first that is missing, damaged or out of place (it
        and the ones after it, each continuing from the one before, are done again)."""
        usable: list[dict] = []
        for segment in listed:
            if not self._intact(segment, len(usable), sum(s["frames"] for s in usable)):
                after = len(listed) - len(usable) - 1
                log.warning(f"{self.folder.name}/{len(usable):06d}{self.output.suffix} is damaged or missing: it"
                            f"{f' and the {after} after it' if after else ''} will be done again")
                break
            usable.append(segment)
        return usable

    def _intact(self, segment, number: int, first: int) -> bool:
        """Whether ``segment`` is the ``number``-th, begins at frame ``first`` and its file is
        the one written: the same digest, or without one, decoding to its recorded frames."""
        if not isinstance(segment, dict) or segment.get("file") != f"{number:06d}{self.output.suffix}":
            return False
        if segment.get("first") != first or not isinstance(segment.get("frames"), int):
            return False
        path = self.folder / segment["file"]
        if not path.is_file():
            return False
        if "sha256" in segment:
            return _digest(path) == segment["sha256"]
        try:
            with av.open(str(path)) as container:
                return sum(1 for _ in container.decode(video=0)) == segment["frames"]
        except (av.error.FFmpegError, IndexError):
            return False

    def _tidy(self) -> None:
        """Remove the files of the folder that no finished segment lists (an unfinished segment's)."""
        listed = {s["file"] for s in self.segments} | {MANIFEST}
        for path in self.folder.iterdir():
            if path.name not in listed and path.is_file():
                path.unlink(missing_ok=True)

    @property
    def done(self) -> int:
        """Frames already in finished segments: the index of the first frame still to do."""
        return sum(s["frames"] for s in self.segments)

    def starts_segment(self, index: int) -> bool:
        """Whether frame ``index`` begins a segment (the engine's temporal state is reset there)."""
        return index % self.segment_frames == 0

    def write(self, index: int, rgb, pts: int, rotation: int) -> None:
        if self._current is not None and self.starts_segment(index):
            self._finish_segment()
        if self._current is None:
            name = f"{len(self.segments):06d}{self.output.suffix}"  # the output's container and its rules
            self._writer = VideoWriter(self.folder / name, replace(self.info, copy_streams=[]), self.codec, self.crf,
                                       self.offset)
            self._current = {"file": name, "first": index, "frames": 0, "rotation": rotation}
        self._writer.write(rgb, pts, rotation)
        self._current["frames"] += 1

    def _finish_segment(self) -> None:
        self._writer.close()
        self._current["sha256"] = _digest(self.folder / self._current["file"])
        self._save([*self.segments, self._current])  # if it fails, the segment is still unfinished
        self.segments.append(self._current)
        self._writer, self._current = None, None

    def _save(self, segments: list[dict]) -> None:
        """Write the manifest listing ``segments`` through a partial file and a rename; OS
        errors (a full disk) pass unchanged."""
        manifest = self.folder / MANIFEST
        partial = partial_path(manifest)
        try:
            partial.write_text(json.dumps({"key": self.key, "segments": segments}, indent=1))
            os.replace(partial, manifest)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def close_segment(self) -> None:
        """Finish the segment being written (at the end, or before stopping)."""
        if self._current is not None:
            self._finish_segment()

    def abandon(self) -> None:
        """An interruption: the unfinished segment goes, the finished ones stay for
        ``--resume`` (the folder goes too when there are none)."""
        if self._writer is not None:
            self._writer.abort()
        self._writer, self._current = None, None
        if not self.segments:
            self.remove()
        elif self.folder.is_dir():
            self._tidy()

    def join(self, target: Path, start: float | None, end: float | None) -> None:
        """Copy every segment's video packets and the source's other streams into ``target``."""
        self.close_segment()
        if not self.segments:
            raise OutputError(f"{self.info.path}: no frame could be decoded, nothing to write")
        with VideoReader(self.info.path, start=start, end=end) as reader:
            writer = VideoWriter(target, reader.info, self.codec, self.crf, self.offset)
            try:
                with av.open(str(self.folder / self.segments[0]["file"])) as first:
                    writer.start_from(first.streams.video[0], self.segments[0]["rotation"])
                other = iter(reader.packets())
                waiting = next(other, None)
                for packet in self._video_packets():
                    while waiting is not None and _time(waiting) - self.offset <= _time(packet):  # the output's clock
                        writer.mux(waiting)
                        waiting = next(other, None)
                    writer.mux_video(packet)
                while waiting is not None:
                    writer.mux(waiting)
                    waiting = next(other, None)
                writer.close()
            except OSError as e:
                writer.abort()
                converted = as_output_error(e, self.output, kept=True)  # every segment is still there
                if converted is e:
                    raise
                raise converted from None
            except BaseException:
                writer.abort()
                raise

    def _video_packets(self):
        """Every segment's video packets in turn, their decoding times increasing."""
        last_dts = None
        for segment in self.segments:
            with av.open(str(self.folder / segment["file"])) as container:
                untimed: list[av.Packet] = []  # no decoding time yet: Matroska stores none
                for packet in container.demux(container.streams.video[0]):
                    if packet.size == 0:
                        continue
                    if packet.dts is None:
                        untimed.append(packet)
                        continue
                    if untimed:
                        last_dts = _fill_dts(untimed, last_dts, packet.dts)
                        yield from untimed
                        untimed.clear()
                    if last_dts is not None and packet.dts <= last_dts:
                        packet.dts = min(last_dts + 1, packet.pts) if packet.pts is not None else last_dts + 1
                    last_dts = packet.dts
                    yield packet
                if untimed:
                    last_dts = _fill_dts(untimed, last_dts, None)
                    yield from untimed

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _digest(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _time(packet: av.Packet) -> float:
    return float(packet.pts * packet.time_base) if packet.pts is not None else 0.0


def _fill_dts(packets: list[av.Packet], after: int | None, before: int | None) -> int:
    """Give ``packets``, which came with no decoding times, evenly spaced ones after
    ``after``, before ``before`` and none past its presentation time (either bound may be
    None). Returns the last one given."""
    bounds = [p.pts + 1 for p in packets if p.pts is not None] + ([before] if before is not None else [])
    count = len(packets) + 1
    if after is None:
        ceiling = min(bounds) if bounds else 0
        after = ceiling - count * max(1, packets[0].duration or 1)
    else:
        ceiling = min(bounds) if bounds else after + count
    step = max(1, (ceiling - after) // count)
    for i, packet in enumerate(packets, 1):
        packet.dts = after + i * step
    return packets[-1].dts
