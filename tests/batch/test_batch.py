"""``vidcolor batch``: a folder or a manifest of films and pictures, each coloured with the
command's safety, a failure recorded without stopping the rest, a re-run finishing what is
not done, and OUTDIR/report.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import (assert_clean_error, colour_reference, partial_files, read_clip, read_rgb_image, run_cli, write_clip,
                      write_png)
from vidcolor.batch import plan
from vidcolor.batch.run import REPORT
from vidcolor.errors import InputError
from vidcolor.io.segments import work_folder

ARGS = ("--auto", "--model", "eccv16", "--work-res", "48")


def assert_film(output: Path, source: Path) -> None:
    """Every frame at its time, the audio bit-exact, and colour."""
    out, original = read_clip(output), read_clip(source, pixels=False)
    assert out.frames == original.frames and out.times == original.times
    assert out.audio and out.audio == original.audio
    assert max(float(abs(f[..., 0].astype(int) - f[..., 2].astype(int)).mean()) for f in out.rgb) > 1.0


def report_of(outdir: Path) -> dict:
    return json.loads((outdir / REPORT).read_text())


@pytest.fixture
def archive(tmp_path) -> Path:
    """Two films with sound (one in a sub-folder), a picture, a broken file, a hidden file."""
    folder = tmp_path / "archive"
    (folder / "reel2").mkdir(parents=True)
    write_clip(folder / "a.mp4", frames=36, audio="aac")
    write_clip(folder / "reel2" / "b.mkv", frames=30, audio="aac")
    write_png(folder / "still.png", colour_reference())
    (folder / "broken.mp4").write_bytes(b"not a film at all")
    (folder / ".hidden.mp4").write_bytes(b"left out")
    (folder / "notes.txt").write_text("left out")
    return folder


def test_folder_batch_records_a_failure_and_a_rerun_finishes_only_what_is_not_done(tmp_path, archive):
    out = tmp_path / "out"
    run = run_cli("batch", archive, "-o", out, *ARGS, "-q")
    assert_clean_error(run, "1 of 4 jobs failed (broken.mp4)", "report.json")  # the rest were coloured
    assert_film(out / "a.mp4", archive / "a.mp4")
    assert_film(out / "reel2" / "b.mkv", archive / "reel2" / "b.mkv")
    assert read_rgb_image(out / "still.png").shape == (64, 96, 3)
    assert not (out / ".hidden.mp4").exists() and not (out / "broken.mp4").exists()
    assert partial_files(out) == [] and not list(out.rglob(".*.resume"))
    report = report_of(out)
    assert report["summary"] | {"fps": None} == {"jobs": 4, "coloured": 3, "done_before": 0, "failed": 1,
                                                "frames": 36 + 30 + 1, "fps": None, "failed_names": ["broken.mp4"]}
    entries = {Path(e["source"]).name: e for e in report["jobs"]}
    assert entries["broken.mp4"]["status"] == "failed" and "not a readable video" in entries["broken.mp4"]["error"]
    assert entries["a.mp4"]["frames"] == 36 and entries["a.mp4"]["shots"][0]["frames"] == 36
    assert entries["a.mp4"]["shots"][0]["colourfulness"] > 0
    stamps = {p: p.stat().st_mtime_ns for p in (out / "a.mp4", out / "still.png")}
    (out / "reel2" / "b.mkv").unlink()  # lost: done again
    run = run_cli("batch", archive, "-o", out, *ARGS, "-q")
    assert run.code == 1
    report = report_of(out)
    assert [e["status"] for e in report["jobs"]] == ["done_before", "failed", "coloured", "done_before"]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert_film(out / "reel2" / "b.mkv", archive / "reel2" / "b.mkv")


def test_a_batch_resumes_an_unfinished_film(tmp_path):
    """A film left half done (its finished segments in the resume folder) is continued."""
    films = tmp_path / "films"
    films.mkdir()
    film = write_clip(films / "long.mp4", frames=300, audio="aac")  # two segments
    out = tmp_path / "out"
    from vidcolor import colorize

    with pytest.raises(KeyboardInterrupt):
        stop_after_first_segment(lambda: colorize(film, out / "long.mp4", auto=True, model="eccv16", work_res=48))
    assert work_folder(out / "long.mp4").is_dir()
    run = run_cli("batch", films, "-o", out, *ARGS, "-q")
    assert run.code == 0, run.output
    assert_film(out / "long.mp4", film)
    assert not work_folder(out / "long.mp4").exists()
    shots = json.loads((out / "long.report.json").read_text())
    assert shots["resumed_from"] == 240


def stop_after_first_segment(work) -> None:
    """Run ``work`` with the film's first segment finished, then a KeyboardInterrupt at the
    next segment's first frame (as Ctrl-C would)."""
    from vidcolor.io import segments

    original = segments.SegmentedOutput._finish_segment

    def finish_then_stop(self):
        original(self)
        raise KeyboardInterrupt

    segments.SegmentedOutput._finish_segment = finish_then_stop
    try:
        work()
    finally:
        segments.SegmentedOutput._finish_segment = original


def test_manifest_rows_carry_their_own_options(tmp_path):
    films = tmp_path / "films"
    films.mkdir()
    write_clip(films / "one.mp4", frames=24, audio="aac")
    write_clip(films / "two.mp4", frames=48, audio="aac")
    write_png(films / "ref.png", colour_reference())
    manifest = films / "list.csv"
    manifest.write_text("source,output,reference,model,auto,auto_mode,end,work_res\n"
                        "one.mp4,coloured/first.mp4,ref.png,transfer,,,,\n"
                        "two.mp4,,,eccv16,yes,per-frame,1.0,40\n")
    out = tmp_path / "out"
    run = run_cli("batch", manifest, "-o", out, "--work-res", "48", "-q")
    assert run.code == 0, run.output
    report = report_of(out)
    assert [e["status"] for e in report["jobs"]] == ["coloured", "coloured"]
    assert_film(out / "coloured" / "first.mp4", films / "one.mp4")
    two = read_clip(out / "two.mp4", pixels=False)
    assert two.frames == 24  # its own `end`
    assert json.loads((out / "coloured" / "first.report.json").read_text())["model"] == "transfer"
    assert json.loads((out / "two.report.json").read_text())["model"] == "eccv16"
    # the same as JSON
    (films / "list.json").write_text(json.dumps({"jobs": [{"source": "two.mp4", "auto": True, "model": "eccv16",
                                                           "end": 0.5, "output": "j.mp4"}]}))
    run = run_cli("batch", films / "list.json", "-o", out, "--work-res", "48", "-q")
    assert run.code == 0, run.output
    assert read_clip(out / "j.mp4", pixels=False).frames == 12


@pytest.mark.parametrize("text, words", [
    ("source,colour\na.mp4,red\n", ["unknown option 'colour'"]),
    ("output\nx.mp4\n", ["row 1", "no source"]),
    ("source,auto\na.mp4,perhaps\n", ["auto", "yes/no"]),
    ("source,work_res\na.mp4,big\n", ["work_res", "number"]),
    ("source,output\na.mp4,x.mp4\nb.mp4,x.mp4\n", ["both be written"]),
    ("source\n", ["no film or picture"]),
])
def test_bad_manifests_are_refused_in_one_line(tmp_path, text, words):
    manifest = tmp_path / "m.csv"
    manifest.write_text(text)
    with pytest.raises(InputError):
        plan(manifest, tmp_path / "out")
    run = run_cli("batch", manifest, "-o", tmp_path / "out", "--auto")
    assert_clean_error(run, *words)
    assert not (tmp_path / "out").exists()


def test_batch_input_errors(tmp_path):
    assert_clean_error(run_cli("batch", tmp_path / "none", "-o", tmp_path / "out"), "no such")
    (tmp_path / "m.txt").write_text("x")
    assert_clean_error(run_cli("batch", tmp_path / "m.txt", "-o", tmp_path / "out"), ".csv or .json")
    (tmp_path / "m.json").write_text("{")
    assert_clean_error(run_cli("batch", tmp_path / "m.json", "-o", tmp_path / "out"), "not valid JSON")
    films = tmp_path / "films"
    films.mkdir()
    write_clip(films / "a.mp4", frames=12)
    assert_clean_error(run_cli("batch", films, "-o", tmp_path / "out", "--workers", "2"), "--ray")
    assert_clean_error(run_cli("batch", films, "-o", tmp_path / "out", "--model", "sepia"), "unknown model 'sepia'")
    assert_clean_error(run_cli("batch", films, "-o", tmp_path / "out", "--ray", "local", "--retries", "-1"), "--retries")
    assert not (tmp_path / "out").exists()
    assert_clean_error(run_cli(films, "--auto", "-o", tmp_path / "o"), "no images", "vidcolor batch")  # not `batch`
    assert_clean_error(run_cli("batch", films, "-o", films), "is the input folder")
    (films / "list.csv").write_text("source,output\na.mp4,../films/a.mp4\n")
    assert_clean_error(run_cli("batch", films / "list.csv", "-o", films), "replace it")


def test_networks_are_kept_loaded_between_jobs_only_when_asked(tmp_path):
    import shutil

    from vidcolor.models import automatic
    from vidcolor.models.kept import keep_loaded
    from vidcolor.models.weights import default_weights

    path = shutil.copyfile(default_weights("eccv16"), tmp_path / "eccv16.safetensors")
    assert automatic.load(path) is not automatic.load(path)
    keep_loaded()
    try:
        first = automatic.load(path)
        assert automatic.load(path) is first and automatic.load(str(path)) is first
        shutil.copyfile(default_weights("siggraph17"), tmp_path / "other.safetensors")
        assert automatic.load(tmp_path / "other.safetensors") is not first
        path.write_bytes(default_weights("eccv16").read_bytes())  # the file written again: read again
        assert automatic.load(path) is not first
    finally:
        keep_loaded(False)
    assert automatic.load(path) is not automatic.load(path)
