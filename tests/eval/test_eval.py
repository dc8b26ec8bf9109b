"""`vidcolor eval` end to end on a tiny generated data set: one colour clip, two photos."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from vidcolor.cli import app, normalize_argv
from vidcolor.ops.color import rgb_to_grey_levels
from vidcolor.eval.evaluate import IMAGE_METRICS, VIDEO_METRICS
from vidcolor.film.shots import ShotFollower

WIDTH, HEIGHT, FRAMES = 96, 64, 12


def colour_frame(i: int, width: int = WIDTH, height: int = HEIGHT, phase: float = 0.0) -> np.ndarray:
    """A colourful frame with moving content: drifting colour waves and a red square
    moving right."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 128 + 100 * np.sin(x / 9.0 + i * 0.4 + phase)
    g = 128 + 100 * np.sin(y / 7.0 - i * 0.3 + phase)
    b = 128 + 100 * np.cos((x + y) / 11.0 + i * 0.2)
    img = np.stack([r, g, b], axis=-1)
    side = min(width, height) // 4
    sx = (3 * i) % (width - side)
    img[height // 4 : height // 4 + side, sx : sx + side] = (230, 40, 30)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_colour_clip(path: Path, frames: int = FRAMES) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(24))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv444p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(colour_frame(i), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_png(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def invoke(*args):
    result = CliRunner().invoke(app, normalize_argv([str(a) for a in args]))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("evaldata")
    write_colour_clip(folder / "clip.mp4")
    write_png(folder / "photos" / "a.png", colour_frame(3, 80, 60, phase=1.0))
    write_png(folder / "photos" / "b.png", np.ascontiguousarray(colour_frame(7, 72, 56, phase=2.0)[::-1]))
    (folder / "notes.txt").write_text("not media")
    return folder


@pytest.fixture(scope="module")
def keyframe_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("evalout")
    result = invoke(
        "eval", data, "--model", "transfer", "--work-res", 64,
        "--json", out / "report.json", "--sheet", out / "sheet.png",
    )
    assert result.exit_code == 0, result.output
    return result, json.loads((out / "report.json").read_text()), out


def finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def test_json_has_every_metric_for_the_model_and_the_baselines(keyframe_run):
    _, report, _ = keyframe_run
    assert report["model"] == "transfer" and report["reference_mode"] == "keyframe"
    items = {i["name"]: i for i in report["items"]}
    assert set(items) == {"clip.mp4", "photos/a.png", "photos/b.png"}
    clip = items["clip.mp4"]
    assert clip["kind"] == "video" and clip["frames"] == FRAMES and (clip["width"], clip["height"]) == (WIDTH, HEIGHT)
    assert set(clip["methods"]) == {"model", "per_frame", "reinhard", "grey"}
    for method, figures in clip["methods"].items():
        for metric in IMAGE_METRICS + VIDEO_METRICS:
            assert finite(figures[metric]), (method, metric, figures)
    # the temporal smoothing stage is on by default: per-frame is the output before it
    assert "identical_to_model" not in clip["methods"]["per_frame"]
    assert clip["methods"]["per_frame"]["psnr"] != clip["methods"]["model"]["psnr"]
    for metric in ("colourfulness",) + VIDEO_METRICS:
        assert finite(clip["original"][metric])
    for name in ("photos/a.png", "photos/b.png"):
        photo = items[name]
        assert photo["kind"] == "photo" and photo["frames"] == 1
        assert set(photo["methods"]) == {"model", "reinhard", "grey"}
        for figures in photo["methods"].values():
            for metric in IMAGE_METRICS:
                assert finite(figures[metric])
            assert "warp_error" not in figures
    for item in items.values():
        assert finite(item["model_fps"]) and item["model_fps"] > 0
    assert set(report["summary"]) == {"video", "photo"}
    assert report["summary"]["video"]["items"] == 1 and report["summary"]["photo"]["items"] == 2
    for kind, metrics in (("video", IMAGE_METRICS + VIDEO_METRICS), ("photo", IMAGE_METRICS)):
        for method, figures in report["summary"][kind]["methods"].items():
            for metric in metrics:
                assert finite(figures[metric]), (kind, method, metric)


def test_model_beats_the_grey_baseline_in_keyframe_mode(keyframe_run):
    _, report, _ = keyframe_run
    for item in report["items"]:
        model, grey = item["methods"]["model"], item["methods"]["grey"]
        assert model["psnr"] > grey["psnr"] + 1.0, item["name"]
        assert model["ab_error"] < grey["ab_error"], item["name"]
        assert model["auc"] > grey["auc"], item["name"]
        assert grey["colourfulness"] == pytest.approx(0.0, abs=0.5)
    for summary in report["summary"].values():
        assert summary["methods"]["model"]["psnr"] > summary["methods"]["grey"]["psnr"]


def test_table_and_sheet(keyframe_run):
    result, _, out = keyframe_run
    for word in ("clip.mp4", "photos/a.png", "photos/b.png", "transfer", "reinhard", "grey", "per-frame", "MEAN"):
        assert word in result.stdout
    sheet = cv2.imread(str(out / "sheet.png"))
    assert sheet is not None and sheet.shape[0] > 4 * 100  # four rows: grey, reference, output, original


def test_exemplar_mode_takes_the_reference_from_another_item(data, tmp_path):
    result = invoke(
        "eval", data, "--model", "transfer", "--reference-mode", "exemplar", "--work-res", 64,
        "--max-frames", 4, "--json", tmp_path / "r.json", "--quiet",
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    references = {i["name"]: i["reference"] for i in report["items"]}
    assert references == {
        "clip.mp4": "first frame of photos/a.png",
        "photos/a.png": "first frame of photos/b.png",
        "photos/b.png": "first frame of clip.mp4",
    }
    clip = next(i for i in report["items"] if i["kind"] == "video")
    assert clip["frames"] == 4
    for figures in clip["methods"].values():
        assert all(finite(figures[m]) for m in IMAGE_METRICS + VIDEO_METRICS)
    assert all(i["confidence"] is None for i in report["items"])  # transfer tells no confidence


def test_each_item_s_confidence_is_reported_for_the_exemplar_network(data, tmp_path):
    result = invoke(
        "eval", data, "--model", "exemplar", "--reference-mode", "keyframe", "--work-res", 64,
        "--max-frames", 4, "--json", tmp_path / "r.json", "--quiet",
    )
    assert result.exit_code == 0, result.output
    items = json.loads((tmp_path / "r.json").read_text())["items"]
    assert len(items) == 3 and all(0.0 <= i["confidence"] <= 1.0 for i in items)
    assert all(i["confidence"] > 0.5 for i in items)  # keyframe mode: each its own reference


@pytest.mark.parametrize(
    "args, words",
    [
        (["--model", "nosuch"], ["unknown model"]),
        (["--model", "transfer", "--reference-mode", "none"], ["reference"]),
        (["--model", "transfer", "--reference-mode", "sideways"], ["reference-mode"]),
        (["--model", "transfer", "--max-frames", "0"], ["max-frames"]),
        (["--model", "transfer", "--sheet", "sheet.jpg"], ["png"]),
    ],
)
def test_bad_options_give_one_clean_error(data, args, words):
    result = invoke("eval", data, *args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("vidcolor: error:")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0]


def test_missing_or_empty_data_is_an_input_error(tmp_path):
    for target in (tmp_path / "nowhere", tmp_path):
        (tmp_path / "readme.txt").write_text("x")
        result = invoke("eval", target, "--model", "transfer")
        assert result.exit_code == 2, result.output
        assert "vidcolor: error:" in result.stderr


def test_shot_follower_releases_every_frame_in_order_and_marks_the_cut():
    # a cut to a darker, turned-over scene
    frames = [colour_frame(i) for i in range(10)] + [(colour_frame(i, phase=3.0)[::-1, ::-1] // 3).copy() for i in range(10)]
    follower = ShotFollower()
    released = []
    for i, rgb in enumerate(frames):
        released += follower.push(i, rgb, rgb_to_grey_levels(rgb))
        assert len(follower.pending) <= follower.detector.window + 1  # bounded look-ahead
    released += follower.flush()
    assert [r[0] for r in released] == list(range(20))
    assert [r[0] for r in released if r[3]] == [0, 10]


def test_without_temporal_smoothing_per_frame_is_the_model(data, tmp_path):
    result = invoke("eval", data / "clip.mp4", "--model", "transfer", "--work-res", 64, "--temporal", "none",
                    "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    clip = json.loads((tmp_path / "r.json").read_text())["items"][0]
    assert clip["methods"]["per_frame"]["identical_to_model"] is True
    assert clip["methods"]["per_frame"]["psnr"] == clip["methods"]["model"]["psnr"]


def test_an_interrupt_reported_as_a_broken_item_stops_the_evaluation(data, tmp_path, monkeypatch):
    """An unreadable item is skipped, but an interrupt that a library reported as one ends the run."""
    import signal

    from vidcolor import stopping
    from vidcolor.errors import InputError
    from vidcolor.eval.evaluate import Evaluation

    tried = []

    def interrupted_read(self, item, *args):
        tried.append(item.name)
        monkeypatch.setattr(stopping, "_raised", [signal.SIGINT])  # the signal came while the library read it
        raise InputError(f"{item.name}: not readable")

    monkeypatch.setattr(Evaluation, "photo", interrupted_read)
    monkeypatch.setattr(Evaluation, "video", interrupted_read)
    result = invoke("eval", data, "--model", "transfer", "--work-res", 64, "--json", tmp_path / "report.json")
    assert result.exit_code == 130, result.output
    assert len(tried) == 1 and not (tmp_path / "report.json").exists()
