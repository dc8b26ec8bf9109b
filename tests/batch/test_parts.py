"""A long film in parts: each range of segments coloured on its own (in any order, by any
worker), then joined into the film one run would have made."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import vidcolor
from conftest import colour_reference, read_clip, write_clip, write_png
from vidcolor.batch import Job
from vidcolor.batch.cluster import parts_of
from vidcolor.errors import InputError, OutputError
from vidcolor.io.segments import work_folder

SETTINGS = dict(auto=True, model="eccv16", auto_mode="per-frame", work_res=48)


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Path:
    """25 s at 24 fps with sound and cuts: segments 0, 1 and 2 (frames 480-599)."""
    return write_clip(tmp_path_factory.mktemp("parts") / "film.mp4", frames=600, audio="aac")


def test_parts_in_any_order_join_to_the_film_of_one_run(tmp_path, film):
    out = tmp_path / "parts.mp4"
    # the planner thought the film longer: the last part begins after its end and is empty
    for part in [(2, 3), (0, 1), (3, None)]:
        vidcolor.colorize(film, out, part=part, **SETTINGS)
    assert not out.exists()
    with pytest.raises(InputError, match="gap"):
        vidcolor.join_parts(film, out)
    vidcolor.colorize(film, out, part=(1, 2), **SETTINGS)
    assert sorted(p.name for p in work_folder(out).iterdir()) == [
        "000000.mp4", "000001.mp4", "000002.mp4", "part-000000.json", "part-000001.json", "part-000002.json",
        "part-000003.json"]
    vidcolor.join_parts(film, out, report=True)
    assert not work_folder(out).exists()
    whole = tmp_path / "whole.mp4"
    vidcolor.colorize(film, whole, report=True, **SETTINGS)
    joined, one_run, source = read_clip(out), read_clip(whole), read_clip(film, pixels=False)
    assert joined.frames == 600 and joined.times == source.times and joined.audio == source.audio
    # the same colours, on libx264's scale of run-to-run differences
    assert np.abs(np.stack(joined.rgb).astype(int) - np.stack(one_run.rgb).astype(int)).mean() < 4.0
    shots = [json.loads(p.with_suffix(".report.json").read_text())["shots"] for p in (out, whole)]
    assert [(s["shot"], s["start_frame"], s["frames"]) for s in shots[0]] == \
        [(s["shot"], s["start_frame"], s["frames"]) for s in shots[1]]
    assert len(shots[0]) > 3  # the cuts of one run, shots over part boundaries counted once
    assert [s["colourfulness"] for s in shots[0]] == pytest.approx([s["colourfulness"] for s in shots[1]], abs=0.5)


def test_a_part_resumes_on_its_own_and_leaves_the_others_alone(tmp_path, film):
    out = tmp_path / "out.mp4"
    vidcolor.colorize(film, out, part=(0, 1), **SETTINGS)
    kept = (work_folder(out) / "000000.mp4").read_bytes()
    with pytest.raises(InputError, match="no part reaches"):
        vidcolor.join_parts(film, out)
    with pytest.raises(InputError, match="other settings"):  # a part with other settings is refused
        vidcolor.colorize(film, out, part=(0, 1), resume=True, **{**SETTINGS, "work_res": 64})
    vidcolor.colorize(film, out, part=(1, None), **{**SETTINGS, "work_res": 64})
    with pytest.raises(InputError, match="other settings"):
        vidcolor.join_parts(film, out)
    vidcolor.colorize(film, out, part=(1, None), **SETTINGS)  # started afresh: part 0 untouched
    assert (work_folder(out) / "000000.mp4").read_bytes() == kept
    vidcolor.colorize(film, out, part=(0, 1), resume=True, **SETTINGS)  # already done: nothing to do
    vidcolor.join_parts(film, out)
    assert read_clip(out, pixels=False).frames == 600
    with pytest.raises(OutputError, match="exists"):
        vidcolor.join_parts(film, out)


def test_part_arguments_are_checked(tmp_path, film):
    photo = write_png(tmp_path / "p.png", colour_reference())
    for source, part in [(film, (1, 1)), (film, (-1, None)), (photo, (0, None))]:
        with pytest.raises(InputError, match="part"):
            vidcolor.colorize(source, tmp_path / f"x{source.suffix}", part=part, **SETTINGS)


def test_long_films_are_planned_in_parts(tmp_path, film):
    job = Job(film, tmp_path / "out.mp4")
    assert parts_of(job, {}, 10.0) == [(0, 1), (1, 2), (2, None)]
    assert parts_of(job, {}, 20.0) == [(0, 2), (2, None)]  # 3 segments: two parts, the tail open
    assert parts_of(job, {}, 40.0) is None  # one part: the whole film
    assert parts_of(job, {"end": 10.0}, 10.0) is None  # its own range is one segment
    assert parts_of(Job(tmp_path / "p.png", tmp_path / "o.png"), {}, 10.0) is None
    (tmp_path / "out.mp4").write_bytes(b"done")
    assert parts_of(job, {}, 10.0) is None  # already coloured
