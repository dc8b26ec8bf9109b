"""Films are written in resumable segments: a run killed part way keeps its finished
segments, ``--resume`` completes it, and the result matches an uninterrupted run."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import (assert_clean_error, colour_reference, moving_grey, partial_files, read_clip, run_cli, subprocess_env,
                      write_clip, write_png)
from vidcolor.io.segments import work_folder

ARGS = ("--work-res", "48", "--temporal", "smooth")


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Path:
    """25 s at 24 fps with audio: three segments of 10 s."""
    return write_clip(tmp_path_factory.mktemp("film") / "film.mp4", frames=600, size=(96, 64), audio="aac")


@pytest.fixture(scope="module")
def straight(film, tmp_path_factory) -> Path:
    """The film coloured in one run (its reference beside it, in a ref* folder)."""
    reference = write_png(tmp_path_factory.mktemp("ref") / "ref.png", colour_reference())
    out = tmp_path_factory.mktemp("straight") / "out.mp4"
    run = run_cli(film, "-r", reference, "-o", out, *ARGS, "-q")
    assert run.code == 0, run.output
    return out


def finished_segments(folder: Path) -> list[dict]:
    try:
        return json.loads((folder / "segments.json").read_text())["segments"]
    except (OSError, ValueError):
        return []


def killed_run(film: Path, reference: Path, out: Path) -> list[dict]:
    """Start colouring ``film`` into ``out``, SIGKILL it once a segment is finished; returns
    the finished segments left in the resume folder."""
    folder = work_folder(out)
    proc = subprocess.Popen([sys.executable, "-m", "vidcolor", str(film), "-r", str(reference), "-o", str(out), *ARGS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        deadline = time.monotonic() + 120
        while not finished_segments(folder) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert finished_segments(folder), "no segment was finished"
        assert proc.poll() is None, "the run ended before it could be stopped"
        proc.send_signal(signal.SIGKILL)  # no chance to clean up: the hardest stop
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert not out.exists()
    return finished_segments(folder)


def test_killed_run_resumes_to_the_same_film(tmp_path, film, straight):
    reference = next(straight.parents[1].glob("ref*/ref.png"))
    out = tmp_path / "out.mp4"
    folder = work_folder(out)
    kept = killed_run(film, reference, out)
    assert 1 <= len(kept) < 3
    # without --resume's settings: refused, nothing lost
    run = run_cli(film, "-r", reference, "-o", out, "--work-res", "64", "--temporal", "smooth", "--resume")
    assert_clean_error(run, "other settings", "--resume")
    assert finished_segments(folder) == kept
    run = run_cli(film, "-r", reference, "-o", out, *ARGS, "--resume")
    assert run.code == 0, run.output
    assert "resuming" in run.stderr and f"{sum(s['frames'] for s in kept)} frames already done" in run.stderr
    assert not folder.exists() and partial_files(tmp_path) == []
    resumed, whole, source = read_clip(out), read_clip(straight), read_clip(film, pixels=False)
    assert resumed.frames == whole.frames == 600
    assert resumed.times == whole.times == source.times
    assert resumed.audio == source.audio
    # the same colours: libx264 does not give the same bits twice for these tiny noisy frames
    # (two uninterrupted runs differ by 2.5 levels on average), so compare on that scale
    difference = np.abs(np.stack(resumed.rgb).astype(int) - np.stack(whole.rgb).astype(int))
    assert difference.mean() < 4.0


def test_resume_needs_an_unfinished_run(tmp_path, film, straight):
    reference = next(straight.parents[1].glob("ref*/ref.png"))
    run = run_cli(film, "-r", reference, "-o", tmp_path / "new.mp4", *ARGS, "--resume")
    assert_clean_error(run, "no unfinished run")


def test_a_new_run_replaces_an_old_unfinished_one(tmp_path, film, straight):
    reference = next(straight.parents[1].glob("ref*/ref.png"))
    out = tmp_path / "out.mp4"
    folder = work_folder(out)
    folder.mkdir()
    (folder / "segments.json").write_text(json.dumps({"key": {"old": True}, "segments": [{"file": "000000.mp4", "frames": 5}]}))
    (folder / "000000.mp4").write_bytes(b"stale")
    run = run_cli(film, "-r", reference, "-o", out, *ARGS, "-q")
    assert run.code == 0, run.output
    assert read_clip(out, pixels=False).frames == 600 and not folder.exists()


def test_resume_from_another_path(tmp_path, film, straight):
    """A shared disk mounted elsewhere: the same film and reference reached by other paths
    (copies, with other times) resume the run; another film with the same name does not."""
    reference = next(straight.parents[1].glob("ref*/ref.png"))
    out = tmp_path / "shared" / "out.mp4"
    out.parent.mkdir()
    kept = killed_run(film, reference, out)
    assert kept
    elsewhere = tmp_path / "mnt" / "archive"
    elsewhere.mkdir(parents=True)
    moved_film, moved_ref = elsewhere / "film.mp4", elsewhere / "ref.png"
    shutil.copyfile(film, moved_film)
    shutil.copyfile(reference, moved_ref)
    (tmp_path / "other").mkdir()
    other = write_clip(tmp_path / "other" / "film.mp4", frames=600, size=(96, 64), audio="aac",
                       content=lambda i, w, h: moving_grey(i + 5, w, h))
    run = run_cli(other, "-r", moved_ref, "-o", out, *ARGS, "--resume")
    assert_clean_error(run, "another source", "--resume")
    assert finished_segments(work_folder(out)) == kept
    run = run_cli(moved_film, "-r", moved_ref, "-o", out, *ARGS, "--resume")
    assert run.code == 0, run.output
    assert f"{sum(s['frames'] for s in kept)} frames already done" in run.stderr
    resumed, source = read_clip(out, pixels=False), read_clip(film, pixels=False)
    assert resumed.frames == 600 and resumed.times == source.times and resumed.audio == source.audio
