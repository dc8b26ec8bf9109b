"""The Python API: ``vidcolor.colorize`` does what the command does, ``vidcolor.create``
colours numpy frames, ``vidcolor.list_models`` says what can run; the README's example runs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vidcolor
from conftest import REPO, colour_reference, lightness_diff, mean_chroma, read_clip, subprocess_env, write_clip, write_png


@pytest.fixture
def film(tmp_path) -> tuple[Path, Path]:
    return write_clip(tmp_path / "film.mp4", frames=24, size=(96, 64), audio="aac"), write_png(
        tmp_path / "ref.png", colour_reference())


def test_colorize_a_film_from_python(tmp_path, film):
    source, reference = film
    out = vidcolor.colorize(str(source), reference=str(reference), work_res=48)
    assert out == tmp_path / "film_color.mp4" and out.exists()
    made, original = read_clip(out), read_clip(source, pixels=False)
    assert made.frames == original.frames == 24 and made.times == original.times
    assert made.audio == original.audio
    assert mean_chroma(made.rgb[12]) > 5


def test_colorize_a_folder_automatically(tmp_path):
    photos = tmp_path / "photos"
    write_png(photos / "a.png", np.tile(np.arange(64, dtype=np.uint8), (48, 1)))
    out = vidcolor.colorize(photos, auto=True, work_res=32)
    assert out == tmp_path / "photos_color" and (out / "a.png").exists()


def test_errors_are_exceptions_and_nothing_is_written(tmp_path, film):
    source, reference = film
    with pytest.raises(vidcolor.InputError, match="no such file"):
        vidcolor.colorize(tmp_path / "absent.mp4", reference=reference)
    with pytest.raises(vidcolor.ReferenceImageError, match="colours from a reference"):
        vidcolor.colorize(source)
    existing = tmp_path / "taken.mp4"
    existing.write_bytes(b"mine")
    with pytest.raises(vidcolor.OutputError, match="exists"):
        vidcolor.colorize(source, existing, reference=reference)
    assert existing.read_bytes() == b"mine"


def test_errors_name_parameters_and_the_command_line_names_flags(tmp_path, film):
    """The same refusal, from Python and from the command line, in each one's words."""
    source, reference = film
    with pytest.raises(vidcolor.InputError) as caught:
        vidcolor.colorize(source, reference=reference, batch_size=0)
    assert str(caught.value).startswith("batch_size must be between 1 and") and "--" not in str(caught.value)
    assert caught.value.for_command_line().startswith("--batch-size must be between 1 and")
    with pytest.raises(vidcolor.InputError) as caught:
        vidcolor.colorize(source, reference=reference, temporal="sideways")
    assert str(caught.value).startswith("temporal='sideways': choose")
    assert caught.value.for_command_line().startswith("--temporal sideways: choose")
    with pytest.raises(vidcolor.ModelError) as caught:
        vidcolor.colorize(source, reference=reference, auto=True)
    assert str(caught.value) == "auto colorizes without a reference; leave out reference or auto"
    assert caught.value.for_command_line() == "--auto colorizes without a reference; leave out --reference or --auto"
    assert not (tmp_path / "film_color.mp4").exists()


def test_the_default_automatic_model_is_the_best_ranked_with_weights(tmp_path, monkeypatch):
    from vidcolor import colorizers
    from vidcolor.api import choose_model
    from vidcolor.models import weights

    ranked = sorted(colorizers.names(automatic=True), key=colorizers.rank)
    assert ranked[0] == "siggraph17" and choose_model(None, True, False) == "siggraph17"
    folder = tmp_path / "weights"  # only the third-best network installed
    folder.mkdir()
    entry = next(e for e in weights.manifest() if e["name"] == ranked[2])
    shutil.copy(weights.weights_dir() / entry["file"], folder / entry["file"])
    monkeypatch.setenv("VIDCOLOR_WEIGHTS", str(folder))
    assert choose_model(None, True, False) == ranked[2]


def test_the_default_reference_model_is_the_network_where_it_is_installed(tmp_path, monkeypatch):
    from vidcolor.api import choose_model

    assert choose_model(None, False, True) == "exemplar"
    monkeypatch.setenv("VIDCOLOR_WEIGHTS", str(tmp_path))  # no network installed
    assert choose_model(None, False, True) == "transfer"


def test_create_colours_numpy_frames(film):
    _, reference = film
    colorizer = vidcolor.create("transfer", reference=reference, device="cpu", work_res=48)
    grey = np.stack([np.tile(np.linspace(0, 255, 96, dtype=np.uint8), (64, 1))] * 3)
    rgb = colorizer(grey)
    assert rgb.shape == (3, 64, 96, 3) and rgb.dtype == np.uint8
    assert lightness_diff(rgb[0], grey[0]) < 1.5  # only chrominance is added
    assert mean_chroma(rgb[0]) > 5
    one = colorizer(grey[0])
    assert one.shape == (64, 96, 3) and np.abs(one.astype(int) - rgb[0]).mean() < 1.0
    colorizer.set_reference(colour_reference()[..., ::-1].copy())  # another reference, as an array
    assert not np.array_equal(colorizer(grey[0]), one)


def test_create_refuses_what_it_cannot_do():
    with pytest.raises(vidcolor.ModelError, match="unknown model"):
        vidcolor.create("nonsense", device="cpu")
    colorizer = vidcolor.create("transfer", device="cpu")
    with pytest.raises(vidcolor.ReferenceImageError, match="reference"):
        colorizer(np.zeros((8, 8), np.uint8))
    with pytest.raises(vidcolor.InputError, match="uint8 or uint16"):
        vidcolor.create("transfer", device="cpu", reference=colour_reference())(np.zeros((8, 8), np.float32))


def test_list_models_says_which_can_run(tmp_path, monkeypatch):
    found = {m.name: m for m in vidcolor.list_models()}
    assert {"transfer", "exemplar", "eccv16", "siggraph17", "larsson", "pixcolor"} <= set(found)
    assert found["transfer"].installed and not found["transfer"].automatic and not found["transfer"].takes_weights
    assert found["eccv16"].automatic and found["eccv16"].installed  # shipped with the package
    assert not found["pixcolor"].installed  # no weights shipped
    monkeypatch.setenv("VIDCOLOR_WEIGHTS", str(tmp_path))  # another, empty, weights folder
    found = {m.name: m for m in vidcolor.list_models()}
    assert found["transfer"].installed and not found["eccv16"].installed and not found["exemplar"].installed


def test_importing_vidcolor_loads_no_heavy_library():
    code = "import sys, vidcolor; print(sorted(m for m in ('torch', 'numpy', 'cv2', 'av') if m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env())
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_the_readme_example_runs(tmp_path):
    block = re.search(r"## Python\n\n```python\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    shutil.copytree(REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("*.py"))
    run = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, cwd=tmp_path,
                         env=subprocess_env(), timeout=300)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "countryside_api.mp4").exists()
    assert "transfer reference True" in run.stdout
