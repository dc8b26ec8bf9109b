"""One film loop: ``vidcolor eval`` measures the frames ``vidcolor FILM`` writes (same grey
frames and options: the same colours, bit for bit), the temporal state restarts at every cut
and segment start, and a film with several references is decoded once."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import run_cli, write_frames_clip, write_png
from vidcolor.eval.evaluate import evaluate
from vidcolor.film.engine import Engine
from vidcolor.film.loop import FilmLoop, FixedReference
from vidcolor.film.pipeline import VideoOptions, colorize_video
from vidcolor.film.references import gather_references
from vidcolor.film.temporal import engine_flags
from vidcolor.io import segments
from vidcolor.io.media import video_frames
from vidcolor.io.video_reader import VideoReader
from vidcolor.ops.color import rgb_to_grey_levels

W, H, SHOT = 80, 48, 20
SEGMENT_SECONDS = 0.5  # 12 frames at 24 fps: segments start at 0, 12, 24, 36; the cut is at 20


def sky(i: int) -> np.ndarray:
    y = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    img = (1 - y) * np.array([70, 130, 235], np.float32) + y * np.array([175, 210, 250], np.float32)
    img = np.broadcast_to(img, (H, W, 3)).copy()
    cv2.circle(img, (10 + 2 * i, H // 3), 8, (245, 245, 245), -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def checks(i: int) -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W]
    cells = (((x + i) // 4) + (y // 4)) % 2 == 0
    img = np.where(cells[..., None], np.array([150, 25, 20], np.uint8), np.array([120, 100, 10], np.uint8))
    return np.ascontiguousarray(img)


@pytest.fixture
def colour_film(tmp_path) -> Path:
    """A colour original of two shots (sky, then checkerboard), 40 frames at 24 fps."""
    (tmp_path / "data").mkdir()
    return write_frames_clip(tmp_path / "data" / "a_film.mp4", [sky(i) for i in range(SHOT)] + [checks(i) for i in range(SHOT)])


@pytest.fixture
def recorded(monkeypatch) -> list[list[np.ndarray]]:
    """Every run's coloured film frames (the engine's RGB output, before encoding), in order;
    the film's own run reads the same grey levels as the evaluation (CIE L of the decoded RGB)."""
    runs: list[list[np.ndarray]] = []
    colorize = Engine.colorize

    def recording(self, greys, prepared, sequence=False, with_raw=False, **kwargs):
        result = colorize(self, greys, prepared, sequence=sequence, with_raw=with_raw, **kwargs)
        if sequence:  # film frames (not the photos of an evaluation)
            runs[-1].extend(np.array(result[0] if with_raw else result))
        return result

    monkeypatch.setattr(Engine, "colorize", recording)
    monkeypatch.setattr(VideoReader, "_convert", lambda self, frame: rgb_to_grey_levels(frame.to_ndarray(format="rgb24")))
    monkeypatch.setattr(segments, "SEGMENT_SECONDS", SEGMENT_SECONDS)
    return runs


def film_run(recorded, film: Path, out: Path, references: list[Path], temporal: str) -> list[np.ndarray]:
    recorded.append([])
    engine = Engine("transfer", device="cpu", work_res=48, **engine_flags(temporal))
    colorize_video(film, out, engine, gather_references(references), VideoOptions(batch_size=3))
    return recorded[-1]


def eval_run(recorded, data: Path, mode: str, temporal: str) -> tuple[list[np.ndarray], dict]:
    recorded.append([])
    report = evaluate(data, "transfer", mode, device="cpu", work_res=48, batch_size=3, temporal=temporal)
    return recorded[-1], report


@pytest.mark.parametrize("temporal", ["smooth", "none", "recurrent"])
def test_eval_measures_the_frames_the_film_run_writes_with_a_fixed_reference(tmp_path, colour_film, recorded, temporal):
    # exemplar mode: the film's reference is the next item, the photo b_ref.png
    ref = write_png(colour_film.parent / "b_ref.png", sky(30))
    measured, report = eval_run(recorded, colour_film.parent, "exemplar", temporal)
    written = film_run(recorded, colour_film, tmp_path / "out.mp4", [ref], temporal)
    assert len(measured) == len(written) == 2 * SHOT
    assert report["items"][0]["shots"] == 2
    for k, (a, b) in enumerate(zip(measured, written)):
        assert np.array_equal(a, b), f"frame {k}"


def test_eval_keyframes_are_the_film_run_with_a_mapping(tmp_path, colour_film, recorded):
    # keyframe mode: each shot's reference is its first frame's original colour; the film's
    # run gets the same images by a shot -> reference mapping
    originals = list(video_frames(colour_film))
    refs = tmp_path / "refs"
    write_png(refs / "first.png", originals[0])
    write_png(refs / "second.png", originals[SHOT])
    (refs / "map.csv").write_text("0,first.png\n1,second.png\n")
    measured, report = eval_run(recorded, colour_film.parent, "keyframe", "smooth")
    written = film_run(recorded, colour_film, tmp_path / "out.mp4", [refs / "map.csv"], "smooth")
    assert report["items"][0]["shots"] == 2
    assert len(measured) == len(written) == 2 * SHOT
    assert all(np.array_equal(a, b) for a, b in zip(measured, written))


class Counting(FixedReference):
    def __init__(self, engine):
        super().__init__(engine, sky(5))
        self.chosen: list[tuple[int, int]] = []

    def choose(self, shot, frame):
        self.chosen.append((shot.index, shot.start_frame))
        return super().choose(shot, frame)


def test_the_temporal_state_restarts_at_cuts_and_segments_and_batches_break_there(colour_film, monkeypatch):
    engine = Engine("transfer", device="cpu", work_res=48)
    resets: list[int] = []
    seen: list[int] = []
    monkeypatch.setattr(engine, "new_shot", lambda: resets.append(len(seen)))
    references = Counting(engine)
    with VideoReader(colour_film, copy=False) as reader:
        loop = FilmLoop(engine, references, batch_size=5, starts_segment=lambda i: i % 12 == 0, skip=3)
        batches = []
        for batch in loop.run(reader.frames()):
            batches.append([f.index for f in batch.frames])
            seen.extend(batches[-1])
    assert references.chosen == [(0, 0), (1, SHOT)] and loop.shots == 2
    assert seen == list(range(3, 2 * SHOT))  # the frames before ``skip`` are not coloured
    assert resets == [0, 12 - 3, SHOT - 3, 24 - 3, 36 - 3]  # the first coloured frame, segments, the cut
    assert batches == [[3, 4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15, 16], [17, 18, 19], [20, 21, 22, 23],
                       [24, 25, 26, 27, 28], [29, 30, 31, 32, 33], [34, 35], [36, 37, 38, 39]]


def test_a_film_with_several_references_is_decoded_once(tmp_path, colour_film, monkeypatch):
    decoded: list[int] = []
    convert = VideoReader._convert

    def counting(self, frame):
        decoded.append(1)
        return convert(self, frame)

    monkeypatch.setattr(VideoReader, "_convert", counting)
    refs = tmp_path / "refs"
    write_png(refs / "sky.png", sky(5))
    write_png(refs / "checks.png", checks(5))
    out = tmp_path / "out.mp4"
    run = run_cli(colour_film, "-r", refs / "checks.png", "-r", refs / "sky.png", "-o", out, "--work-res", "48")
    assert run.code == 0, run.stderr
    assert len(decoded) == 2 * SHOT  # each frame decoded once: no shot scan beforehand
    choices = dict(re.findall(r"shot (\d+) \(from [\d.]+ s\): reference (\S+) \(best match", run.stderr))
    assert choices == {"0": "sky.png", "1": "checks.png"}, run.stderr
