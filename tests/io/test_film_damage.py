"""Films that put the segmented output and the reader to the test: films of several
segments in Matroska and MP4 (joined with their audio, timestamps and frame rate), damaged
or cut-short films (every frame PyAV can decode is coloured, and a warning says where the
film ends), a full disk part way through a film (finished segments kept for ``--resume``,
nothing else left behind), and damaged segments in a resume folder (done again)."""

from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import assert_clean_error, colour_reference, partial_files, read_clip, run_cli, write_clip, write_png
from vidcolor.io import video_writer
from vidcolor.io.segments import MANIFEST, work_folder

FILM_FRAMES = 300  # 12.5 s at 24 fps: two segments, of 240 and 60 frames


@pytest.fixture(scope="module")
def ref(tmp_path_factory) -> Path:
    return write_png(tmp_path_factory.mktemp("ref") / "ref.png", colour_reference())


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Path:
    """12.5 s of MP4 with AAC audio: two segments."""
    return write_clip(tmp_path_factory.mktemp("film") / "film.mp4", frames=FILM_FRAMES, audio="aac")


def colour(source: Path, out: Path, ref: Path, *extra):
    return run_cli(source, "-r", ref, "-o", out, "--work-res", "48", *extra)


def assert_same_film(out: Path, source: Path) -> None:
    """Every frame of ``source`` at its time, its audio bit-exact, its frame rate."""
    a, b = read_clip(source, pixels=False), read_clip(out, pixels=False)
    assert b.frames == a.frames
    assert b.times == a.times
    assert b.audio and b.audio == a.audio
    assert b.average_rate == a.average_rate == 24


def folder_files(folder: Path) -> tuple[set[str], set[str]]:
    """The files in a resume folder, and the ones its manifest lists (with itself)."""
    listed = {s["file"] for s in json.loads((folder / MANIFEST).read_text())["segments"]} | {MANIFEST}
    return {p.name for p in folder.iterdir()}, listed


# -- films of several segments --------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_a_film_of_several_segments_is_joined(tmp_path, ref, suffix):
    src = write_clip(tmp_path / f"film{suffix}", frames=FILM_FRAMES, audio="aac")
    out = tmp_path / f"out{suffix}"
    run = colour(src, out, ref)
    assert run.code == 0, run.output
    assert run.warning_lines() == []  # a whole film: no word of damage
    assert_same_film(out, src)
    assert not work_folder(out).exists() and partial_files(tmp_path) == []


# -- damaged and cut-short films ------------------------------------------------------------


def decodable_times(path: Path) -> tuple[list[float], bool]:
    """The times of the frames PyAV can decode from ``path`` (a packet that does not decode
    is skipped, an error of the demuxer ends the film), and whether the demuxer failed."""
    times: list[float] = []
    failed = False
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError:
                failed = True
                break
            try:
                times += [float(f.pts * stream.time_base) for f in stream.decode(packet)]
            except av.error.FFmpegError:
                continue
        try:
            times += [float(f.pts * stream.time_base) for f in stream.decode(None)]
        except av.error.EOFError:
            pass
    return times, failed


def faststart_copy(src: Path, out: Path) -> Path:
    """``src`` remuxed with its index at the front, so that a cut file still opens."""
    with av.open(str(src)) as inp, av.open(str(out), "w", options={"movflags": "faststart"}) as outp:
        streams = {s.index: outp.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.size:
                packet.stream = streams[packet.stream.index]
                outp.mux(packet)
    return out


def assert_every_decodable_frame(run, out: Path, damaged: Path) -> list[float]:
    assert run.code == 0, run.output
    assert "Traceback" not in run.output and run.error_lines() == []
    times, _ = decodable_times(damaged)
    assert read_clip(out, pixels=False).times == pytest.approx(times, abs=1e-3)
    return times


def test_a_cut_faststart_mp4_gives_every_decodable_frame(tmp_path, ref):
    whole = faststart_copy(write_clip(tmp_path / "plain.mp4", frames=96, audio="aac"), tmp_path / "whole.mp4")
    data = whole.read_bytes()
    src = tmp_path / "cut.mp4"
    src.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.mp4"
    run = colour(src, out, ref)
    times = assert_every_decodable_frame(run, out, src)
    assert 24 < len(times) < 72
    ends = [w for w in run.warning_lines() if "ends at" in w]
    assert ends == [f"vidcolor: warning: cut.mp4: ends at {times[-1] + 1 / 24:.2f} s of 4.00 s: "
                    "the file is truncated or damaged"], run.stderr


def test_a_damaged_mkv_gives_every_decodable_frame(tmp_path, ref):
    src = write_clip(tmp_path / "damaged.mkv", frames=97, audio="aac")
    data = bytearray(src.read_bytes())
    middle = len(data) * 45 // 100
    data[middle : middle + 2000] = bytes(2000)  # the demuxer stops there, without an error
    src.write_bytes(bytes(data))
    out = tmp_path / "out.mkv"
    run = colour(src, out, ref)
    times = assert_every_decodable_frame(run, out, src)
    assert 24 < len(times) < 72
    ends = [w for w in run.warning_lines() if "ends at" in w]
    assert ends == [f"vidcolor: warning: damaged.mkv: ends at {times[-1] + 1 / 24:.2f} s of 4.04 s: "
                    "the file is truncated or damaged"], run.stderr


def test_an_error_of_the_demuxer_ends_the_film_with_a_warning(tmp_path, ref):
    whole = write_clip(tmp_path / "whole.nut", frames=97, audio="aac")
    data = whole.read_bytes()
    with av.open(str(whole)) as container:
        starts = [p.pos for p in container.demux(video=0) if p.size and p.pos > len(data) * 6 // 10]
    src = tmp_path / "cut.nut"
    for start in starts:  # cut where a packet begins: the NUT demuxer fails there rather than ending
        src.write_bytes(data[:start])
        if decodable_times(src)[1]:
            break
    assert decodable_times(src)[1], "no cut of the NUT file makes its demuxer fail"
    out = tmp_path / "out.mp4"
    run = colour(src, out, ref)
    times = assert_every_decodable_frame(run, out, src)
    assert len(times) > 24
    warnings = run.warning_lines()
    assert len(warnings) == 1, run.stderr
    assert re.fullmatch(rf"vidcolor: warning: cut\.nut: ends at {times[-1] + 1 / 24:.2f} s( of [0-9.]+ s)?: "
                        r"the file is damaged \(.+\)", warnings[0]), warnings


# -- a full disk ---------------------------------------------------------------------------


def fill_the_disk(monkeypatch, where: str, after: int = 0) -> list[int]:
    """Make writing fail with ENOSPC: ``video`` after ``after`` frames were encoded,
    ``manifest`` at the ``after``-th write of a resume folder's manifest, ``join`` when the
    segments are joined. Returns the list of the calls counted."""
    calls: list[int] = []

    def failing(real):
        def wrapper(self, *args, **kwargs):
            if where != "manifest" or self.name == f".{Path(MANIFEST).stem}.partial.json":
                calls.append(1)
                if len(calls) > after:
                    raise OSError(errno.ENOSPC, "No space left on device")
            return real(self, *args, **kwargs)
        return wrapper

    if where == "video":
        monkeypatch.setattr(video_writer.VideoWriter, "write", failing(video_writer.VideoWriter.write))
    elif where == "join":
        monkeypatch.setattr(video_writer.VideoWriter, "mux_video", failing(video_writer.VideoWriter.mux_video))
    else:
        monkeypatch.setattr(Path, "write_text", failing(Path.write_text))
    return calls


@pytest.mark.parametrize("where, after", [("video", 260), ("manifest", 1), ("join", 0)])
def test_a_full_disk_keeps_the_finished_segments_for_resume(tmp_path, ref, film, monkeypatch, where, after):
    out = tmp_path / "out.mp4"
    folder = work_folder(out)
    calls = fill_the_disk(monkeypatch, where, after)
    run = colour(film, out, ref)
    line = assert_clean_error(run, "disk full", "kept", "free some space", "--resume")
    assert run.code == 3, line
    assert len(calls) == after + 1  # it did fail where it was meant to
    assert not out.exists() and partial_files(tmp_path) == []
    present, listed = folder_files(folder)
    assert present == listed  # no unfinished segment left taking space
    assert len(listed) == (3 if where == "join" else 2)  # the manifest and its finished segments
    monkeypatch.undo()
    run = colour(film, out, ref, "--resume")
    assert run.code == 0, run.output
    assert_same_film(out, film)
    assert not folder.exists() and partial_files(tmp_path) == []


def test_a_full_disk_before_any_segment_is_finished_leaves_nothing(tmp_path, ref, film, monkeypatch):
    out = tmp_path / "out.mp4"
    calls = fill_the_disk(monkeypatch, "manifest", 0)  # the first segment is written, its record is not
    run = colour(film, out, ref)
    line = assert_clean_error(run, "disk full", "nothing was written")
    assert run.code == 3, line
    assert calls == [1]
    assert not work_folder(out).exists()
    assert not out.exists() and partial_files(tmp_path) == []


# -- damaged segments in a resume folder ----------------------------------------------------


@pytest.fixture(scope="module")
def unjoined(tmp_path_factory, ref) -> tuple[Path, Path]:
    """A Matroska film with audio, and the resume folder of a run that finished both its
    segments but could not join them (a full disk)."""
    where = tmp_path_factory.mktemp("unjoined")
    src = write_clip(where / "film.mkv", frames=FILM_FRAMES, audio="aac")
    out = where / "out.mkv"
    with pytest.MonkeyPatch.context() as monkeypatch:
        fill_the_disk(monkeypatch, "join")
        run = colour(src, out, ref)
    assert run.code == 3, run.output
    assert [s["frames"] for s in json.loads((work_folder(out) / MANIFEST).read_text())["segments"]] == [240, 60]
    return src, work_folder(out)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def scramble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    at = len(data) * 3 // 10
    data[at : at + 200] = np.random.default_rng(0).integers(0, 256, 200, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def replace_by_garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(1).integers(0, 256, path.stat().st_size, dtype=np.uint8).tobytes())


def shorten(path: Path) -> None:
    """A valid film, but of fewer frames than the manifest records."""
    write_clip(path.with_name("short.mkv"), frames=20).replace(path)


def forget_digests(folder: Path) -> None:
    """A manifest without the segments' digests: they are checked by decoding them."""
    manifest = json.loads((folder / MANIFEST).read_text())
    for segment in manifest["segments"]:
        del segment["sha256"]
    (folder / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage, segment, digests", [(truncate, 0, True), (scramble, 0, True),
                                                      (replace_by_garbage, 1, True), (shorten, 1, True),
                                                      (truncate, 0, False), (shorten, 1, False)])
def test_a_damaged_segment_is_done_again(tmp_path, ref, unjoined, damage, segment, digests):
    src, kept = unjoined
    out = tmp_path / "out.mkv"
    folder = work_folder(out)
    shutil.copytree(kept, folder)
    if not digests:
        forget_digests(folder)
    damage(folder / f"{segment:06d}.mkv")
    run = colour(src, out, ref, "--resume")
    assert run.code == 0, run.output
    assert "Traceback" not in run.output
    after = " and the 1 after it" if segment == 0 else ""
    assert run.warning_lines() == [f"vidcolor: warning: {folder.name}/{segment:06d}.mkv is damaged or missing: "
                                   f"it{after} will be done again"], run.stderr
    if segment:
        assert "240 frames already done" in run.stderr
    assert_same_film(out, src)
    assert not folder.exists() and partial_files(tmp_path) == []
