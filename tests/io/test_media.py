"""The reader/writer round trip, through the real CLI and the library: frame count and
times, frame rate, size, pixel formats, colour range, rotation, audio and subtitle copies,
trimming, damaged input, encoders. Every clip is generated into tmp_path."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from conftest import (
    ClipData,
    colorize_cli,
    corrupt_packets,
    lightness_diff,
    mean_chroma,
    moving_colour,
    partial_files,
    read_clip,
    video_packets,
    write_clip,
)
from vidcolor.errors import CorruptMediaError
from vidcolor.io.video_reader import Frame, VideoReader
from vidcolor.io.video_writer import VideoWriter

# A colour output: its mean chroma must clearly exceed that of a grey picture (which is ~0).
MIN_CHROMA = 8.0


def assert_same_times(a: ClipData, b: ClipData) -> None:
    assert b.frames == a.frames
    assert len(a.times) == len(b.times)
    for i, (x, y) in enumerate(zip(a.times, b.times)):
        assert abs(x - y) < 1e-6, f"frame {i}: input at {x} s, output at {y} s"


def assert_colour(clip: ClipData, source: ClipData | None = None) -> None:
    """Every output frame has colour; with ``source``, its lightness is the source's."""
    for i, rgb in enumerate(clip.rgb):
        assert mean_chroma(rgb) > MIN_CHROMA, f"frame {i} is nearly grey"
    if source is not None:
        for i, (rgb, grey) in enumerate(zip(clip.rgb, source.grey)):
            assert lightness_diff(rgb, grey) < 2.0, f"frame {i}: lightness changed"


# -- the main round trip --------------------------------------------------------------------


def test_round_trip_keeps_frames_times_rate_and_audio(tmp_path, reference):
    src = write_clip(tmp_path / "film.mp4", frames=24, size=(96, 64), content=moving_colour, audio="aac")
    out = tmp_path / "film_out.mp4"
    run = colorize_cli(src, out, reference, "--model", "transfer")  # colours whatever the reference
    assert run.code == 0, run.stderr
    assert "is in colour" in run.stderr  # a colour input is noted
    a, b = read_clip(src), read_clip(out)
    assert a.frames == 24 and a.audio_codec == "aac" and len(a.audio) > 20
    assert_same_times(a, b)
    assert isinstance(b.average_rate, Fraction)
    assert b.average_rate == a.average_rate == Fraction(24)
    assert (b.width, b.height) == (96, 64)
    assert b.audio_codec == "aac"
    assert len(b.audio) == len(a.audio)
    for i, ((pts_a, data_a), (pts_b, data_b)) in enumerate(zip(a.audio, b.audio)):
        assert pts_b == pts_a, f"audio packet {i}"
        assert data_b == data_a, f"audio packet {i} was changed"
    assert_colour(b)
    assert partial_files(tmp_path) == []


def test_output_is_colour_and_keeps_the_lightness(tmp_path, reference, grey_clip):
    out = tmp_path / "out.mp4"
    run = colorize_cli(grey_clip, out, reference)
    assert run.code == 0, run.stderr
    assert "is in colour" not in run.stderr
    a, b = read_clip(grey_clip), read_clip(out)
    baseline = max(mean_chroma(rgb) for rgb in a.rgb)
    assert baseline < 1.5  # the input is grey
    chroma = np.mean([mean_chroma(rgb) for rgb in b.rgb])
    assert chroma > MIN_CHROMA and chroma > baseline + MIN_CHROMA
    diffs = [lightness_diff(rgb, grey) for rgb, grey in zip(b.rgb, a.grey)]
    assert max(diffs) < 2.0, diffs
    # and the lightness of the content is really followed: a moving bright square
    # stays bright in the output (frame 0 vs frame 12 differ where it moved)
    assert lightness_diff(b.rgb[12], a.grey[0]) > 3 * max(diffs)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_variable_frame_rate_times_are_kept(tmp_path, reference, suffix):
    gaps = [33, 50, 20, 50, 33, 50, 20, 50, 33, 41, 66, 20, 33, 50, 20]
    pts = np.concatenate([[0], np.cumsum(gaps)]).tolist()
    src = write_clip(tmp_path / f"vfr{suffix}", frames=len(pts), size=(80, 48), pts=pts, time_base=Fraction(1, 1000))
    a = read_clip(src)
    assert np.allclose(a.times, np.array(pts) / 1000)  # the clip really is irregular
    out = tmp_path / f"out{suffix}"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    b = read_clip(out)
    assert_same_times(a, b)
    assert_colour(b)


def test_odd_frame_size_is_kept(tmp_path, reference):
    src = write_clip(tmp_path / "odd.mp4", size=(65, 49), pix_fmt="yuv444p", frames=12)
    out = tmp_path / "odd_out.mp4"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    assert "4:4:4" in run.stderr
    a, b = read_clip(src), read_clip(out)
    assert (b.width, b.height) == (65, 49)
    assert b.pix_fmt == "yuv444p"
    assert_same_times(a, b)
    assert_colour(b, a)


@pytest.mark.parametrize(
    "name,codec,pix_fmt,out_suffix,out_pix_fmt,out_range",
    [
        ("ten_x264.mkv", "libx264", "yuv420p10le", ".mkv", "yuv420p10le", 1),
        ("ten_ffv1.mkv", "ffv1", "yuv420p10le", ".mp4", "yuv420p10le", 1),
        ("grey_ffv1.mkv", "ffv1", "gray", ".mkv", "yuv420p", 1),
        ("full_x264.mp4", "libx264", "yuvj420p", ".mp4", "yuv420p", 2),
        ("full_mjpeg.avi", "mjpeg", "yuvj420p", ".mp4", "yuv420p", 2),
    ],
)
def test_pixel_formats_and_colour_range(tmp_path, reference, name, codec, pix_fmt, out_suffix, out_pix_fmt, out_range):
    src = write_clip(tmp_path / name, frames=12, size=(80, 48), codec=codec, pix_fmt=pix_fmt)
    a = read_clip(src)
    assert a.pix_fmt == pix_fmt
    if pix_fmt.startswith("yuvj"):
        assert a.color_range == 2
    out = tmp_path / f"out{out_suffix}"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    b = read_clip(out)
    assert b.pix_fmt in (out_pix_fmt, out_pix_fmt.replace("yuv", "yuvj"))
    assert b.color_range == out_range  # full range in -> full range out; else limited
    assert_same_times(a, b)
    assert_colour(b, a)


def test_ten_bit_input_is_read_at_sixteen_bits(tmp_path):
    src = write_clip(tmp_path / "ten.mkv", frames=3, size=(64, 48), codec="ffv1", pix_fmt="yuv420p10le")
    with VideoReader(src, copy=False) as reader:
        assert reader.info.bit_depth == 10
        frames = list(reader.frames())
    eight = read_clip(src).grey
    assert len(frames) == 3
    for frame, grey8 in zip(frames, eight):
        assert frame.grey.dtype == np.uint16
        assert int(frame.grey.max()) > 255  # uses the whole 16-bit scale
        assert np.abs((frame.grey.astype(np.int32) + 128) // 257 - grey8).max() <= 1


def test_pal8_input(tmp_path, reference):
    """PNG-coded pal8 frames (with a grey palette) in a .mov."""
    src = write_clip(tmp_path / "pal.mov", frames=12, size=(64, 48), codec="png", pix_fmt="pal8")
    a = read_clip(src)
    assert a.pix_fmt == "pal8"
    assert max(mean_chroma(rgb) for rgb in a.rgb) < 1.5
    out = tmp_path / "pal_out.mp4"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    assert "is in colour" not in run.stderr  # a grey palette is a grey film
    b = read_clip(out)
    assert_same_times(a, b)
    assert_colour(b, a)


def test_rotation_is_kept(tmp_path, reference):
    src = write_clip(tmp_path / "rot.mp4", frames=12, size=(80, 48), rotation=90)
    a = read_clip(src)
    assert set(a.rotations) == {90}
    out = tmp_path / "rot_out.mp4"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    b = read_clip(out)
    assert set(b.rotations) == {90}
    assert (b.width, b.height) == (80, 48)  # stored as is, rotated on display
    assert_same_times(a, b)


def test_subtitles_are_copied_bit_exact_in_mkv(tmp_path, reference):
    subs = [(0, 400, "Hello"), (450, 300, "Grüße, world"), (800, 150, "<i>third</i>")]
    src = write_clip(tmp_path / "sub.mkv", frames=24, size=(64, 48), subtitles=subs, subtitle_codec="subrip")
    a = read_clip(src)
    assert [d for _, d in a.subtitles] == [t.encode() for _, _, t in subs]
    out = tmp_path / "sub_out.mkv"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    b = read_clip(out)
    assert b.subtitle_codec == a.subtitle_codec
    assert b.subtitles == a.subtitles


def test_mov_text_subtitles_are_copied_in_mp4(tmp_path, reference):
    subs = [(0, 400, "Hello"), (600, 300, "Grüße")]
    src = write_clip(tmp_path / "sub.mp4", frames=24, size=(64, 48), subtitles=subs, subtitle_codec="mov_text")
    a = read_clip(src)
    out = tmp_path / "sub_out.mp4"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    b = read_clip(out)
    assert b.subtitle_codec == "mov_text"
    # The mp4 muxer writes its own empty samples (b"\0\0") into gaps between subtitles;
    # every sample that carries text must come through unchanged, at the same time.
    texts_a = [(pts, d) for pts, d in a.subtitles if len(d) > 2]
    texts_b = [(pts, d) for pts, d in b.subtitles if len(d) > 2]
    assert len(texts_a) == len(subs)
    assert texts_b == texts_a


def test_audio_the_container_cannot_hold_is_reencoded_to_aac(tmp_path, reference):
    with av.open(str(tmp_path / "probe.mp4"), "w") as probe:
        mp4_codecs = probe.supported_codecs
    with av.open(str(tmp_path / "probe.mkv"), "w") as probe:
        mkv_codecs = probe.supported_codecs
    assert "wavpack" not in mp4_codecs and "wavpack" in mkv_codecs
    src = write_clip(tmp_path / "wv.mkv", frames=24, size=(64, 48), audio="wavpack")
    a = read_clip(src)
    assert a.audio_codec == "wavpack"
    out = tmp_path / "wv_out.mp4"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    notes = [line for line in run.stderr.splitlines() if "re-encoding it to AAC" in line]
    assert len(notes) == 1 and "wavpack" in notes[0]
    b = read_clip(out)
    assert b.audio_codec == "aac"
    assert b.frames == a.frames
    with av.open(str(out)) as container:
        samples = sum(f.samples for f in container.decode(audio=0))
        rate = container.streams.audio[0].sample_rate
        channels = container.streams.audio[0].codec_context.channels
    assert rate == 44100 and channels == 2
    assert abs(samples / rate - 1.0) < 0.1  # the whole second of sound is there


def test_same_container_keeps_the_audio_codec(tmp_path, reference):
    src = write_clip(tmp_path / "tta.mkv", frames=12, size=(64, 48), audio="tta")
    out = tmp_path / "tta_out.mkv"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    assert "re-encoding" not in run.stderr
    a, b = read_clip(src), read_clip(out)
    assert b.audio_codec == "tta"
    assert b.audio == a.audio


@pytest.mark.parametrize("start,end,expected", [("0.5", "1.5", 24), ("00:00:00.250", "0.75", 12), (None, "0.5", 12), ("1.25", None, 18)])
def test_trimming(tmp_path, reference, start, end, expected):
    src = write_clip(tmp_path / "long.mp4", frames=48, size=(64, 48), audio="aac")  # 2 s at 24 fps
    out = tmp_path / "trim.mp4"
    extra = [*(["--start", start] if start else []), *(["--end", end] if end else [])]
    run = colorize_cli(src, out, reference, *extra)
    assert run.code == 0, run.stderr
    a, b = read_clip(src), read_clip(out)
    assert abs(b.frames - expected) <= 1
    assert abs(b.times[0]) < 1 / 24 + 1e-6  # starts near 0
    assert all(y > x for x, y in zip(b.times, b.times[1:]))
    # the first output frame is the input frame at --start
    first = round(float(start.split(":")[-1]) * 24) if start else 0
    match = [lightness_diff(b.rgb[0], grey) for grey in a.grey]
    assert int(np.argmin(match)) == first
    assert b.audio, "the audio of the range is kept"
    audio_start = b.audio[0][0] / 44100
    assert -0.05 < audio_start < 0.05
    assert b.audio[-1][0] / 44100 < b.times[-1] + 0.1


def test_corrupt_frames_in_the_middle_are_skipped(tmp_path, reference):
    src = write_clip(tmp_path / "damaged.avi", frames=24, size=(64, 48), codec="mjpeg", pix_fmt="yuvj420p")
    a = read_clip(src)
    damaged = corrupt_packets(src, [10, 11, 12])
    out = tmp_path / "out.mp4"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    assert "Traceback" not in run.output
    warnings = run.warning_lines()
    assert len([w for w in warnings if "skipping undecodable data" in w]) == 1, run.stderr
    assert len(warnings) == 1, warnings  # warned once
    assert "3 undecodable packet(s) skipped in all" in run.stderr  # and counted
    b = read_clip(out)
    assert b.frames == 21
    bad_times = {pts / 24 for pts in damaged}
    kept = [t for t in a.times if all(abs(t - bt) > 1e-6 for bt in bad_times)]
    assert np.allclose(b.times, kept, atol=1e-6)  # the others keep their times
    assert_colour(b)


def test_too_many_bad_packets_in_a_row_stop_the_reader(tmp_path):
    src = write_clip(tmp_path / "damaged.avi", frames=12, size=(64, 48), codec="mjpeg", pix_fmt="yuvj420p")
    corrupt_packets(src, [4, 5, 6])
    with VideoReader(src, copy=False, max_consecutive_bad=3) as reader:
        with pytest.raises(CorruptMediaError, match="3 undecodable packets in a row"):
            list(reader.frames())
    with VideoReader(src, copy=False, max_consecutive_bad=4) as reader:
        assert len(list(reader.frames())) == 9
        assert reader.bad_frames == 3


def test_entirely_corrupt_clip_is_an_error_and_leaves_nothing(tmp_path, reference):
    src = write_clip(tmp_path / "garbage.avi", frames=12, size=(64, 48), codec="mjpeg", pix_fmt="yuvj420p")
    corrupt_packets(src, range(len(video_packets(src))))
    out = tmp_path / "out.mp4"
    run = colorize_cli(src, out, reference)
    assert run.code == 2, run.stderr  # a bad input, not an output problem
    assert "Traceback" not in run.output
    errors = run.error_lines()
    assert len(errors) == 1 and "no frame could be decoded" in errors[0]
    assert not out.exists()
    assert partial_files(tmp_path) == []


def test_start_past_the_end_is_an_input_error(tmp_path, reference, grey_clip):
    out = tmp_path / "out.mp4"
    run = colorize_cli(grey_clip, out, reference, "--start", "30")
    assert run.code == 2, run.stderr
    errors = run.error_lines()
    assert len(errors) == 1 and "no frames in the chosen range" in errors[0]
    assert not out.exists() and partial_files(tmp_path) == []


def test_ffv1_codec(tmp_path, reference):
    src = write_clip(tmp_path / "in.mkv", frames=12, size=(64, 48))
    out = tmp_path / "out.mkv"
    run = colorize_cli(src, out, reference, "--codec", "ffv1")
    assert run.code == 0, run.stderr
    a, b = read_clip(src), read_clip(out)
    assert b.codec == "ffv1"
    assert_same_times(a, b)
    assert_colour(b, a)


def test_avi_output_keeps_frames_in_order(tmp_path, reference):
    """AVI stores no presentation times: B-frames would scramble them, so none are used."""
    src = write_clip(tmp_path / "in.mp4", frames=24, size=(64, 48))
    out = tmp_path / "out.avi"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    a = read_clip(src)
    with VideoReader(out, copy=False) as reader:
        times = [f.time for f in reader.frames()]
    assert np.allclose(times, a.times, atol=1e-6)
    with av.open(str(out)) as container:  # decoded in the order they were written
        order = [f.pts for f in container.decode(video=0)]
    assert order == sorted(order)


@pytest.mark.parametrize("codec,words", [("nonexistent", "unknown video encoder"), ("aac", "not a video encoder")])
def test_bad_codec_is_an_error(tmp_path, reference, grey_clip, codec, words):
    out = tmp_path / "out.mkv"
    run = colorize_cli(grey_clip, out, reference, "--codec", codec)
    assert run.code != 0
    errors = run.error_lines()
    assert len(errors) == 1 and words in errors[0] and repr(codec) in errors[0]
    assert "Traceback" not in run.output
    assert not out.exists() and partial_files(tmp_path) == []


def test_reader_and_writer_round_trip_without_the_cli(tmp_path):
    """The library on its own: grey frames read, written back as RGB, audio copied."""
    src = write_clip(tmp_path / "in.mkv", frames=15, size=(64, 48), audio="aac")
    out = tmp_path / "out.mkv"
    frames = packets = 0
    with VideoReader(src) as reader:
        assert abs(reader.info.frames - 15) <= 1 and reader.info.rate == 24  # an estimate in .mkv
        writer = VideoWriter(out, reader.info, codec="ffv1")
        for item in reader:
            if isinstance(item, Frame):
                writer.write(np.repeat(item.grey[..., None], 3, axis=2), item.pts, item.rotation)
                frames += 1
            else:
                writer.mux(item)
                packets += 1
        writer.close()
    a, b = read_clip(src), read_clip(out)
    assert frames == 15 and packets == len(a.audio)
    assert_same_times(a, b)
    assert b.audio == a.audio
    for x, y in zip(a.grey, b.grey):  # ffv1 is lossless: only the RGB<->YUV rounding
        assert np.abs(x.astype(int) - y).max() <= 2
