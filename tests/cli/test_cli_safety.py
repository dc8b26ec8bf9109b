"""What the command promises a hostile user: a signal at any moment ends the run cleanly,
usage errors are one line, an input folder is never its own output, one broken picture
does not stop a folder, an output that cannot be written is refused before any work, and
two runs never write the same output at once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import (assert_clean_error, colorize_cli, colour_reference, partial_files, read_rgb_image, run_cli,
                      run_subprocess, subprocess_env, write_clip, write_png)
from vidcolor.io.atomic import output_lock
from vidcolor.io.segments import work_folder


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> tuple[Path, Path]:
    """A 5 s film with sound and its reference."""
    folder = tmp_path_factory.mktemp("film")
    return write_clip(folder / "film.mp4", frames=120, size=(96, 64), audio="aac"), write_png(
        folder / "ref.png", colour_reference())


def start(source: Path, reference: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vidcolor", str(source), "-r", str(reference), "-o", str(out),
                             "--work-res", "48"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=subprocess_env())


def wait_for_handlers(proc: subprocess.Popen) -> None:
    """Wait until the program handles SIGTERM: its entry point has run (before that the
    interpreter itself is starting and the default actions apply)."""
    status = Path(f"/proc/{proc.pid}/status")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        caught = next((line.split()[1] for line in status.read_text().splitlines() if line.startswith("SigCgt:")), "0")
        if int(caught, 16) & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.002)
    raise AssertionError("the program never set its signal handlers")


def finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def assert_interrupted(proc: subprocess.Popen, stderr: str, stdout: str) -> None:
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr + stdout, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("vidcolor: error:")]
    assert len(errors) == 1 and "interrupted" in errors[0], stderr


# -- signals ----------------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the signal mask from /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("delay", [0.0, 0.1, 0.3, 0.6, 1.0, 1.6])
def test_a_signal_while_starting_ends_the_run_cleanly(tmp_path, film, sig, delay):
    """The first seconds go to importing the libraries: a signal there is never lost (the
    run went on to the end), never a traceback, never a half-imported library."""
    source, reference = film
    out = tmp_path / "out.mp4"
    proc = start(source, reference, out)
    wait_for_handlers(proc)
    time.sleep(delay)
    proc.send_signal(sig)
    stdout, stderr = finish(proc)
    assert_interrupted(proc, stderr, stdout)
    assert not out.exists() and partial_files(tmp_path) == []


SWALLOWING_LIBRARY = """
import os, signal, sys, time
import safetensors

def safe_open(*args, **kwargs):  # as PyTorch does inside some of its calls
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
    except KeyboardInterrupt:
        raise TypeError("could not determine the shape of object type 'torch.storage.UntypedStorage'") from None

safetensors.safe_open = safe_open
sys.argv = ["vidcolor", *sys.argv[1:]]
from vidcolor.__main__ import main
main()
"""


def test_an_interrupt_a_library_turns_into_its_own_error_is_still_an_interrupt(tmp_path, film):
    """A signal while the weights are read, inside a library that reports it as an error of
    its own: the run ends as interrupted (exit 130), not as that error."""
    source, reference = film
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-c", SWALLOWING_LIBRARY, str(source), "-r", str(reference), "-o", str(out),
                             "--work-res", "48"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=subprocess_env())
    stdout, stderr = finish(proc)
    assert "UntypedStorage" not in stderr
    assert_interrupted(proc, stderr, stdout)
    assert not out.exists() and partial_files(tmp_path) == []


def test_a_second_signal_while_cleaning_up_ends_the_run_at_once(tmp_path, film):
    source, reference = film
    out = tmp_path / "out.mp4"
    proc = start(source, reference, out)
    deadline = time.monotonic() + 60
    while not work_folder(out).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = finish(proc)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr + stdout, stderr
    assert not out.exists()


# -- usage ------------------------------------------------------------------------------------


@pytest.mark.parametrize("args,words", [
    (["{film}", "--bogus"], ["no such option: --bogus", "vidcolor colorize --help"]),
    (["{film}", "--crf", "abc"], ["--crf", "vidcolor colorize --help"]),
    (["shots"], ["missing argument", "vidcolor shots --help"]),
    (["{film}", "-r", "{ref}", "--start", "nan"], ["--start", "finite"]),
    (["{film}", "-r", "{ref}", "--end", "inf"], ["--end", "finite"]),
])
def test_usage_errors_are_one_line(tmp_path, film, args, words):
    source, reference = film
    run = run_subprocess(*(a.format(film=source, ref=reference) for a in args))
    line = assert_clean_error(run, *words)
    assert run.code == 2, line
    assert run.stderr.strip() == line and run.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_help_still_prints_help():
    run = run_subprocess("--help")
    assert run.code == 0 and "colorize" in run.stdout and run.stderr == ""


# -- folders ----------------------------------------------------------------------------------


def folder_state(folder: Path) -> dict[str, object]:
    """Every entry of a folder: a link's target, a file's bytes."""
    return {p.name: (("link", str(p.readlink())) if p.is_symlink() else p.read_bytes()) for p in sorted(folder.iterdir())}


def test_a_folder_is_never_its_own_output(tmp_path, reference):
    photos = tmp_path / "photos"
    write_png(photos / "a.png", np.tile(np.arange(64, dtype=np.uint8), (48, 1)))
    write_png(tmp_path / "elsewhere.png", np.tile(np.arange(48, dtype=np.uint8)[:, None], (1, 64)))
    (photos / "link.png").symlink_to(tmp_path / "elsewhere.png")
    before = folder_state(photos)
    for output in (photos, photos / ".." / "photos"):
        run = colorize_cli(photos, output, reference, "--overwrite")
        line = assert_clean_error(run, "input folder")
        assert run.code == 3, line
        assert folder_state(photos) == before


def test_one_broken_picture_does_not_stop_a_folder(tmp_path, reference):
    photos = tmp_path / "photos"
    for name in ("a.png", "c.png"):
        write_png(photos / name, np.tile(np.arange(64, dtype=np.uint8), (48, 1)))
    broken = (photos / "a.png").read_bytes()
    (photos / "b.png").write_bytes(broken[: len(broken) // 2])
    out = tmp_path / "out"
    run = colorize_cli(photos, out, reference)
    assert run.code == 2, run.output
    assert "Traceback" not in run.output
    errors = run.error_lines()
    assert len(errors) == 2, run.stderr
    assert "b.png" in errors[0] and "not a readable image" in errors[0]
    assert "1 of 3 images" in errors[1]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
    for name in ("a.png", "c.png"):
        assert read_rgb_image(out / name).shape == (48, 64, 3)
    # a second run tries only what is missing, and fails on it again
    run = colorize_cli(photos, out, reference)
    assert run.code == 2 and "2 image(s) already done" in run.stderr and "1 of 1 images" in run.error_lines()[-1]


def test_an_interrupt_reported_as_a_broken_picture_stops_the_folder(tmp_path, reference, monkeypatch):
    """The folder goes on past a broken picture, but not past an interrupt that a library
    reported as one."""
    from vidcolor import stopping
    from vidcolor.errors import InputError
    from vidcolor.film import pipeline

    photos = tmp_path / "photos"
    for name in ("a.png", "b.png", "c.png"):
        write_png(photos / name, np.tile(np.arange(64, dtype=np.uint8), (48, 1)))
    tried = []

    def interrupted_read(image, *args):
        tried.append(image.name)
        monkeypatch.setattr(stopping, "_raised", [signal.SIGTERM])  # the signal came while the library read it
        raise InputError(f"{image}: not a readable image")

    monkeypatch.setattr(pipeline, "colorize_image", interrupted_read)
    run = colorize_cli(photos, tmp_path / "out", reference)
    assert run.code == 130, run.output
    assert tried == ["a.png"]
    assert run.error_lines() == ["vidcolor: error: interrupted; no partial output was left behind"]


# -- outputs ----------------------------------------------------------------------------------


def test_an_output_that_is_a_folder_is_refused_before_decoding(tmp_path, film, monkeypatch):
    from vidcolor.film import pipeline

    def no_work(*args, **kwargs):
        raise AssertionError("the film was decoded")

    monkeypatch.setattr(pipeline, "colorize_video", no_work)
    source, reference = film
    out = tmp_path / "d.mp4"
    out.mkdir()
    for extra in ((), ("--overwrite",)):
        run = colorize_cli(source, out, reference, *extra)
        line = assert_clean_error(run)
        assert run.code == 3, line
        assert str(out) in line
    assert out.is_dir() and list(out.iterdir()) == []
    assert not work_folder(out).exists()


def test_two_runs_never_write_the_same_output(tmp_path, film):
    source, reference = film
    out = tmp_path / "out.mp4"
    with output_lock(out):  # as a run that is writing ``out`` holds it
        run = colorize_cli(source, out, reference)
        line = assert_clean_error(run, "another run is writing")
        assert run.code == 3, line
        assert not out.exists() and not work_folder(out).exists()
    run = colorize_cli(source, out, reference, "-q")
    assert run.code == 0, run.output
    assert out.exists() and [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no lock file left


def test_keyframes_are_not_exported_into_a_file(tmp_path, film):
    source, _ = film
    target = tmp_path / "keyframes"
    target.write_text("notes")
    run = run_cli("shots", source, "--export-keyframes", target)
    line = assert_clean_error(run, "--export-keyframes", "not a folder")
    assert run.code == 3, line
    assert target.read_text() == "notes"


@pytest.mark.parametrize("extra,words,code", [
    (["--crf", "99"], ["--crf 99", "libx264 takes 0 to 51"], 2),
    (["--crf", "-1", "--codec", "libx265"], ["--crf -1", "libx265 takes 0 to 51"], 2),
    (["--codec", "h264_amf"], ["h264_amf cannot run here", "--codec libx264"], 3),  # an AMD GPU encoder
    (["--codec", "h264_v4l2m2m"], ["h264_v4l2m2m cannot run here"], 3),  # a hardware encoder device
])
def test_the_encoder_is_checked_before_decoding(tmp_path, film, monkeypatch, extra, words, code):
    from vidcolor.film import pipeline

    def no_work(*args, **kwargs):
        raise AssertionError("the film was decoded")

    monkeypatch.setattr(pipeline, "colorize_video", no_work)
    source, reference = film
    out = tmp_path / "out.mp4"
    run = colorize_cli(source, out, reference, *extra)
    line = assert_clean_error(run, *words)
    assert run.code == code, line
    assert list(tmp_path.iterdir()) == []


def test_quiet_means_quiet_with_every_encoder(tmp_path, film):
    """x265 prints its settings straight to the terminal unless told not to."""
    source, reference = film
    out = tmp_path / "out.mkv"
    run = run_subprocess(source, "-r", reference, "-o", out, "--work-res", "48", "--codec", "libx265", "-q")
    assert run.code == 0, run.stderr
    assert run.stderr == "" and run.stdout == ""
    assert out.exists()


def test_a_corrupt_picture_is_one_line_too(tmp_path, film):
    """libpng prints its own "libpng error: ..." line unless vidcolor collects it."""
    source, reference = film
    damaged = bytearray(reference.read_bytes())
    damaged[300:400] = bytes(b ^ 0x55 for b in damaged[300:400])  # inside the image data: a bad filter or CRC
    broken = tmp_path / "broken.png"
    broken.write_bytes(bytes(damaged))
    run = run_subprocess(source, "-r", broken, "-o", tmp_path / "out.mp4")
    line = assert_clean_error(run, "broken.png", "not a readable image", "libpng")
    assert run.code == 2 and run.stderr.strip() == line
