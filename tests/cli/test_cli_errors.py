"""Every bad input gets one clear line on stderr ("vidcolor: error: ..."), a non-zero exit,
no traceback, and leaves no output (and no hidden partial file) behind."""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from conftest import (
    assert_clean_error,
    colorize_cli,
    partial_files,
    read_clip,
    run_cli,
    run_subprocess,
    subprocess_env,
    write_clip,
    write_png,
)
from vidcolor.io.atomic import partial_path
from vidcolor.io.segments import work_folder


def has_audio_only(path: Path) -> bool:
    with av.open(str(path)) as container:
        return not container.streams.video and len(container.streams.audio) == 1


def assert_nothing_written(folder: Path, *outputs: Path) -> None:
    for out in outputs:
        assert not out.exists(), f"{out} was written"
    assert partial_files(folder) == [], partial_files(folder)


# -- inputs ---------------------------------------------------------------------------------


def test_missing_input(tmp_path, reference):
    out = tmp_path / "out.mp4"
    run = colorize_cli(tmp_path / "nope.mp4", out, reference)
    line = assert_clean_error(run, "nope.mp4", "no such file")
    assert run.code == 2, line
    assert_nothing_written(tmp_path, out)


def test_text_file_named_mp4(tmp_path, reference):
    src = tmp_path / "x.mp4"
    src.write_text("this is not a film\n" * 20)
    out = tmp_path / "out.mp4"
    run = colorize_cli(src, out, reference)
    line = assert_clean_error(run, "x.mp4", "not a readable video")
    assert run.code == 2, line
    assert_nothing_written(tmp_path, out)


def test_audio_only_file(tmp_path, reference):
    src = write_clip(tmp_path / "sound.mp4", frames=24, video=False, audio="aac")
    assert has_audio_only(src)
    out = tmp_path / "out.mp4"
    run = colorize_cli(src, out, reference)
    line = assert_clean_error(run, "sound.mp4", "no video stream")
    assert run.code == 2, line
    assert_nothing_written(tmp_path, out)


def test_folder_without_images(tmp_path, reference):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("nothing to see")
    out = tmp_path / "empty_out"
    run = colorize_cli(folder, out, reference)
    assert_clean_error(run, "no images")
    assert_nothing_written(tmp_path, out)


@pytest.mark.parametrize(
    "extra,words",
    [
        (["--start", "abc"], "--start abc"),
        (["--start", "-3"], "must not be negative"),
        (["--start", "2", "--end", "1"], "--end must come after --start"),
        (["--batch-size", "0"], "--batch-size must be between 1 and 256"),
        (["--batch-size", "100000"], "--batch-size must be between 1 and 256"),
        (["--shot-threshold", "1.5"], "--shot-threshold must be in (0, 1]"),
        (["--work-res", "8"], "--work-res must be at least 32"),
        (["--device", "tpu"], "choose auto, cpu or cuda"),
    ],
)
def test_bad_options(tmp_path, reference, grey_clip, extra, words):
    out = tmp_path / "out.mp4"
    run = colorize_cli(grey_clip, out, reference, *extra)
    assert_clean_error(run, words)
    assert_nothing_written(tmp_path, out)


# -- references -----------------------------------------------------------------------------


def test_missing_reference(tmp_path, grey_clip):
    out = tmp_path / "out.mp4"
    run = colorize_cli(grey_clip, out, tmp_path / "missing.png")
    line = assert_clean_error(run, "missing.png", "no such file")
    assert run.code == 2, line
    assert_nothing_written(tmp_path, out)


def test_corrupt_reference(tmp_path, grey_clip):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)))
    out = tmp_path / "out.mp4"
    run = colorize_cli(grey_clip, out, bad)
    line = assert_clean_error(run, "bad.png", "not a readable image")
    assert line.startswith("vidcolor: error: reference")
    assert_nothing_written(tmp_path, out)


def test_reference_that_is_not_an_image(tmp_path, grey_clip):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    out = tmp_path / "out.mp4"
    run = colorize_cli(grey_clip, out, notes)
    assert_clean_error(run, "notes.txt", "not an image")
    assert_nothing_written(tmp_path, out)


def test_grey_reference_warns_and_still_works(tmp_path, grey_clip):
    grey_ref = write_png(tmp_path / "grey_ref.png", np.tile(np.linspace(0, 255, 96, dtype=np.uint8), (64, 1)))
    out = tmp_path / "out.mp4"
    run = colorize_cli(grey_clip, out, grey_ref)
    assert run.code == 0, run.stderr
    warnings = run.warning_lines()
    assert len(warnings) == 1 and "grey_ref.png" in warnings[0] and "almost no colour" in warnings[0]
    assert run.error_lines() == []
    assert read_clip(out, pixels=False).frames == read_clip(grey_clip, pixels=False).frames


# -- outputs --------------------------------------------------------------------------------


def test_output_under_a_regular_file(tmp_path, reference, grey_clip):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    out = blocker / "sub" / "out.mp4"
    run = colorize_cli(grey_clip, out, reference)
    line = assert_clean_error(run, "cannot write here")
    assert run.code == 3, line
    assert blocker.read_text() == "a file, not a folder"
    assert partial_files(tmp_path) == []


def test_existing_output_needs_overwrite(tmp_path, reference, grey_clip):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    run = colorize_cli(grey_clip, out, reference)
    line = assert_clean_error(run, "exists", "--overwrite")
    assert run.code == 3, line
    assert out.read_bytes() == b"precious"
    assert partial_files(tmp_path) == []
    # with --overwrite it is replaced by a real film
    run = colorize_cli(grey_clip, out, reference, "--overwrite")
    assert run.code == 0, run.stderr
    assert read_clip(out, pixels=False).frames == 24


def test_output_equal_to_input(tmp_path, reference, grey_clip):
    before = grey_clip.read_bytes()
    for extra in ([], ["--overwrite"]):
        run = colorize_cli(grey_clip, grey_clip, reference, *extra)
        assert_clean_error(run, "would replace the input")
        assert grey_clip.read_bytes() == before
    # also through another spelling of the same path
    run = colorize_cli(grey_clip, tmp_path / "." / grey_clip.name, reference, "--overwrite")
    assert_clean_error(run, "would replace the input")
    assert grey_clip.read_bytes() == before
    assert partial_files(tmp_path) == []


@pytest.mark.parametrize("name,words", [("out.notaformat", ".notaformat"), ("out.webm", ".webm files cannot hold libx264")])
def test_output_of_a_kind_that_cannot_be_written(tmp_path, reference, grey_clip, name, words):
    out = tmp_path / name
    run = colorize_cli(grey_clip, out, reference)
    line = assert_clean_error(run, words)
    assert ".partial" not in line  # the user's output is named, not the hidden temporary file
    assert run.code == 3, line
    assert_nothing_written(tmp_path, out)


def test_disk_full_while_writing_video(tmp_path, reference, grey_clip, monkeypatch):
    from vidcolor.io import video_writer

    real_write = video_writer.VideoWriter.write
    calls = []

    def write_then_fill_the_disk(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(video_writer.VideoWriter, "write", write_then_fill_the_disk)
    out = tmp_path / "out.mp4"
    run = colorize_cli(grey_clip, out, reference)
    line = assert_clean_error(run, "disk full")
    assert run.code == 3, line
    assert len(calls) == 6  # it did start writing
    assert_nothing_written(tmp_path, out)


def test_disk_full_while_writing_an_image(tmp_path, reference, monkeypatch):
    src = write_png(tmp_path / "photo.png", np.tile(np.arange(64, dtype=np.uint8), (48, 1)))
    out = tmp_path / "photo_out.png"

    def no_space(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", no_space)
    run = colorize_cli(src, out, reference)
    line = assert_clean_error(run, "disk full")
    assert run.code == 3, line
    assert_nothing_written(tmp_path, out)


# -- models and devices ---------------------------------------------------------------------


def test_unknown_model(tmp_path, reference, grey_clip):
    out = tmp_path / "out.mp4"
    run = colorize_cli(grey_clip, out, reference, "--model", "nope")
    line = assert_clean_error(run, "unknown model 'nope'", "transfer")
    assert run.code == 2, line
    assert_nothing_written(tmp_path, out)


def test_reference_model_without_a_reference(tmp_path, grey_clip):
    out = tmp_path / "out.mp4"
    run = run_cli(grey_clip, "-o", out)
    assert_clean_error(run, "--reference")
    assert_nothing_written(tmp_path, out)


def test_device_cuda_without_cuda(tmp_path, reference, grey_clip):
    out = tmp_path / "out.mp4"
    run = colorize_cli(grey_clip, out, reference, "--device", "cuda")
    if torch.cuda.is_available():
        assert run.code == 0, run.stderr
        return
    line = assert_clean_error(run, "--device cuda", "no CUDA")
    assert run.code == 2, line
    assert_nothing_written(tmp_path, out)


def test_auto_without_an_automatic_model(tmp_path, grey_clip, monkeypatch):
    monkeypatch.setenv("VIDCOLOR_WEIGHTS", str(tmp_path / "no_weights"))
    out = tmp_path / "out.mp4"
    run = run_cli(grey_clip, "--auto", "-o", out)
    line = assert_clean_error(run, "no automatic model has weights installed")
    assert run.code == 2, line
    assert_nothing_written(tmp_path, out)


def test_auto_with_a_reference(tmp_path, reference, grey_clip):
    out = tmp_path / "out.mp4"
    run = run_cli(grey_clip, "--auto", "-r", reference, "-o", out)
    assert_clean_error(run, "--auto")
    assert_nothing_written(tmp_path, out)


def test_shots_of_a_missing_film(tmp_path):
    run = run_cli("shots", tmp_path / "nope.mp4")
    assert_clean_error(run, "nope.mp4", "no such file")


def test_unexpected_error_is_one_line_too(tmp_path, reference, grey_clip, monkeypatch):
    from vidcolor.film import engine

    def broken(self, *args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(engine.Engine, "colorize", broken)
    out = tmp_path / "out.mp4"
    run = colorize_cli(grey_clip, out, reference)
    line = assert_clean_error(run, "ZeroDivisionError", "boom", "VIDCOLOR_DEBUG")
    assert run.code == 1, line
    assert_nothing_written(tmp_path, out)


# -- a real process -------------------------------------------------------------------------


def test_subprocess_errors(tmp_path, reference, grey_clip):
    out = tmp_path / "out.mp4"
    run = run_subprocess(tmp_path / "missing.mp4", "-r", reference, "-o", out)
    assert_clean_error(run, "missing.mp4", "no such file")
    assert run.code == 2
    text = tmp_path / "x.mp4"
    text.write_text("not media")
    run = run_subprocess(text, "-r", reference, "-o", out)
    assert_clean_error(run, "not a readable video")
    out.write_bytes(b"keep me")
    run = run_subprocess(grey_clip, "-r", reference, "-o", out, "--work-res", "48")
    assert_clean_error(run, "exists")
    assert run.code == 3 and out.read_bytes() == b"keep me"
    assert partial_files(tmp_path) == []


def test_subprocess_success(tmp_path, reference, grey_clip):
    run = run_subprocess(grey_clip, "-r", reference, "--work-res", "48", "-q")
    assert run.code == 0, run.stderr
    assert run.stderr.strip() == ""  # --quiet: nothing but errors
    out = grey_clip.with_name("grey_color.mp4")  # the default output name
    assert read_clip(out, pixels=False).frames == 24


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """30 s at 24 fps: far longer than the time it takes to interrupt it."""
    return write_clip(tmp_path_factory.mktemp("long") / "long.mp4", frames=720, size=(160, 96), audio="aac")


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 130)])
def test_interrupted_run_leaves_nothing(tmp_path, reference, long_clip, sig, code):
    src = long_clip
    out = tmp_path / "long_out.mp4"
    partial = partial_path(out)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidcolor", str(src), "-r", str(reference), "-o", str(out), "--work-res", "64"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    folder = work_folder(out)
    try:
        deadline = time.monotonic() + 60
        while not any(folder.glob("*.mp4")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(folder.glob("*.mp4")), "the run never started writing"
        time.sleep(0.5)  # well into the film
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr + stdout
    errors = [line for line in stderr.splitlines() if line.startswith("vidcolor: error:")]
    assert len(errors) == 1 and "interrupted" in errors[0], stderr
    assert not out.exists()
    assert not partial.exists()
    assert partial_files(tmp_path) == []
    # only finished segments stay (for --resume), each listed in the folder's manifest
    if folder.exists():
        listed = {s["file"] for s in json.loads((folder / "segments.json").read_text())["segments"]}
        assert {f.name for f in folder.glob("*.mp4")} == listed
