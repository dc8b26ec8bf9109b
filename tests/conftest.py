"""Shared helpers: every clip, image and reference the tests use is generated here, with
PyAV and OpenCV, into pytest's tmp_path. Nothing is downloaded or read from outside."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import av
import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vidcolor.cli import app, normalize_argv
from vidcolor.models.exemplar.backbones import VGG19_STAGES
from vidcolor.ops.color import chroma, grey_to_lightness, rgb_to_lab

REPO = Path(__file__).resolve().parents[1]

# Tiny tensors: one intra-op thread is faster than several, above all on a busy 2-core box.
torch.set_num_threads(1)
SAMPLE_RATE = 44100

# An ASS header: the subrip and mov_text encoders need one to open.
ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
    b"Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, "
    b"Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
    b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n"
    b"[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)


# -- picture content -----------------------------------------------------------------------


def moving_grey(i: int, width: int, height: int) -> np.ndarray:
    """Grey frame ``i``: a diagonal gradient drifting, a bright square moving right, a dark
    disc moving down. Plenty of luminance structure and motion."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = 40 + 150 * (0.5 + 0.5 * np.sin((x + 2 * y) / max(8.0, width / 6) + i * 0.3))
    side = max(4, min(width, height) // 4)
    sx = (3 * i) % max(1, width - side)
    img[height // 4 : height // 4 + side, sx : sx + side] = 235
    cy = (2 * i) % max(1, height - side)
    cv2.circle(img, (width * 3 // 4, cy + side // 2), side // 2, 20, -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def moving_colour(i: int, width: int, height: int) -> np.ndarray:
    """Colour frame ``i`` (RGB): coloured versions of the same moving shapes."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 128 + 100 * np.sin(x / 9.0 + i * 0.4)
    g = 128 + 100 * np.sin(y / 7.0 - i * 0.3)
    b = 128 + 100 * np.cos((x + y) / 11.0 + i * 0.2)
    img = np.stack([r, g, b], axis=-1)
    side = max(4, min(width, height) // 4)
    sx = (3 * i) % max(1, width - side)
    img[height // 4 : height // 4 + side, sx : sx + side] = (230, 40, 30)
    return np.clip(img, 0, 255).astype(np.uint8)


def colour_reference(width: int = 96, height: int = 64) -> np.ndarray:
    """A colourful RGB reference: blue sky gradient, green field, red and yellow blocks."""
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    sky = (1 - y) * np.array([60, 120, 230], np.float32) + y * np.array([170, 210, 250], np.float32)
    img = np.broadcast_to(sky, (height, width, 3)).copy()
    img[height // 2 :] = (50, 150, 60)
    img[height // 4 : height // 2, width // 8 : width // 3] = (210, 40, 30)
    img[height * 5 // 8 : height * 7 // 8, width // 2 : width * 3 // 4] = (240, 210, 40)
    cv2.circle(img, (width * 3 // 4, height // 4), max(3, height // 8), (250, 230, 90), -1)
    noise = np.random.default_rng(3).normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def scene(seed: int, size: int = 80) -> np.ndarray:
    """A colourful picture of discs and squares on a noisy ground."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = rng.integers(40, 220, 3)
    for _ in range(6):
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        x, y = (int(v) for v in rng.integers(0, size, 2))
        r = int(rng.integers(6, 20))
        if rng.random() < 0.5:
            cv2.circle(img, (x, y), r, c, -1)
        else:
            cv2.rectangle(img, (x, y), (x + r, y + r), c, -1)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def torchvision_vgg19_state(seed: int = 0) -> dict:
    """A state dict in torchvision's ``vgg19`` layout (random values)."""
    g = torch.Generator().manual_seed(seed)
    state, index = {}, 0
    for s, stage in enumerate(VGG19_STAGES):
        if s:
            index += 1  # max-pool
        for cin, cout in zip(stage[:-1], stage[1:]):
            state[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.05
            state[f"features.{index}.bias"] = torch.randn(cout, generator=g) * 0.05
            index += 2
    state["classifier.0.weight"] = torch.zeros(8, 4)
    return state


# -- writing media -------------------------------------------------------------------------


def _audio_samples(frames: int, rate: Fraction, sample_rate: int, freq: float = 440.0) -> np.ndarray:
    n = int(round(frames / rate * sample_rate))
    t = np.arange(n) / sample_rate
    left = 0.3 * np.sin(2 * np.pi * freq * t)
    right = 0.3 * np.sin(2 * np.pi * freq * 1.5 * t)
    return np.stack([left, right]).astype(np.float32)


def _audio_frame(chunk: np.ndarray, fmt: str, sample_rate: int, pts: int) -> av.AudioFrame:
    """Float stereo samples (2, n) -> an AudioFrame in ``fmt``."""
    fmt_obj = av.AudioFormat(fmt)
    data = chunk
    if fmt_obj.name.startswith("s16"):
        data = (chunk * 32767).astype(np.int16)
    elif fmt_obj.name.startswith("s32"):
        data = (chunk * 2**31 * 0.99).astype(np.int32)
    elif fmt_obj.name.startswith("u8"):
        data = (chunk * 127 + 128).astype(np.uint8)
    if not fmt_obj.is_planar:
        data = data.T.reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout="stereo")
    frame.sample_rate, frame.pts = sample_rate, pts
    return frame


def write_clip(
    path: Path,
    frames: int = 24,
    size: tuple[int, int] = (96, 64),
    rate: Fraction | int = 24,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    content: Callable[[int, int, int], np.ndarray] = moving_grey,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    audio: str | None = None,
    rotation: int = 0,
    subtitles: Sequence[tuple[int, int, str]] | None = None,
    subtitle_codec: str | None = None,
    options: dict | None = None,
    video: bool = True,
    audio_seconds: float | None = None,
) -> Path:
    """Write a test clip. ``content(i, w, h)`` gives frame ``i`` (grey ``(H, W)`` or RGB
    ``(H, W, 3)`` uint8; for pal8, grey levels used as palette indices into a grey
    palette). ``pts`` (in ``time_base``) gives irregular timestamps. ``audio`` is an audio
    encoder name (a stereo sine). ``subtitles`` are ``(start_ms, duration_ms, text)``."""
    path = Path(path)
    rate = Fraction(rate)
    width, height = size
    with av.open(str(path), "w") as container:
        vstream = None
        if video:
            vstream = container.add_stream(codec, rate=rate, options=options or {})
            vstream.width, vstream.height, vstream.pix_fmt = width, height, pix_fmt
            if time_base is not None:
                vstream.time_base = time_base
                vstream.codec_context.time_base = time_base
            if rotation:
                vstream.set_display_rotation(rotation)
        astream = None
        if audio:
            astream = container.add_stream(audio, rate=SAMPLE_RATE)
            astream.layout = "stereo"
            fmts = [f.name for f in (astream.codec.audio_formats or [])]
            astream.format = "fltp" if "fltp" in fmts else fmts[0]
        sstream = None
        if subtitles:
            sstream = container.add_stream(subtitle_codec or "mov_text")
            sstream.codec_context.subtitle_header = ASS_HEADER
            sstream.time_base = Fraction(1, 1000)
        if vstream is not None:
            for i in range(frames):
                image = content(i, width, height)
                if pix_fmt == "pal8":
                    palette = np.empty((256, 4), np.uint8)  # PyAV's pal8 palette rows are A, R, G, B
                    palette[:, 0] = 255
                    palette[:, 1:] = np.arange(256)[:, None]
                    frame = av.VideoFrame.from_ndarray((image, palette), format="pal8")
                else:
                    frame = av.VideoFrame.from_ndarray(image, format="gray" if image.ndim == 2 else "rgb24")
                    if pix_fmt.startswith("yuvj") or pix_fmt == "gray":
                        frame = frame.reformat(format=pix_fmt)
                frame.pts = pts[i] if pts is not None else i
                frame.time_base = time_base if time_base is not None else Fraction(1, 1) / rate
                for packet in vstream.encode(frame):
                    container.mux(packet)
        if astream is not None:
            n_frames = frames if audio_seconds is None else audio_seconds * rate
            samples = _audio_samples(int(n_frames), rate, SAMPLE_RATE)
            for start in range(0, samples.shape[1], 1024):
                chunk = samples[:, start : start + 1024]
                for packet in astream.encode(_audio_frame(chunk, astream.format.name, SAMPLE_RATE, start)):
                    container.mux(packet)
        if sstream is not None:
            for start_ms, duration_ms, text in subtitles:
                data = text.encode()
                if sstream.codec_context.name == "mov_text":
                    data = len(data).to_bytes(2, "big") + data
                packet = av.Packet(data)
                packet.stream = sstream
                packet.pts = packet.dts = start_ms
                packet.duration = duration_ms
                packet.time_base = Fraction(1, 1000)
                container.mux(packet)
        for stream in (vstream, astream):
            if stream is not None:
                for packet in stream.encode(None):
                    container.mux(packet)
    return path


def write_frames_clip(path: Path, images: Sequence[np.ndarray], rate: int = 24, codec: str = "libx264", **kw) -> Path:
    """A clip whose frame ``i`` is ``images[i]`` (all the same size)."""
    h, w = images[0].shape[:2]
    return write_clip(path, frames=len(images), size=(w, h), rate=rate, codec=codec, content=lambda i, _w, _h: images[i], **kw)


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write grey ``(H, W)`` (uint8/uint16) or RGB ``(H, W, 3)`` uint8 with OpenCV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), data)
    return path


def read_rgb_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, f"cannot read {path}"
    assert image.ndim == 3 and image.shape[2] == 3, f"{path} is not a 3-channel image"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# -- reading media back ---------------------------------------------------------------------


@dataclass
class ClipData:
    width: int
    height: int
    average_rate: Fraction | None
    time_base: Fraction
    codec: str
    pix_fmt: str
    color_range: int
    times: list[float] = field(default_factory=list)
    rotations: list[int] = field(default_factory=list)
    rgb: list[np.ndarray] = field(default_factory=list)
    grey: list[np.ndarray] = field(default_factory=list)
    audio_codec: str | None = None
    audio: list[tuple[int, bytes]] = field(default_factory=list)
    subtitle_codec: str | None = None
    subtitles: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return len(self.times)


def read_clip(path: Path, pixels: bool = True) -> ClipData:
    """Decode every video frame (times, rotation, RGB and full-range grey levels) and
    collect the packets of the first audio and subtitle streams."""
    with av.open(str(path)) as container:
        vs = container.streams.video[0]
        cc = vs.codec_context
        data = ClipData(
            width=cc.width,
            height=cc.height,
            average_rate=Fraction(vs.average_rate) if vs.average_rate else None,
            time_base=Fraction(vs.time_base),
            codec=cc.name,
            pix_fmt=cc.format.name if cc.format else "",
            color_range=int(cc.color_range or 0),
        )
        audio = container.streams.audio[0] if container.streams.audio else None
        subs = container.streams.subtitles[0] if container.streams.subtitles else None
        if audio is not None:
            data.audio_codec = audio.codec_context.name
        if subs is not None:
            data.subtitle_codec = subs.codec_context.name
        streams = [s for s in (vs, audio, subs) if s is not None]
        for packet in container.demux(streams):
            if packet.stream is audio:
                if packet.size:
                    data.audio.append((packet.pts, bytes(packet)))
                continue
            if packet.stream is subs:
                if packet.size:
                    data.subtitles.append((packet.pts, bytes(packet)))
                continue
            for frame in vs.decode(packet):
                data.times.append(float(frame.pts * frame.time_base))
                data.rotations.append(int(frame.rotation or 0))
                if pixels:
                    data.rgb.append(frame.to_ndarray(format="rgb24"))
                    data.grey.append(frame.reformat(format="gray", dst_color_range="JPEG").to_ndarray())
    return data


# -- colour measures ------------------------------------------------------------------------


def lab_of(rgb: np.ndarray) -> torch.Tensor:
    """uint8 RGB ``(H, W, 3)`` -> Lab ``(3, H, W)``."""
    return rgb_to_lab(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0)[0]


def mean_chroma(rgb: np.ndarray) -> float:
    return float(chroma(lab_of(rgb)[None, 1:]).mean())


def lightness_diff(rgb: np.ndarray, grey: np.ndarray) -> float:
    """Mean |L(rgb) - L(grey)| in L units."""
    return float((lab_of(rgb)[0] - grey_to_lightness(grey)).abs().mean())


# -- running the CLI ------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("vidcolor: error:")]

    def warning_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "vidcolor: warning:" in line]


def run_cli(*args) -> Run:
    """Invoke the CLI in-process through Typer's CliRunner."""
    argv = normalize_argv([str(a) for a in args])
    result = CliRunner().invoke(app, argv)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


def subprocess_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("VIDCOLOR_DEBUG", None)
    return env


def run_subprocess(*args, timeout: float = 120) -> Run:
    """Run ``python -m vidcolor`` for real."""
    env = subprocess_env()
    proc = subprocess.run(
        [sys.executable, "-m", "vidcolor", *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def partial_files(folder: Path) -> list[Path]:
    return [p for p in Path(folder).rglob(".*") if ".partial" in p.name]


def assert_clean_error(run: Run, *words: str) -> str:
    """One ``vidcolor: error:`` line, a non-zero exit, no traceback; returns the line."""
    assert run.code != 0, run.output
    assert "Traceback" not in run.output, run.output
    errors = run.error_lines()
    assert len(errors) == 1, run.stderr
    for word in words:
        assert word.lower() in errors[0].lower(), errors[0]
    return errors[0]


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("VIDCOLOR_DEBUG", raising=False)


@pytest.fixture
def reference(tmp_path) -> Path:
    """A colourful reference PNG."""
    return write_png(tmp_path / "reference.png", colour_reference())


@pytest.fixture
def grey_clip(tmp_path) -> Path:
    """A small grey film (libx264, 96x64, 24 frames at 24 fps)."""
    return write_clip(tmp_path / "grey.mp4")


def video_packets(path: Path) -> list[tuple[int, int, bytes]]:
    """``(pos, pts, payload)`` of every non-empty video packet, in file order."""
    with av.open(str(path)) as container:
        return [(p.pos, p.pts, bytes(p)) for p in container.demux(video=0) if p.size]


def corrupt_packets(path: Path, indices, seed: int = 0) -> list[int]:
    """Overwrite the payload of the given video packets (file order) with random bytes, in
    place, leaving the container structure intact. Returns the pts of the damaged packets."""
    packets = video_packets(path)
    data = bytearray(Path(path).read_bytes())
    rng = np.random.default_rng(seed)
    damaged = []
    for i in indices:
        pos, pts, payload = packets[i]
        at = data.find(payload, max(0, pos))
        assert at >= 0, f"payload of packet {i} not found in {path}"
        data[at : at + len(payload)] = rng.integers(0, 256, len(payload), dtype=np.uint8).tobytes()
        damaged.append(pts)
    Path(path).write_bytes(bytes(data))
    return damaged


WORK_RES = "48"


def colorize_cli(source: Path, output: Path, reference: Path, *extra) -> Run:
    """``vidcolor SOURCE -r REFERENCE -o OUTPUT --work-res 48 ...`` in-process."""
    return run_cli(source, "-r", reference, "-o", output, "--work-res", WORK_RES, *extra)
