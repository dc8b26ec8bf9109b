"""Streaming video decoding with PyAV.

A background thread demuxes the film and decodes its video stream into a bounded queue, so
decoding overlaps with colorization and memory does not grow with the film's length. The
packets of the other streams (audio, subtitles) travel through the same queue, in file
order, for the writer to copy. Errors in the thread are re-raised in the consumer.

A damaged or truncated film gives every frame that can be decoded: undecodable packets are
skipped, an error of the demuxer ends the film there, and a film that ends before its
declared duration says so in a warning.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from vidcolor.errors import CorruptMediaError, InputError
from vidcolor.console import log


MAX_CONSECUTIVE_BAD = 50
_END = object()


@dataclass
class Frame:
    """One decoded video frame: its grey levels and its timing in the input's time base."""

    index: int
    pts: int
    time: float
    grey: np.ndarray  # (H, W) uint8, or uint16 for inputs deeper than 8 bits
    rotation: int = 0
    colour: bool = False  # the decoded frame carried colour (checked on the first frame)


@dataclass
class VideoInfo:
    path: Path
    width: int
    height: int
    rate: Fraction
    time_base: Fraction
    frames: int  # best estimate; 0 when the container does not say
    duration: float
    pix_fmt: str
    bit_depth: int
    color_range: int
    copy_streams: list = field(default_factory=list)


def _bit_depth(fmt: av.VideoFormat) -> int:
    depths = [c.bits for c in fmt.components] or [8]
    return max(depths)


def _is_colour_format(fmt: av.VideoFormat) -> bool:
    name = fmt.name
    if name.startswith(("gray", "ya", "mono")):
        return False
    return True


def has_colour(frame: av.VideoFrame, tolerance: int = 4) -> bool:
    """True when a frame's chroma departs from neutral (a colour film, not a grey one)."""
    if not _is_colour_format(frame.format):
        return False
    rgb = frame.reformat(width=min(frame.width, 320), height=min(frame.height, 180), format="rgb24").to_ndarray()
    spread = rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2)
    return bool(np.percentile(spread, 99) > tolerance)


def open_video(path: str | Path) -> av.container.InputContainer:
    """Open a media file for reading, with one clear error for each way it can fail."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a video")
    try:
        container = av.open(str(path), "r")
    except av.error.PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a readable video or image file ({_reason(e)})") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: has no video stream")
    return container


def _declared_end(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    """Where the video stream says it ends, in seconds (0 when it does not say): its own
    duration, a Matroska DURATION tag, or else the container's."""
    tag = stream.metadata.get("DURATION", "")
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    if stream.duration:
        return start + float(stream.duration * stream.time_base)
    if tag.count(":") == 2:
        hours, minutes, seconds = tag.split(":")
        try:
            return start + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            pass
    if container.duration:
        return ((container.start_time or 0) + container.duration) / av.time_base
    return 0.0


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


class VideoReader:
    """Iterate over a film's frames (as grey levels) and the packets of its other streams.

    ``for item in reader`` yields :class:`Frame` objects and ``av.Packet`` objects in file
    order. ``copy=False`` leaves out the other streams.
    """

    def __init__(
        self,
        path: str | Path,
        start: float | None = None,
        end: float | None = None,
        copy: bool = True,
        queue_size: int = 16,
        max_consecutive_bad: int = MAX_CONSECUTIVE_BAD,
    ):
        self.path = Path(path)
        self.container = open_video(self.path)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "SLICE"  # frame threads would lose the frames queued behind a damaged one
        self.start, self.end = start, end
        self.max_consecutive_bad = max_consecutive_bad
        self.bad_frames = 0
        self._demux_error: Exception | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        copy_streams = []
        if copy:
            copy_streams = [s for s in self.container.streams if s.type in ("audio", "subtitle")]
        self.info = self._probe(copy_streams)
        self.declared_end = _declared_end(self.container, self.stream)
        if self.end is not None and self.declared_end:
            self.declared_end = min(self.declared_end, self.end)

    def _probe(self, copy_streams: list) -> VideoInfo:
        s, cc = self.stream, self.stream.codec_context
        if s.time_base is None or not cc.width or not cc.height:
            raise InputError(f"{self.path}: video stream has no usable size or time base")
        rate = s.average_rate or s.guessed_rate or s.base_rate or Fraction(25)
        duration = 0.0
        if s.duration is not None:
            duration = float(s.duration * s.time_base)
        elif self.container.duration is not None:
            duration = self.container.duration / av.time_base
        frames = s.frames or int(round(duration * rate))
        if self.end is not None or self.start:
            lo = self.start or 0.0
            hi = min(self.end, duration) if self.end is not None and duration else (self.end or duration)
            frames = max(0, int(round((hi - lo) * rate)))
            duration = max(0.0, hi - lo)
        fmt = cc.format
        return VideoInfo(
            path=self.path,
            width=cc.width,
            height=cc.height,
            rate=Fraction(rate),
            time_base=Fraction(s.time_base),
            frames=frames,
            duration=duration,
            pix_fmt=fmt.name if fmt else "unknown",
            bit_depth=_bit_depth(fmt) if fmt else 8,
            color_range=int(cc.color_range or 0),
            copy_streams=copy_streams,
        )

    # -- the decoding thread ------------------------------------------------------------

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _convert(self, frame: av.VideoFrame) -> np.ndarray:
        grey = frame.reformat(
            format="gray16le" if self.info.bit_depth > 8 else "gray",
            src_color_range=frame.color_range or self.info.color_range or None,
            dst_color_range="JPEG",
        )
        return grey.to_ndarray()

    def _run(self) -> None:
        try:
            self._decode()
            self._put(_END)
        except BaseException as e:  # handed to the consumer, raised there
            self._put(e)

    def _decode(self) -> None:
        if self.start:
            self.container.seek(int(self.start / self.stream.time_base), stream=self.stream, backward=True)
        self._index, self._last_pts, self._pts_shift = 0, None, None
        consecutive = 0
        video_done = False
        for packet in self._demux([self.stream, *self.info.copy_streams]):
            if self._stop.is_set():
                return
            if packet.stream.type != "video":
                keep = self._in_range(packet)
                if keep is None:
                    if video_done:
                        return
                    continue
                if keep and not self._put(packet):
                    return
                continue
            if video_done:
                continue
            if self._pts_shift is None:
                self._pts_shift = self._reorder_shift(packet)
            try:
                frames = self.stream.decode(packet)
                consecutive = 0
            except av.error.FFmpegError as e:
                self.bad_frames += 1
                consecutive += 1
                if self.bad_frames == 1:
                    log.warning(f"{self.path.name}: skipping undecodable data ({_reason(e)}); continuing")
                if consecutive >= self.max_consecutive_bad:
                    raise CorruptMediaError(
                        f"{self.path}: {consecutive} undecodable packets in a row; the file is too damaged to read"
                    ) from None
                continue
            for frame in frames:
                state = self._emit(frame)
                if state == "stop":
                    return
                if state == "past_end":
                    video_done = True
                    break
            if video_done and not self.info.copy_streams:
                return
        if not video_done:
            try:
                remaining = self.stream.decode(None)
            except av.error.EOFError:  # demux's final empty packet already drained it
                remaining = []
            for frame in remaining:
                if self._emit(frame) != "ok":
                    return
            self._check_end()

    def _demux(self, streams: list) -> Iterator[av.Packet]:
        """The demuxer's packets; an error of the demuxer (a damaged file) ends them."""
        packets = self.container.demux(streams)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as e:
                self._demux_error = e
                return
            yield packet

    @property
    def damaged(self) -> bool:
        """Whether the demuxer gave up with an error before the end of the file."""
        return self._demux_error is not None

    def _check_end(self) -> None:
        """Warn when the film ended before its declared duration or by an error of the demuxer."""
        reached = self.start or 0.0
        if self._last_pts is not None:
            reached = float(self._last_pts * self.stream.time_base + 1 / self.info.rate)
        declared = f" of {self.declared_end:.2f} s" if self.declared_end > reached else ""
        if self._demux_error is not None:
            log.warning(f"{self.path.name}: ends at {reached:.2f} s{declared}: the file is damaged "
                        f"({_reason(self._demux_error)})")
        elif self.declared_end and reached < self.declared_end - max(0.5, 3 / self.info.rate):
            log.warning(f"{self.path.name}: ends at {reached:.2f} s{declared}: the file is truncated or damaged")

    def _in_range(self, packet: av.Packet) -> bool | None:
        """Whether a packet of another stream belongs to the chosen range (None: past its end)."""
        if packet.size == 0:
            return False
        t = None if packet.pts is None else float(packet.pts * packet.stream.time_base)
        if t is not None and self.end is not None and t >= self.end:
            return None
        return t is None or not self.start or t >= self.start

    def packets(self) -> Iterator[av.Packet]:
        """Only the packets of the other streams in the chosen range, in file order, without
        decoding any video (for joining them to video encoded elsewhere)."""
        if not self.info.copy_streams:
            return
        if self.start:
            self.container.seek(int(self.start / self.stream.time_base), stream=self.stream, backward=True)
        for packet in self._demux(self.info.copy_streams):  # a damaged file: as far as it can be read
            keep = self._in_range(packet)
            if keep:
                yield packet

    def _reorder_shift(self, packet: av.Packet) -> int:
        """AVI stores no presentation times: the demuxer invents them one decoder delay
        after the decoding times, which this undoes (0 for every other container)."""
        if self.container.format.name != "avi" or packet.pts is None or packet.dts is None:
            return 0
        return max(0, packet.pts - packet.dts)

    def _emit(self, frame: av.VideoFrame) -> str:
        """Queue one decoded frame with a valid, increasing pts; says "ok", "stop" (the
        consumer went away) or "past_end" (beyond --end)."""
        tb = self.stream.time_base
        last = self._last_pts
        pts = frame.pts
        if pts is not None:
            pts -= self._pts_shift
        if pts is None:
            step = max(1, int(round(1 / (self.info.rate * tb))))
            pts = 0 if last is None else last + step
        if last is not None and pts <= last:
            pts = last + 1
        t = float(pts * tb)
        if self.end is not None and t >= self.end - 1e-6:
            return "past_end"
        if self.start and t < self.start - 1e-6:
            return "ok"
        self._last_pts = pts
        item = Frame(self._index, pts, t, self._convert(frame), int(frame.rotation or 0))
        if self._index == 0:
            item.colour = has_colour(frame)
        self._index += 1
        return "ok" if self._put(item) else "stop"

    # -- the consumer side -------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame | av.Packet]:
        if self._thread is not None:
            raise RuntimeError("a VideoReader can be iterated once")
        self._thread = threading.Thread(target=self._run, name="vidcolor-decode", daemon=True)
        self._thread.start()
        while True:
            item = self._queue.get()
            if item is _END:
                break
            if isinstance(item, BaseException):
                if isinstance(item, (av.error.FFmpegError,)):
                    raise InputError(f"{self.path}: cannot read ({_reason(item)})") from None
                raise item
            yield item
        if self.bad_frames:
            log.info(f"{self.path.name}: {self.bad_frames} undecodable packet(s) skipped in all")

    def frames(self) -> Iterator[Frame]:
        """Only the video frames."""
        for item in self:
            if isinstance(item, Frame):
                yield item

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
