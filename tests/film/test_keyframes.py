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


def test_a_flickering_light_makes_no_keyframe_and_a_fade_ends_on_one():
    """Light that changes every two frames (flashes) keeps the keyframe; light that changes
    and holds (a fade) makes one keyframe, once it has held; another scene makes one at once."""
    a = _grey(1)

    def lit(g, offset):  # the same scene in more light: its histogram moves far, its layout not at all
        return np.clip(g.astype(int) + offset, 0, 255).astype(np.uint8)

    keys = AutoKeyframes(engine=None, auto=None, key_every=4.0)
    keys.choose(Shot(0, 0, 1, 0.0, 0.0), _frame(0, a))
    flashes = [lit(a, 60 if (k // 2) % 2 else 0) for k in range(1, 72)]
    assert [k for k, g in enumerate(flashes, 1) if keys.renew(_frame(k, g)) is not None] == []

    keys = AutoKeyframes(engine=None, auto=None, key_every=4.0)
    keys.choose(Shot(0, 0, 1, 0.0, 0.0), _frame(0, a))
    fade = [lit(a, min(10 * k, 60)) for k in range(1, 48)]  # brighter every frame up to frame 6, then held
    made = [k for k, g in enumerate(fade, 1) if keys.renew(_frame(k, g)) is not None]
    assert len(made) == 1 and 6 < made[0] <= 6 + 0.15 * 24 + 1, made
    assert keys.renew(_frame(48, _grey(2))).index == 48  # another scene: at once


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
    # no cut (threshold 1), but new content at frame 8: each content takes its own keyframe alone
    assert [(b.choice.before.index, b.choice.after) for b in batches] == [(0, None), (0, None), (8, None), (8, None)]
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
                  "--key-every", "0.1", "--json", out, "--sheet", tmp_path / "sheet.png", "-q")
    assert run.code == 0, run.stderr
    assert (tmp_path / "sheet.png").is_file()
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


# -- two keyframes blended --------------------------------------------------------------------


def _grainy(seed: int, frames: int, size: int = 64, grain: int = 12) -> list[np.ndarray]:
    """A still picture under fresh grain on every frame: the automatic network colours each
    frame (and so each keyframe) a little differently."""
    rng = np.random.default_rng(seed)
    still = scene(4, size)
    noisy = [np.clip(still.astype(int) + rng.integers(-grain, grain + 1, still.shape[:2])[..., None], 0, 255)
             .astype(np.uint8) for _ in range(frames)]
    return [rgb_to_grey_levels(f) for f in noisy]


@pytest.fixture(scope="module")
def engines():
    from vidcolor.film.engine import Engine

    return Engine("exemplar", device="cpu", work_res=48), Engine("eccv16", device="cpu", work_res=48)


def _run(keys, greys, **loop) -> tuple[list, np.ndarray]:
    from vidcolor.film.loop import FilmLoop

    batches = list(FilmLoop(keys.engine, keys, batch_size=4, threshold=1.0, **loop).run(
        _frame(k, g) for k, g in enumerate(greys)))
    return batches, np.concatenate([b.rgb for b in batches]) if batches else np.zeros((0,))


def test_an_engine_blends_two_references_by_each_frames_weight(engines):
    from vidcolor.film.engine import Blend

    engine = engines[0]
    greys = _grainy(2, 3)
    first, second = engine.prepare(scene(1, 64)), engine.prepare(scene(7, 64))
    alone, confidence = [], []
    for prepared in (first, second):
        alone.append(engine.colorize(greys, prepared))
        confidence.append(engine.confidence.clone())
    both = engine.colorize(greys, Blend(first, second, 10, 12), indices=[10, 11, 12])
    assert np.array_equal(both[0], alone[0][0]) and np.array_equal(both[2], alone[1][2])  # weights 0 and 1
    lab = [cv2_lab(x[1]) for x in (alone[0], alone[1], both)]
    assert np.abs(lab[2] - (lab[0] + lab[1]) / 2).mean() < 1.5  # halfway (on the 8-bit output's rounding)
    assert np.abs(lab[0] - lab[1]).mean() > 3  # the two references do colour it differently
    assert float(engine.confidence[1]) == pytest.approx(float(confidence[0][1] + confidence[1][1]) / 2, abs=1e-5)
    assert np.array_equal(engine.colorize(greys, Blend(first, None, 10, 12), indices=[10, 11, 12]), alone[0])


def cv2_lab(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)[..., 1:].astype(float)


class OneKeyframe(AutoKeyframes):
    """Each frame from the keyframe before it alone (no blending)."""

    def span(self, before, after):
        return super().span(before, None)


def test_keyframes_renewed_with_time_are_blended_so_the_colour_does_not_jump(engines):
    greys = _grainy(3, 24, grain=24)
    blended, rgb = _run(AutoKeyframes(*engines, key_every=0.25), greys)
    assert [(b.choice.before.index, getattr(b.choice.after, "index", None)) for b in blended] == [
        (0, 6), (0, 6), (6, 12), (6, 12), (12, 18), (12, 18), (18, None), (18, None)]
    _, single = _run(OneKeyframe(*engines, key_every=0.25), greys)
    ab, ab_single = np.stack([cv2_lab(f) for f in rgb]), np.stack([cv2_lab(f) for f in single])
    assert np.array_equal(ab[0], ab_single[0])  # the first keyframe's own frame: its colour alone

    def steps(x):  # the change of colour into each frame
        return np.abs(np.diff(x, axis=0)).mean((1, 2, 3))

    at_keys = [5, 11, 17]  # the steps into frames 6, 12 and 18
    jumps, grain = steps(ab_single), np.median(steps(ab_single))
    assert jumps[at_keys].max() > 2 * grain  # one keyframe after another: the colour jumps
    smooth = steps(ab)
    assert smooth[at_keys].max() < 1.3 * np.median(smooth)  # blended: no more than the grain's own flicker
    assert smooth[at_keys].max() < 0.6 * jumps[at_keys].max(), (smooth, jumps)


def test_frames_wait_for_the_next_keyframe_only_so_long(engines, monkeypatch):
    """A long dark stretch makes no keyframe: its frames wait ``key_every`` seconds (or
    ``MAX_WAITING`` bytes) at most, then take the keyframe before them alone, without
    waiting for the end of the shot."""
    from vidcolor.film import keyframes
    from vidcolor.film.loop import FilmLoop

    lit = _grainy(4, 1)[0]
    greys = [lit] + [np.full_like(lit, 4)] * 40 + [lit] * 3
    pulled: list[int] = []

    def frames():
        for k, g in enumerate(greys):
            pulled.append(k)
            yield _frame(k, g)

    def first_batch_after():
        pulled.clear()
        keys = AutoKeyframes(*engines, key_every=0.5)
        loop = FilmLoop(keys.engine, keys, batch_size=4, threshold=1.0).run(frames())
        first = next(loop)
        seen = len(pulled)
        rest = list(loop)
        return first, seen, [first, *rest]

    first, seen, batches = first_batch_after()
    assert first.choice.after is None and seen < 24  # 0.5 s at 24 fps, the detector's look-ahead and a batch
    assert sum(len(b.frames) for b in batches) == len(greys)
    assert batches[-1].choice.before.index == 41  # lit again, over 0.5 s later: a keyframe of its own
    monkeypatch.setattr(keyframes, "MAX_WAITING", 4 * lit.nbytes)
    _, fewer, _ = first_batch_after()
    assert fewer < seen


@pytest.mark.parametrize("skip, stop", [(10, 20), (10, None), (20, 30)])
def test_a_part_or_a_resumed_run_colours_its_frames_as_one_run_does(engines, skip, stop):
    """A part (``skip``..``stop``) still sees the keyframe after its last frames, past its
    end, so its frames are the frames of one run; so are a resumed run's."""
    greys = _grainy(5, 40)
    starts = {"starts_segment": lambda index: index % 10 == 0}
    _, whole = _run(AutoKeyframes(*engines, key_every=0.25), greys, **starts)
    batches, part = _run(AutoKeyframes(*engines, key_every=0.25), greys, skip=skip, stop=stop, **starts)
    assert [f.index for b in batches for f in b.frames] == list(range(skip, stop or 40))
    assert np.array_equal(part, whole[skip:stop])


def test_the_smoothing_runs_on_over_the_keyframes_of_a_shot(engines):
    """A new reference starts the temporal smoothing afresh; a new keyframe of the same shot
    (a ``Blend``) does not, so new content within a shot does not make the colour jump."""
    from vidcolor.film.engine import Blend, Engine

    engine = Engine("exemplar", device="cpu", work_res=48, smooth=True)
    greys = _grainy(6, 2)
    first, second = (engine.prepare(scene(1, 64)) for _ in range(2))  # the same picture, prepared twice
    engine.new_shot()
    engine.colorize(greys[:1], first, sequence=True)
    smoothed, raw = engine.colorize(greys[1:], second, sequence=True, with_raw=True)
    assert np.array_equal(smoothed, raw)  # another reference: afresh
    engine.new_shot()
    engine.colorize(greys[:1], Blend(first, None, 0, 0), sequence=True, indices=[0])
    smoothed, raw = engine.colorize(greys[1:], Blend(second, None, 1, 1), sequence=True, with_raw=True, indices=[1])
    assert not np.array_equal(smoothed, raw)  # the next keyframe of the shot: carried on
