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

Parts: a long film can be coloured by several workers at once, each taking a range of
segments (``Part``): each part keeps its own manifest (``part-FIRST.json``) and numbers its
segment files from its first, so parts never write the same file; a part is resumed on its
own. When every part is complete, ``from_parts`` gathers them, in order and without a gap,
for the join. A part decodes the film from its start (shots and references are found as in
one run) but colours only its own frames.

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
from dataclasses import dataclass, replace
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


def fingerprint(source: Path, streams, settings: dict) -> dict:
    """What a resumed run must share with the first: the source film's content and stream
    layout (``streams``, of its open container; not its path or time: a shared disk may be
    mounted elsewhere on another machine, ``vidcolor.io.content``) and the settings."""
    return {"source": film_identity(source, streams), "settings": json.loads(json.dumps(settings, default=str))}


@dataclass(frozen=True)
class Part:
    """Segments ``first`` to ``end`` (excluded; None: to the film's end) of a film."""

    first: int
    end: int | None = None

    @property
    def manifest(self) -> str:
        return f"part-{self.first:06d}.json"

    def holds(self, number: int) -> bool:
        return number >= self.first and (self.end is None or number < self.end)


def segment_length(rate) -> int:
    """Frames in a segment of a film at ``rate`` frames per second (``SEGMENT_SECONDS`` each)."""
    return max(1, round(SEGMENT_SECONDS * float(rate)))


class SegmentedOutput:
    """Colour frames in, segment files out; ``join`` makes the final film."""

    def __init__(self, output: Path, info: VideoInfo, codec: str, crf: int, offset: float, key: dict | None = None,
                 part: Part | None = None):
        self.output, self.info, self.codec, self.crf, self.offset = output, info, codec, crf, offset
        self.folder = work_folder(output)
        self.segment_frames = segment_length(info.rate)
        self.key, self.part = key, part
        self.manifest = part.manifest if part is not None else MANIFEST
        self.first_number = part.first if part is not None else 0
        self.segments: list[dict] = []
        self.complete = False  # a part's: all its frames were written
        self._writer: VideoWriter | None = None
        self._current: dict | None = None

    def begin(self, resume: bool) -> "SegmentedOutput":
        """Continue the unfinished run in the folder (``resume``), or start afresh: the folder
        emptied (a part: of its own files only)."""
        if resume:
            self._load()
        elif self.part is not None:
            self._clear()
        elif self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def _load(self) -> None:
        manifest = self.folder / self.manifest
        if not manifest.is_file():
            raise InputError(f"{self.output}: no unfinished run to resume (no {self.folder.name}/{self.manifest}); "
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
        self.complete = bool(saved.get("complete")) and len(self.segments) == len(listed)
        if len(self.segments) < len(listed):
            self._save(self.segments)
        self._tidy()

    def _usable(self, listed: list) -> list[dict]:
        """The listed segments up to the first that is missing, damaged or out of place (it
        and the ones after it, each continuing from the one before, are done again)."""
        usable: list[dict] = []
        for segment in listed:
            number = self.first_number + len(usable)
            if not self._intact(segment, number, self.start + sum(s["frames"] for s in usable)):
                after = len(listed) - len(usable) - 1
                log.warning(f"{self.folder.name}/{number:06d}{self.output.suffix} is damaged or missing: it"
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

    def _own(self, path: Path) -> bool:
        """Whether ``path`` in the folder is this run's to keep or remove (a part's: its
        manifest and the segments of its range, never another part's)."""
        if self.part is None:
            return True
        number = path.name.split(".", 1)[0]
        return path.name.startswith(self.manifest) or (number.isdigit() and self.part.holds(int(number)))

    def _tidy(self) -> None:
        """Remove this run's files that no finished segment lists (an unfinished segment's)."""
        listed = {s["file"] for s in self.segments} | {self.manifest}
        for path in self.folder.iterdir():
            if path.name not in listed and path.is_file() and self._own(path):
                path.unlink(missing_ok=True)

    def _clear(self) -> None:
        """A part started afresh: its own files go, the other parts' stay."""
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                if path.is_file() and self._own(path):
                    path.unlink(missing_ok=True)

    @property
    def start(self) -> int:
        """The index of the first frame this run writes (a part's first; 0 for a whole film)."""
        return self.first_number * self.segment_frames

    @property
    def done(self) -> int:
        """The index of the first frame still to do (after the finished segments)."""
        return self.start + sum(s["frames"] for s in self.segments)

    @property
    def stop(self) -> int | None:
        """The index of the first frame past a part (None: the film's end)."""
        return None if self.part is None or self.part.end is None else self.part.end * self.segment_frames

    def starts_segment(self, index: int) -> bool:
        """Whether frame ``index`` begins a segment (the engine's temporal state is reset there)."""
        return index % self.segment_frames == 0

    def write(self, index: int, rgb, pts: int, rotation: int) -> None:
        if self._current is not None and self.starts_segment(index):
            self._finish_segment()
        if self._current is None:
            name = f"{self.first_number + len(self.segments):06d}{self.output.suffix}"  # the output's container
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

    def _save(self, segments: list[dict], **more) -> None:
        """Write the manifest listing ``segments`` (and ``more``) through a partial file and a
        rename; OS errors (a full disk) pass unchanged."""
        manifest = self.folder / self.manifest
        partial = partial_path(manifest)
        try:
            partial.write_text(json.dumps({"key": self.key, "segments": segments, **more}, indent=1))
            os.replace(partial, manifest)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def close_segment(self) -> None:
        """Finish the segment being written (at the end, or before stopping)."""
        if self._current is not None:
            self._finish_segment()

    def finish_part(self, ended: bool, shots: list[dict], model: str) -> None:
        """A part's frames are all written: its manifest says so, with whether the film
        ended within it, the shots it coloured and the model (for the joined film's report)."""
        self.close_segment()
        self._save(self.segments, complete=True, ended=ended, shots=shots, model=model)
        self.complete = True

    def abandon(self) -> None:
        """An interruption: the unfinished segment goes, the finished ones stay for
        ``--resume`` (the folder goes too when there are none)."""
        if self._writer is not None:
            self._writer.abort()
        self._writer, self._current = None, None
        if self.part is not None:
            if self.folder.is_dir():
                self._tidy() if self.segments else self._clear()
        elif not self.segments:
            self.remove()
        elif self.folder.is_dir():
            self._tidy()

    @classmethod
    def from_parts(cls, output: Path, info: VideoInfo, codec: str, crf: int, offset: float) -> "SegmentedOutput":
        """Every complete part of ``output``'s folder gathered for ``join``: the parts must
        share one key and follow each other without a gap up to the one the film ended in.
        Their shots are in ``shots`` (a shot that runs over two parts, once)."""
        joined = cls(output, info, codec, crf, offset)
        joined.shots, joined.model = [], None
        manifests = sorted(joined.folder.glob("part-*.json")) if joined.folder.is_dir() else []
        keys, ended = [], False
        for manifest in manifests:
            try:
                saved = json.loads(manifest.read_text())
                first = int(manifest.stem.split("-", 1)[1])
            except (OSError, ValueError):
                raise InputError(f"{manifest}: unreadable; colour that part again") from None
            if not saved.get("complete"):
                raise InputError(f"{output}: part {manifest.name} is not finished")
            if ended and saved.get("segments"):
                raise InputError(f"{output}: {manifest.name} goes on after the part the film ended in")
            if not ended and first != len(joined.segments):
                raise InputError(f"{output}: the parts leave a gap before {manifest.name}")
            keys.append(saved.get("key"))
            joined.model = joined.model or saved.get("model")
            joined.segments += saved.get("segments", [])
            joined.shots = merge_shots(joined.shots, saved.get("shots", []))
            ended = ended or bool(saved.get("ended"))
        if not ended:
            raise InputError(f"{output}: no part reaches the film's end")
        if any(key != keys[0] for key in keys):
            raise InputError(f"{output}: its parts were made with other settings; colour them again")
        return joined

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


def merge_shots(shots: list[dict], more: list[dict]) -> list[dict]:
    """``shots`` followed by a later part's ``more``; a shot in both becomes one, its frames
    added and its confidence and colourfulness averaged by frames."""
    shots = [dict(s) for s in shots]
    for shot in more:
        last = shots[-1] if shots else None
        if last is None or last["shot"] != shot["shot"]:
            shots.append(dict(shot))
            continue
        total = last["frames"] + shot["frames"]
        for name in ("confidence", "colourfulness"):
            if last.get(name) is not None and shot.get(name) is not None:
                last[name] = round((last[name] * last["frames"] + shot[name] * shot["frames"]) / max(total, 1), 3)
        last["frames"] = total
    return shots


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
