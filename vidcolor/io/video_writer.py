"""Encoding colour frames with PyAV, copying the other streams untouched.

Video is encoded with the chosen codec (libx264, crf 18, yuv420p by default) keeping the
input's timestamps, frame rate, rotation and colour range. Audio and subtitle packets are
copied bit-exact; audio whose codec the output container cannot hold is re-encoded to AAC,
subtitles it cannot hold are dropped, each with one note.
"""

from __future__ import annotations

import errno
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidcolor.errors import InputError, OutputError
from vidcolor.io.video_reader import VideoInfo
from vidcolor.console import log


DEFAULT_CODEC = "libx264"
CRF_RANGES = {"libx264": 51, "libx265": 51, "libvpx-vp9": 63, "libaom-av1": 63, "libsvtav1": 63}  # 0 to this


def check_codec(name: str) -> None:
    try:
        codec = av.codec.Codec(name, "w")
    except Exception:
        raise OutputError(f"unknown video encoder {name!r}; try libx264, libx265, ffv1 or prores_ks") from None
    if codec.type != "video":
        raise OutputError(f"{name!r} is not a video encoder")


def check_encoder(name: str, crf: int, output: Path) -> None:
    """Before any work: the encoder exists and opens here (a GPU encoder needs its GPU),
    ``crf`` is in its range, and files like ``output`` can hold its video."""
    check_codec(name)
    top = CRF_RANGES.get(name)
    if top is not None and not 0 <= crf <= top:
        raise InputError(f"`crf={crf}`: {name} takes 0 to {top} (lower is better)")
    with tempfile.TemporaryDirectory() as folder:
        try:
            container = av.open(str(Path(folder) / f"probe{output.suffix}"), "w")
        except (av.error.FFmpegError, ValueError) as e:
            raise OutputError(f"cannot write video files ending in {output.suffix or '(no extension)'!r} ({e})") from None
        try:
            try:
                stream = container.add_stream(name, rate=24, options=encoder_options(name, crf, container.format.name))
            except (ValueError, av.error.FFmpegError) as e:
                raise OutputError(f"{output.suffix or 'these'} files cannot hold {name} video ({e})") from None
            stream.width, stream.height = 64, 64
            stream.pix_fmt = _pixel_format(av.codec.Codec(name, "w"), 64, 64, 8)
            try:
                stream.codec_context.open()
            except (ValueError, av.error.FFmpegError) as e:
                reason = getattr(e, "strerror", None) or e
                raise OutputError(f"the video encoder {name} cannot run here ({reason}); try `codec=libx264`") from None
        finally:
            container.close()


def encoder_options(name: str, crf: int, container_format: str) -> dict[str, str]:
    """The encoder's settings: its quality, frames in order for AVI, and no log of its own."""
    options = {"crf": str(crf)} if name in CRF_RANGES else {}
    if container_format == "avi" and name in ("libx264", "libx265"):
        options["bframes"] = "0"  # AVI stores no presentation times: keep frames in order
    if name == "libx265":
        options["x265-params"] = "log-level=error"  # it prints its settings on stderr otherwise
    return options


def _pixel_format(codec: av.codec.Codec, width: int, height: int, bit_depth: int) -> str:
    formats = [f.name for f in (codec.video_formats or [])]
    if not formats:
        return "yuv420p"
    odd = width % 2 or height % 2
    preferred = ["yuv444p", "yuv444p10le", "rgb24", "gbrp"] if odd else ["yuv420p", "yuv420p10le", "yuv422p10le", "yuv444p"]
    if bit_depth > 8 and not odd:
        preferred = ["yuv420p10le", *preferred]
    for name in preferred:
        if name in formats:
            return name
    return formats[0]


class VideoWriter:
    """Write colour frames and copied packets into ``path`` (a temporary file the caller
    renames when complete). Streams are set up on the first frame, so its rotation is
    known; packets that arrive before it wait."""

    def __init__(self, path: Path, info: VideoInfo, codec: str = DEFAULT_CODEC, crf: int = 18, offset: float = 0.0):
        check_codec(codec)
        self.path, self.info, self.codec_name, self.crf = path, info, codec, crf
        self.offset = offset
        try:
            self.container = av.open(str(path), "w")
        except (av.error.FFmpegError, ValueError) as e:
            if getattr(e, "errno", None) == errno.ENOSPC:  # a full disk, reported as such by the caller
                raise
            # ``path`` is the hidden partial file: name the kind of output, not it
            raise OutputError(f"cannot write video files ending in {path.suffix or '(no extension)'!r} ({e})") from None
        self.video: av.VideoStream | None = None
        self.size: tuple[int, int] = (info.width, info.height)
        self._copies: dict[int, tuple] = {}
        self._pending: list[av.Packet] = []
        self._last_pts: int | None = None
        self._encoding = True  # False when video packets are copied (start_from)

    # -- set-up on the first frame ----------------------------------------------------

    def start_from(self, template: av.VideoStream, rotation: int = 0) -> None:
        """Set up to copy already-encoded video packets of ``template``'s kind (``mux_video``)
        instead of encoding frames: the output's video stream takes its parameters."""
        self.video = self.container.add_stream_from_template(template)
        self.video.time_base = template.time_base
        self.video.codec_context.framerate = self.info.rate  # the stream's average rate
        self._encoding = False
        if rotation:
            self.video.set_display_rotation(rotation)
        self._add_copies()

    def mux_video(self, packet: av.Packet) -> None:
        packet.stream = self.video
        self.container.mux(packet)

    def _start(self, rotation: int) -> None:
        info = self.info
        codec = av.codec.Codec(self.codec_name, "w")
        options = encoder_options(self.codec_name, self.crf, self.container.format.name)
        try:
            video = self.container.add_stream(self.codec_name, rate=info.rate, options=options)
        except (ValueError, av.error.FFmpegError) as e:
            raise OutputError(f"{self.path.suffix or 'these'} files cannot hold {self.codec_name} video ({e})") from None
        video.width, video.height = self.size
        video.pix_fmt = _pixel_format(codec, *self.size, info.bit_depth)
        if video.pix_fmt.startswith("yuv444") and (self.size[0] % 2 or self.size[1] % 2):
            log.info(f"odd frame size {self.size[0]}x{self.size[1]}: encoding 4:4:4 to keep every pixel")
        # AVI counts frames: its time base must be one frame; elsewhere keep the input's.
        self.time_base = 1 / info.rate if self.container.format.name == "avi" else info.time_base
        video.time_base = self.time_base
        video.codec_context.time_base = self.time_base
        video.codec_context.framerate = info.rate
        full_range = info.color_range == 2
        video.codec_context.color_range = 2 if full_range else 1
        self._colorspace = "ITU709" if self.size[1] >= 720 else "SMPTE170M"
        video.codec_context.colorspace = 1 if self._colorspace == "ITU709" else 6
        video.codec_context.color_primaries = 1 if self._colorspace == "ITU709" else 6
        video.codec_context.color_trc = 1 if self._colorspace == "ITU709" else 6
        self._range = "JPEG" if full_range else "MPEG"
        if self.container.format.name == "avi":
            video.codec_context.max_b_frames = 0
        if rotation:
            video.set_display_rotation(rotation)
        self.video = video
        self._add_copies()

    def _add_copies(self) -> None:
        for stream in self.info.copy_streams:
            self._add_copy(stream)
        for packet in self._pending:
            self._mux_copy(packet)
        self._pending.clear()

    def _add_copy(self, stream) -> None:
        name = stream.codec_context.name
        if name in self.container.supported_codecs:
            try:
                out = self.container.add_stream_from_template(stream)
                self._copies[stream.index] = (out, None)
                return
            except (ValueError, av.error.FFmpegError):
                pass
        if stream.type == "audio":
            cc = stream.codec_context
            out = self.container.add_stream("aac", rate=cc.sample_rate or 48000)
            if cc.layout is not None:
                out.codec_context.layout = cc.layout
            self._copies[stream.index] = (out, stream)
            log.info(f"audio codec {name} does not fit in {self.path.suffix or 'this'} files: re-encoding it to AAC")
        else:
            log.info(f"{stream.type} stream {stream.index} ({name}) does not fit in {self.path.suffix} files: left out")

    # -- writing ----------------------------------------------------------------------

    def write(self, rgb: np.ndarray, pts: int, rotation: int = 0) -> None:
        """Encode one ``(H, W, 3)`` uint8 RGB frame at input pts ``pts``."""
        if self.video is None:
            self.size = (rgb.shape[1], rgb.shape[0])
            self._start(rotation)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        if (frame.width, frame.height) != self.size:
            frame = frame.reformat(width=self.size[0], height=self.size[1])
        frame = frame.reformat(
            format=self.video.pix_fmt,
            src_colorspace="ITU601",
            dst_colorspace=self._colorspace,
            src_color_range="JPEG",
            dst_color_range=self._range,
        )
        pts = round((pts * self.info.time_base - Fraction(self.offset)) / self.time_base)
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = self.time_base
        for packet in self.video.encode(frame):
            self.container.mux(packet)

    def mux(self, packet: av.Packet) -> None:
        """Copy (or re-encode) one packet of an audio or subtitle stream."""
        if self.video is None:
            self._pending.append(packet)
        else:
            self._mux_copy(packet)

    def _mux_copy(self, packet: av.Packet) -> None:
        target = self._copies.get(packet.stream.index)
        if target is None:
            return
        out, reencode_from = target
        if reencode_from is not None:
            for frame in reencode_from.decode(packet):
                frame.pts = None
                for p in out.encode(frame):
                    self.container.mux(p)
            return
        if self.offset:
            shift = round(Fraction(self.offset) / packet.time_base)
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
        packet.stream = out
        self.container.mux(packet)

    def close(self) -> None:
        """Flush every encoder and finish the file."""
        if self.video is None:
            self.container.close()
            raise OutputError(f"{self.info.path}: no frame could be decoded, nothing to write")
        if self._encoding:
            for packet in self.video.encode(None):
                self.container.mux(packet)
        for out, reencode_from in self._copies.values():
            if reencode_from is not None:
                for frame in reencode_from.decode(None):
                    frame.pts = None
                    for p in out.encode(frame):
                        self.container.mux(p)
                for p in out.encode(None):
                    self.container.mux(p)
        self.container.close()

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:
            pass
