"""Shot detection: the cut detector on its own, ``scan_shots``, and ``vidcolor shots``.

The test film joins four generated segments of known lengths, each visually different
(texture, brightness) and each with motion inside it, so a detector that fired on motion
would be caught as well as one that missed a cut."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import assert_clean_error, read_clip, run_cli, write_frames_clip
from vidcolor.film.shots import CutDetector, _Features, analysis_image, frame_score, scan_shots

W, H = 96, 64
LENGTHS = [20, 14, 24, 18]
CUTS = {sum(LENGTHS[:k]) for k in range(1, len(LENGTHS))}  # {20, 34, 58}


def _noise(seed: int, sigma: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, sigma, (H, W)).astype(np.float32)


def gradient_scene(i: int) -> np.ndarray:
    """Bright diagonal gradient, a white square sliding right."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    img = 120 + 80 * (x + y) / (W + H)
    cv2.rectangle(img, (5 + 2 * i, 20), (21 + 2 * i, 36), 250, -1)
    return img + _noise(i)


def dark_scene(i: int) -> np.ndarray:
    """Dark blotchy texture, a bright disc moving down and right."""
    blotches = cv2.resize(np.random.default_rng(7).random((8, 12)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
    img = 25 + 30 * blotches
    cv2.circle(img, (20 + 2 * i, 10 + i), 8, 200, -1)
    return img + _noise(100 + i)


def stripes_scene(i: int) -> np.ndarray:
    """Mid-grey horizontal stripes drifting up, a dark bar sweeping across."""
    y = np.arange(H, dtype=np.float32)[:, None]
    img = np.broadcast_to(128 + 70 * np.sign(np.sin((y + i) * np.pi / 3)), (H, W)).copy()
    cv2.rectangle(img, (3 * i % W, 0), (3 * i % W + 6, H), 10, -1)
    return img + _noise(200 + i)


def checker_scene(i: int) -> np.ndarray:
    """Large bright checkerboard, a black triangle moving left."""
    y, x = np.mgrid[0:H, 0:W]
    img = np.where(((x // 16) + (y // 16)) % 2 == 0, 235.0, 170.0).astype(np.float32)
    cx = W - 10 - 3 * i
    cv2.fillConvexPoly(img, np.array([[cx, 10], [cx + 14, 40], [cx - 14, 40]]), 0)
    return img + _noise(300 + i)


SCENES = [gradient_scene, dark_scene, stripes_scene, checker_scene]



def as_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(img, 0, 255).astype(np.uint8)


def four_shot_frames() -> list[np.ndarray]:
    return [as_u8(scene(i)) for scene, n in zip(SCENES, LENGTHS) for i in range(n)]


def panning_scene(i: int) -> np.ndarray:
    """A textured landscape panning one pixel a frame, a square bouncing across it."""
    land = cv2.resize(np.random.default_rng(11).random((10, 40)).astype(np.float32), (4 * W, H), interpolation=cv2.INTER_CUBIC)
    img = 60 + 150 * land[:, i : i + W]
    x = abs((4 * i) % (2 * (W - 16)) - (W - 16))  # back and forth, always inside the frame
    cv2.rectangle(img, (x, 30), (x + 14, 44), 245, -1)
    return img + _noise(400 + i)


def fading_frames(n: int = 60) -> list[np.ndarray]:
    """One continuous shot: moving content, slowly fading to half its brightness."""
    return [as_u8(panning_scene(i) * (1.0 - 0.5 * i / (n - 1))) for i in range(n)]


@pytest.fixture
def four_shot_film(tmp_path) -> Path:
    return write_frames_clip(tmp_path / "four.mp4", four_shot_frames())


def precision_recall(found: set[int], truth: set[int]) -> tuple[float, float]:
    hits = len(found & truth)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(truth) if truth else 1.0
    return precision, recall


# -- the detector on its own ----------------------------------------------------------------


def detect(frames: list[np.ndarray], **options) -> tuple[list[int], list[tuple[int, int]]]:
    """Cuts found, and (frame pushed, cut) pairs telling when each cut was reported."""
    detector = CutDetector(**options)
    cuts, reported = [], []
    for i, frame in enumerate(frames):
        for cut in detector.push(i, analysis_image(frame)):
            cuts.append(cut)
            reported.append((i, cut))
    for cut in detector.flush():
        cuts.append(cut)
        reported.append((len(frames), cut))
    return cuts, reported


def test_cut_detector_finds_exactly_the_cuts():
    cuts, reported = detect(four_shot_frames())
    assert precision_recall(set(cuts), CUTS) == (1.0, 1.0), cuts
    assert cuts == sorted(cuts)
    # streaming: each cut is reported a few frames after it, not at the end
    detector = CutDetector()
    for pushed, cut in reported:
        assert cut < pushed <= cut + detector.window + 1


def test_cut_detector_ignores_motion_and_fades():
    assert detect(fading_frames())[0] == []
    for scene in SCENES:
        assert detect([as_u8(scene(i)) for i in range(30)])[0] == [], scene.__name__


def flickering(frames: list[np.ndarray], amplitude: float = 0.1, seed: int = 5) -> list[np.ndarray]:
    """Old film's exposure flicker: each frame's levels times a gain of its own."""
    gains = 1.0 + amplitude * np.random.default_rng(seed).uniform(-1, 1, len(frames))
    return [as_u8(f.astype(np.float32) * g) for f, g in zip(frames, gains)]


def test_cut_detector_ignores_exposure_flicker_and_still_finds_the_cuts():
    for scene in [*SCENES, panning_scene]:
        assert detect(flickering([as_u8(scene(i)) for i in range(40)]))[0] == [], scene.__name__
    assert detect(flickering(four_shot_frames()))[0] == sorted(CUTS)


def test_cut_detector_threshold_and_min_length():
    frames = four_shot_frames()
    assert detect(frames, threshold=1.0)[0] == []
    # two cuts closer than min_length: only the first counts
    a, b, c = gradient_scene, checker_scene, dark_scene
    short = [as_u8(a(i)) for i in range(12)] + [as_u8(b(i)) for i in range(4)] + [as_u8(c(i)) for i in range(12)]
    assert detect(short)[0] == [12]
    assert detect(short, min_length=3)[0] == [12, 16]


def test_cut_detector_finds_a_cut_early_in_the_film():
    early = [as_u8(gradient_scene(i)) for i in range(5)] + [as_u8(dark_scene(i)) for i in range(20)]
    assert detect(early)[0] == [5]


def test_frame_score():
    a = _Features(analysis_image(as_u8(gradient_scene(0))))
    a2 = _Features(analysis_image(as_u8(gradient_scene(1))))
    b = _Features(analysis_image(as_u8(dark_scene(0))))
    assert frame_score(a, a) == 0.0
    assert frame_score(a, b) == pytest.approx(frame_score(b, a))
    assert frame_score(a, a2) < 0.15
    assert frame_score(a, b) > 0.5
    assert 0.0 <= frame_score(a, b) <= 1.0
    flat = _Features(np.full((48, 96), 128, np.uint8))
    assert frame_score(flat, flat) == 0.0  # no edges at all: no division by zero


def test_analysis_image():
    grey16 = (np.arange(640 * 360, dtype=np.uint32).reshape(360, 640) % 65536).astype(np.uint16)
    small = analysis_image(grey16)
    assert small.dtype == np.uint8 and small.shape == (90, 160)
    assert analysis_image(np.zeros((48, 96), np.uint8)).shape == (48, 96)  # never upscaled


# -- scan_shots and the command -------------------------------------------------------------


def test_scan_shots(four_shot_film):
    keyframes = []
    shots = scan_shots(four_shot_film, on_keyframe=lambda shot, grey: keyframes.append((shot.index, grey)))
    starts = [s.start_frame for s in shots]
    assert starts == [0, *sorted(CUTS)]
    assert [s.frames for s in shots] == LENGTHS
    assert [s.index for s in shots] == list(range(len(LENGTHS)))
    for s in shots:
        assert s.start_time == pytest.approx(s.start_frame / 24, abs=1e-6)
        assert s.end_time == pytest.approx(s.end_frame / 24, abs=1e-6)
    decoded = read_clip(four_shot_film).grey
    assert [k for k, _ in keyframes] == list(range(len(LENGTHS)))
    for (index, grey), start in zip(keyframes, starts):
        assert grey.shape == (H, W)
        assert np.abs(grey.astype(int) - decoded[start]).mean() < 1.0  # the shot's first frame


def parse_table(stdout: str) -> list[tuple[int, int, int]]:
    rows = []
    for line in stdout.splitlines():
        m = re.match(r"\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d\d:\d\d:[\d.]+)\s+(\d\d:\d\d:[\d.]+)\s*$", line)
        if m:
            rows.append((int(m.group(1)), int(m.group(2)), int(m.group(3))))
    return rows


def test_shots_command_lists_the_cuts_and_exports_keyframes(tmp_path, four_shot_film):
    keyframes = tmp_path / "kf"
    run = run_cli("shots", four_shot_film, "--export-keyframes", keyframes)
    assert run.code == 0, run.stderr
    rows = parse_table(run.stdout)
    found = {start for _, start, _ in rows} - {0}
    precision, recall = precision_recall(found, CUTS)
    assert precision == 1.0 and recall == 1.0, rows
    # each row: index, first frame, last frame (inclusive), contiguous to the end of the film
    assert [r[0] for r in rows] == list(range(len(LENGTHS)))
    assert rows[0][1] == 0 and rows[-1][2] == sum(LENGTHS) - 1
    assert all(rows[k][2] + 1 == rows[k + 1][1] for k in range(len(rows) - 1))
    exported = sorted(p.name for p in keyframes.iterdir())
    assert exported == ["keyframes.csv", *(f"shot_{k:04d}.png" for k in range(len(LENGTHS)))]
    mapping = [line.split(",") for line in (keyframes / "keyframes.csv").read_text().splitlines()]
    assert mapping[0] == ["shot_index", "reference_path", "start_time"]
    assert [(int(k), name, float(t)) for k, name, t in mapping[1:]] == [
        (k, f"shot_{k:04d}.png", pytest.approx(start / 24, abs=1e-3)) for k, (_, start, _) in enumerate(rows)]
    decoded = read_clip(four_shot_film).grey
    for k, (_, start, _) in enumerate(rows):
        image = cv2.imread(str(keyframes / f"shot_{k:04d}.png"), cv2.IMREAD_GRAYSCALE)
        assert image.shape == (H, W)
        assert np.abs(image.astype(int) - decoded[start]).mean() < 1.0
    assert f"wrote {len(LENGTHS)} keyframes" in run.stderr


def test_shots_command_one_continuous_shot(tmp_path):
    film = write_frames_clip(tmp_path / "fade.mp4", fading_frames())
    run = run_cli("shots", film)
    assert run.code == 0, run.stderr
    assert parse_table(run.stdout) == [(0, 0, 59)]


def test_shots_command_with_a_range(tmp_path, four_shot_film):
    # halfway between frames, so that the range is frames 25..49 whatever the rounding
    run = run_cli("shots", four_shot_film, "--start", f"{24.5 / 24:.5f}", "--end", f"{49.5 / 24:.5f}")
    assert run.code == 0, run.stderr
    rows = parse_table(run.stdout)
    # frames 25..49 renumbered from 0: the cut at 34 is the 10th frame of the range
    assert [r[1] for r in rows] == [0, 34 - 25]
    assert rows[-1][2] == 49 - 25


def test_shots_command_bad_threshold(four_shot_film):
    assert_clean_error(run_cli("shots", four_shot_film, "--threshold", "0"), "--shot-threshold")


def test_keyframes_coloured_automatically_round_trip_through_reference(tmp_path, four_shot_film):
    """``--export-keyframes DIR --auto``: each shot's first frame coloured by an automatic
    network, and keyframes.csv; ``--reference DIR`` then gives every shot its own keyframe,
    with whatever colour a colourist gave it."""
    import json

    from conftest import mean_chroma

    keyframes = tmp_path / "kf"
    run = run_cli("shots", four_shot_film, "--export-keyframes", keyframes, "--auto", "--model", "eccv16", "-q")
    assert run.code == 0, run.stderr
    decoded = read_clip(four_shot_film).grey
    rows = parse_table(run.stdout)
    for k, (_, start, _) in enumerate(rows):
        rgb = cv2.cvtColor(cv2.imread(str(keyframes / f"shot_{k:04d}.png")), cv2.COLOR_BGR2RGB)
        assert mean_chroma(rgb) > 1.0  # coloured, on the frame's own lightness
        assert np.abs(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(int) - decoded[start]).mean() < 6.0
    # a colourist repaints shot 2's keyframe in green
    green = np.zeros((H, W, 3), np.uint8)
    green[..., 1] = 160
    cv2.imwrite(str(keyframes / "shot_0002.png"), cv2.cvtColor(green, cv2.COLOR_RGB2BGR))
    out = tmp_path / "four_color.mp4"
    run = run_cli(four_shot_film, "--reference", keyframes, "--model", "transfer", "-o", out, "--report", "-q")
    assert run.code == 0, run.stderr
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert [s["reference"] for s in report["shots"]] == [f"shot_{k:04d}.png" for k in range(len(rows))]
    coloured = read_clip(out).rgb
    shot2 = coloured[rows[2][1] + 1].astype(int)
    assert (shot2[..., 1] - shot2[..., 0]).mean() > 5  # the repainted green came through
    assert_clean_error(run_cli("shots", four_shot_film, "--auto"), "--export-keyframes")
    assert_clean_error(run_cli("shots", four_shot_film, "--export-keyframes", tmp_path / "k2", "--model", "transfer"),
                       "not an automatic network")
