"""Several references: each shot gets the reference of its scene, and a CSV or JSON mapping
forces the choice. The film is made of two very different generated scenes: a bright,
smooth blue sky and a dark, fine red/yellow checkerboard."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import assert_clean_error, colorize_cli, lab_of, partial_files, read_clip, run_cli, write_frames_clip, write_png
from vidcolor.ops.color import rgb_to_grey_levels
from vidcolor.film.references import best_reference, gather_references, reference_signatures

W, H, SHOT = 80, 48, 16


def sky(i: int) -> np.ndarray:
    """Bright smooth sky: a vertical blue gradient with a soft white cloud drifting."""
    y = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    img = (1 - y) * np.array([70, 130, 235], np.float32) + y * np.array([175, 210, 250], np.float32)
    img = np.broadcast_to(img, (H, W, 3)).copy()
    cloud = np.zeros((H, W), np.float32)
    cv2.circle(cloud, (10 + 2 * i, H // 3), 10, 1.0, -1)
    cloud = cv2.GaussianBlur(cloud, (0, 0), 5)[..., None]
    img = img * (1 - 0.6 * cloud) + 245 * 0.6 * cloud
    return np.clip(img, 0, 255).astype(np.uint8)


def checks(i: int) -> np.ndarray:
    """Dark, high-frequency red and yellow checkerboard, shifting one pixel a frame."""
    y, x = np.mgrid[0:H, 0:W]
    cells = (((x + i) // 4) + (y // 4)) % 2 == 0
    img = np.where(cells[..., None], np.array([150, 25, 20], np.uint8), np.array([120, 100, 10], np.uint8))
    noise = np.random.default_rng(i).normal(0, 4, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


@pytest.fixture
def two_scene_film(tmp_path) -> tuple[Path, Path, Path]:
    """The grey film (sky shot, then checkerboard shot) and the two colour references."""
    frames = [rgb_to_grey_levels(sky(i)) for i in range(SHOT)] + [rgb_to_grey_levels(checks(i)) for i in range(SHOT)]
    film = write_frames_clip(tmp_path / "film.mp4", frames)
    refs = tmp_path / "refs"
    sky_ref = write_png(refs / "sky.png", sky(7))  # a colour version of a frame of each scene
    checks_ref = write_png(refs / "checks.png", checks(5))
    return film, sky_ref, checks_ref


def shot_choices(stderr: str) -> dict[int, tuple[str, str]]:
    """``{shot: (reference name, how)}`` from the log lines."""
    found = {}
    for line in stderr.splitlines():
        m = re.search(r"shot (\d+) \(from [\d.]+ s\): reference (\S+) \((.*)\)", line)
        if m:
            found[int(m.group(1))] = (m.group(2), m.group(3))
    return found


def mean_b(rgb_frames: list[np.ndarray]) -> float:
    """Mean Lab b (negative: blue, positive: yellow)."""
    return float(np.mean([float(lab_of(f)[2].mean()) for f in rgb_frames]))


def assert_colours(out: Path, first: str, second: str) -> None:
    """Shot 0 looks like ``first`` ('blue' or 'warm'), shot 1 like ``second``."""
    clip = read_clip(out)
    assert clip.frames == 2 * SHOT
    for frames, kind in ((clip.rgb[:SHOT], first), (clip.rgb[SHOT:], second)):
        b = mean_b(frames[2:])  # skip the frames at the cut (the encoder may blend them)
        assert (b < -10) if kind == "blue" else (b > 10), f"{kind}: mean b {b:.1f}"


def test_each_shot_gets_the_reference_of_its_scene(tmp_path, two_scene_film):
    film, sky_ref, checks_ref = two_scene_film
    out = tmp_path / "out.mp4"
    # give them in the "wrong" order, so that the choice cannot be the order of the options
    run = run_cli(film, "-r", checks_ref, "-r", sky_ref, "-o", out, "--work-res", "48")
    assert run.code == 0, run.stderr
    choices = shot_choices(run.stderr)
    assert set(choices) == {0, 1}, run.stderr
    assert choices[0][0] == "sky.png" and choices[0][1].startswith("best match")
    assert choices[1][0] == "checks.png" and choices[1][1].startswith("best match")
    assert_colours(out, "blue", "warm")


def test_a_folder_of_references(tmp_path, two_scene_film):
    film, sky_ref, _ = two_scene_film
    out = tmp_path / "out.mp4"
    run = colorize_cli(film, out, sky_ref.parent)
    assert run.code == 0, run.stderr
    choices = shot_choices(run.stderr)
    assert {k: v[0] for k, v in choices.items()} == {0: "sky.png", 1: "checks.png"}


def test_best_reference_directly(two_scene_film):
    _, sky_ref, checks_ref = two_scene_film
    refs = gather_references([checks_ref, sky_ref])
    signatures = reference_signatures(refs)
    for i in (0, 11, 23):
        index, score = best_reference(rgb_to_grey_levels(sky(i)), signatures)
        assert refs.references[index].name == "sky.png"
        assert -1.0 <= score <= 1.0
        index, _ = best_reference(rgb_to_grey_levels(checks(i)), signatures)
        assert refs.references[index].name == "checks.png"


@pytest.mark.parametrize("kind", ["csv", "json", "json-list"])
def test_a_mapping_forces_the_choice(tmp_path, two_scene_film, kind):
    film, sky_ref, checks_ref = two_scene_film
    # the mapping swaps them: shot 0 (the sky) gets the checkerboard and the other way round
    if kind == "csv":
        mapping = sky_ref.parent / "map.csv"
        mapping.write_text("shot_index,reference_path\n0,checks.png\n1,sky.png\n")
    elif kind == "json":
        mapping = sky_ref.parent / "map.json"
        mapping.write_text(json.dumps({"0": "checks.png", "1": "sky.png"}))
    else:
        mapping = sky_ref.parent / "map.json"
        mapping.write_text(json.dumps([{"shot": 0, "reference": "checks.png"}, {"shot": 1, "reference": "sky.png"}]))
    out = tmp_path / "out.mp4"
    # transfer: it copies a reference's colours whether or not they fit the scene, which shows
    # the choice (the exemplar network would distrust the swapped references)
    run = colorize_cli(film, out, mapping, "--model", "transfer")
    assert run.code == 0, run.stderr
    choices = shot_choices(run.stderr)
    assert choices == {0: ("checks.png", "mapped"), 1: ("sky.png", "mapped")}
    assert_colours(out, "warm", "blue")


def test_a_partial_mapping_lets_the_other_shots_choose(tmp_path, two_scene_film):
    film, sky_ref, checks_ref = two_scene_film
    mapping = tmp_path / "map.csv"  # paths are relative to the mapping file
    mapping.write_text("# only the second shot is fixed\n1,refs/sky.png\n")
    out = tmp_path / "out.mp4"
    run = colorize_cli(film, out, mapping, "-r", checks_ref)
    assert run.code == 0, run.stderr
    choices = shot_choices(run.stderr)
    assert choices[1] == ("sky.png", "mapped")
    assert choices[0][0] == "sky.png" and choices[0][1].startswith("best match")


@pytest.mark.parametrize(
    "name,text,words",
    [
        ("bad.csv", "shot_index,reference_path\nzero,sky.png\n", "shot_index,reference_path"),
        ("bad.csv", "0\n", "shot_index,reference_path"),
        ("bad.json", "{not json", "shot_index"),
        ("bad.json", json.dumps([{"shot": 0}]), "shot_index"),
        ("bad.json", json.dumps({"x": "sky.png"}), "shot_index"),
        ("empty.csv", "shot_index,reference_path\n", "empty"),
        ("empty.json", "{}", "empty"),
        ("missing.csv", "0,nowhere.png\n", "no such file"),
        ("negative.csv", "-1,sky.png\n1,checks.png\n", "shot -1 does not exist"),
        ("negative.json", json.dumps({"-2": "sky.png"}), "shot -2 does not exist"),
    ],
)
def test_malformed_mapping_is_an_error(tmp_path, two_scene_film, name, text, words):
    film, sky_ref, _ = two_scene_film
    mapping = sky_ref.parent / name
    mapping.write_text(text)
    out = tmp_path / "out.mp4"
    run = colorize_cli(film, out, mapping)
    line = assert_clean_error(run, words)
    assert run.code == 2, line
    assert not out.exists() and partial_files(tmp_path) == []


def test_a_mapping_naming_shots_the_film_lacks_says_so(tmp_path, two_scene_film):
    film, sky_ref, checks_ref = two_scene_film
    mapping = sky_ref.parent / "map.csv"
    mapping.write_text("0,sky.png\n1,checks.png\n5,sky.png\n")
    out = tmp_path / "out.mp4"
    run = colorize_cli(film, out, mapping)
    assert run.code == 0, run.output
    warnings = run.warning_lines()
    assert len(warnings) == 1 and "names shot 5" in warnings[0] and "2 shot(s), 0 to 1" in warnings[0], run.stderr
    assert_colours(out, "blue", "warm")


def test_mapping_that_cannot_be_read(tmp_path, two_scene_film):
    film, _, _ = two_scene_film
    out = tmp_path / "out.mp4"
    run = colorize_cli(film, out, tmp_path / "absent.csv")
    assert_clean_error(run, "absent.csv", "cannot read the reference mapping")
    assert not out.exists()


def test_progress_names_the_shot_and_its_reference():
    from vidcolor.film.loop import shot_progress

    assert shot_progress(0) == "shot 0"
    assert shot_progress(3, "sky.png") == "shot 3 (sky.png)"
