"""Automatic colour for films by keyframes: each shot's keyframes coloured by an automatic
network and carried through the shot by the exemplar network (``vidcolor.film.keyframes``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from conftest import assert_clean_error, read_clip, run_cli, scene, write_frames_clip
from vidcolor.film.keyframes import AutoKeyframes
from vidcolor.film.shots import Shot
from vidcolor.ops.color import rgb_to_grey_levels


def _frame(index: int, grey: np.ndarray, rate: float = 24.0):
    return SimpleNamespace(index=index, time=index / rate, grey=grey)


def _grey(seed: int, size: int = 64) -> np.ndarray:
    return rgb_to_grey_levels(scene(seed, size))


def test_keyframes_come_at_shots_every_few_seconds_at_new_content_and_never_in_the_dark():
    keys = AutoKeyframes(engine=None, auto=None, key_every=1.0)
    a, b = _grey(1), _grey(2)
    black = np.full_like(a, 3)
    rng = np.random.default_rng(0)

    def grain(g):  # the same picture with noise: no new keyframe for it
        return np.clip(g.astype(int) + rng.integers(-3, 4, g.shape), 0, 255).astype(np.uint8)

    assert keys.choose(Shot(0, 0, 1, 0.0, 0.0), _frame(0, black)).index == 0
    assert keys.renew(_frame(1, black)) is None  # dark: not a keyframe
    assert keys.renew(_frame(2, a)).index == 2  # the first usable frame replaces a dark keyframe
    assert all(keys.renew(_frame(k, grain(a))) is None for k in range(3, 26))
    assert keys.renew(_frame(27, grain(a))).index == 27  # over a second after the last keyframe
    assert keys.renew(_frame(28, grain(a))) is None
    assert keys.renew(_frame(30, b)).index == 30  # other content in the same shot
    with pytest.raises(Exception, match="key_every"):
        AutoKeyframes(None, None, key_every=0)


def _chroma_steps(frames: list[np.ndarray]) -> float:
    """Mean change of colour (a, b of Lab) from frame to frame."""
    import cv2

    ab = [cv2.cvtColor(f, cv2.COLOR_RGB2LAB)[..., 1:].astype(float) for f in frames]
    return float(np.mean([np.abs(p - q).mean() for p, q in zip(ab, ab[1:])]))


def test_a_still_scene_with_grain_keeps_its_colour_and_new_content_gets_its_own(tmp_path):
    """Per-frame automatic colour changes with every frame's grain; from a keyframe it stays
    put. When the content changes within the shot, a new keyframe colours it."""
    rng = np.random.default_rng(1)
    still, other = scene(4, 96), scene(9, 96)
    frames = [np.clip(still.astype(int) + rng.integers(-12, 13, still.shape[:2])[..., None], 0, 255).astype(np.uint8)
              for _ in range(16)]
    film = write_frames_clip(tmp_path / "still.mp4", frames, codec="libx264rgb", pix_fmt="rgb24")
    out = {}
    for mode in ("keyframes", "per-frame"):
        out[mode] = tmp_path / f"{mode}.mp4"
        run = run_cli(film, "--auto", "--model", "eccv16", "--auto-mode", mode, "--temporal", "none", "-o", out[mode], "-q")
        assert run.code == 0, run.stderr
    steady, flicker = (_chroma_steps(read_clip(out[m]).rgb) for m in ("keyframes", "per-frame"))
    assert steady < 0.7 * flicker, (steady, flicker)  # the rest: the grain through the encoder and the matching

    from vidcolor.film.engine import Engine
    from vidcolor.film.loop import FilmLoop

    greys = [rgb_to_grey_levels(f) for f in [still] * 8 + [other] * 8]
    keys = AutoKeyframes(Engine("exemplar", device="cpu", work_res=64), Engine("eccv16", device="cpu", work_res=64),
                         key_every=60.0)
    batches = list(FilmLoop(keys.engine, keys, batch_size=4, threshold=1.0).run(
        _frame(k, g) for k, g in enumerate(greys)))
    assert [b.choice.index for b in batches] == [0, 0, 8, 8]  # no cut (threshold 1), but new content at frame 8
    assert sum(len(b.frames) for b in batches) == 16


def test_auto_mode_options_are_checked(tmp_path):
    film = write_frames_clip(tmp_path / "f.mp4", [scene(1, 64)] * 4)
    assert_clean_error(run_cli(film, "--auto", "--auto-mode", "sometimes", "-o", tmp_path / "a.mp4"), "choose keyframes")
    assert_clean_error(run_cli(film, "--auto", "--key-every", "0", "-o", tmp_path / "b.mp4"), "--key-every")


def test_eval_measures_films_coloured_by_keyframes(tmp_path):
    import json

    from conftest import moving_colour, write_clip, write_png

    originals = tmp_path / "originals"
    originals.mkdir()
    write_clip(originals / "clip.mp4", frames=8, size=(64, 48), content=moving_colour)
    write_png(originals / "photo.png", scene(3, 48))
    out = tmp_path / "e.json"
    run = run_cli("eval", originals, "--model", "eccv16", "--reference-mode", "none", "--auto-mode", "keyframes",
                  "--key-every", "0.1", "--json", out, "-q")
    assert run.code == 0, run.stderr
    report = json.loads(out.read_text())
    assert report["auto_mode"] == "keyframes" and report["summary"]["video"]["frames"] == 8
    assert report["summary"]["photo"]["items"] == 1
    assert_clean_error(run_cli("eval", originals, "--model", "transfer", "--auto-mode", "keyframes"), "--reference-mode none")


def test_a_killed_keyframe_run_resumes_to_the_same_film(tmp_path):
    """Keyframes are chosen on every frame, the skipped ones too, so a resumed film has the
    same keyframes, and the same colours, as one coloured straight through."""
    import signal
    import subprocess
    import sys
    import time

    import json

    from conftest import subprocess_env, write_clip
    from vidcolor.io.segments import work_folder

    def finished_segments(folder):
        try:
            return json.loads((folder / "segments.json").read_text())["segments"]
        except (OSError, ValueError):
            return []

    film = write_clip(tmp_path / "film.mp4", frames=600, size=(96, 64), audio="aac")
    args = ("--auto", "--model", "eccv16", "--key-every", "2", "--work-res", "48")
    straight = tmp_path / "straight.mp4"
    assert run_cli(film, *args, "-o", straight, "-q").code == 0
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "vidcolor", str(film), *args, "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        deadline = time.monotonic() + 120
        while not finished_segments(work_folder(out)) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert finished_segments(work_folder(out)) and proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    run = run_cli(film, *args, "-o", out, "--resume")
    assert run.code == 0 and "resuming" in run.stderr, run.output
    resumed, whole = read_clip(out), read_clip(straight)
    assert resumed.frames == whole.frames == 600 and resumed.audio == whole.audio
    difference = np.abs(np.stack(resumed.rgb).astype(int) - np.stack(whole.rgb).astype(int))
    assert difference.mean() < 4.0  # libx264 does not give the same bits twice for these frames (test_resume.py)
