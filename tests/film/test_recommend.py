"""Reference recommendation (He et al. 2018, section 4): descriptors, PCA, the gallery index
kept beside the images, the two-stage ranking, and ``vidcolor recommend``.

The gallery is made of generated colour scenes, each with its own structure (stripes,
checks, rings, blotches, dots, ...) and its own luminance distribution; a target is a
mildly transformed grey copy of one of them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import assert_clean_error, partial_files, run_cli, write_frames_clip, write_png
from vidcolor.models.exemplar import backbones
from vidcolor.models.exemplar.backbones import Backbone
from vidcolor.ops.color import rgb_to_grey_levels
from vidcolor.errors import ReferenceImageError
from vidcolor.film.recommend import (
    INDEX_NAME,
    PCA,
    cell_histograms,
    descriptor_size,
    describe,
    fingerprint,
    fit_pca,
    open_gallery,
    pca_dims,
    project,
    recommend,
    recommendation_backbone,
    reconstruct,
)

# -- scenes ---------------------------------------------------------------------------------


def _shade(grey: np.ndarray, seed: int) -> np.ndarray:
    """Grey structure ``(H, W)`` in [0, 1] -> a colour image: two random colours mixed by it."""
    rng = np.random.default_rng(seed)
    dark, light = rng.integers(0, 120, 3), rng.integers(135, 256, 3)
    rgb = dark + grey[..., None] * (light - dark)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def scene(kind: int, width: int = 128, height: int = 96) -> np.ndarray:
    """Colour scene ``kind`` (0..7), each with a different structure and tone."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(100 + kind)
    if kind == 0:  # horizontal stripes, dark
        grey = 0.4 * (np.sin(y / 3.0) > 0)
    elif kind == 1:  # wide vertical bars, bright
        grey = 0.6 + 0.4 * (np.sin(x / 9.0) > 0)
    elif kind == 2:  # checkerboard
        grey = (((x // 12) + (y // 12)) % 2).astype(np.float32)
    elif kind == 3:  # concentric rings
        grey = 0.5 + 0.5 * np.sin(np.hypot(x - width / 2, y - height / 2) / 4.0)
    elif kind == 4:  # soft blotches
        grey = cv2.resize(rng.random((6, 8)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    elif kind == 5:  # dots on a bright ground
        grey = np.ones((height, width), np.float32)
        for cx, cy in rng.integers(0, [width, height], (40, 2)):
            cv2.circle(grey, (int(cx), int(cy)), 4, 0.1, -1)
    elif kind == 6:  # diagonal gradient with a dark box and a bright disc
        grey = (x + y) / (width + height)
        cv2.rectangle(grey, (width // 6, height // 5), (width // 2, height // 2), 0.05, -1)
        cv2.circle(grey, (width * 3 // 4, height * 2 // 3), height // 5, 0.95, -1)
    else:  # fine noise texture, mid grey
        grey = 0.3 + 0.4 * cv2.GaussianBlur(rng.random((height, width)).astype(np.float32), (0, 0), 1.2)
    grey = np.clip(grey + rng.normal(0, 0.02, grey.shape), 0, 1)
    return _shade(grey, kind)


KINDS = range(8)


def make_gallery(folder: Path, kinds=KINDS) -> dict[int, Path]:
    """One PNG (or JPEG) per scene, some in a subfolder, sizes varying."""
    paths = {}
    for k in kinds:
        sub = "more/" if k % 3 == 0 else ""
        suffix = ".jpg" if k % 2 else ".png"
        path = folder / f"{sub}scene{k}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        rgb = scene(k, 128 + 8 * (k % 3), 96 + 8 * (k % 2))
        assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        paths[k] = path
    return paths


def transformed_grey(rgb: np.ndarray, flip: bool = False) -> np.ndarray:
    """The grey of a scene, cropped by about 6 %, brightened by 8 levels, maybe mirrored."""
    grey = rgb_to_grey_levels(rgb)
    h, w = grey.shape
    grey = grey[h // 24 : h - h // 32, w // 20 : w - w // 32]
    if flip:
        grey = grey[:, ::-1]
    return np.ascontiguousarray(np.clip(grey.astype(np.int16) + 8, 0, 255).astype(np.uint8))


class Counting(Backbone):
    """Forwards to another backbone and counts the images it describes."""

    def __init__(self, inner: Backbone):
        super().__init__()
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        self.calls += image.shape[0]
        return self.inner(image)


def seeded_compact(seed: int) -> Backbone:
    torch.manual_seed(seed)
    return backbones.create("compact").eval()


@pytest.fixture(scope="module")
def compact(tmp_path_factory) -> Backbone:
    """The compact backbone at its fixed random initialisation (what recommendation uses
    when no weights are installed), whatever weights this checkout ships: these tests are
    about the ranking, on synthetic scenes."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VIDCOLOR_WEIGHTS", str(tmp_path_factory.mktemp("no_weights")))
        return recommendation_backbone(None)


# -- descriptors and PCA --------------------------------------------------------------------


def test_descriptor_size_is_short_side_224_in_multiples_of_16():
    assert descriptor_size(96, 128) == (224, 304)
    assert descriptor_size(1080, 1920) == (224, 400)
    assert descriptor_size(500, 100) == (448, 224)  # aspect capped at 2
    h, w = descriptor_size(37, 41)
    assert h % 16 == 0 and w % 16 == 0 and min(h, w) == 224


def test_descriptor_shapes(compact):
    d = describe(scene(3), compact)
    positions = (224 // 16) * (304 // 16)
    assert d.global_.shape == (2 * compact.channels[4],)
    assert d.local.shape == (positions, compact.channels[4])
    assert d.hist.shape == (positions, 16)
    assert np.isclose(np.linalg.norm(d.global_), 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(d.local, axis=1), 1.0, atol=1e-5)


def test_cell_histograms_rows_correlate_like_histograms():
    rng = np.random.default_rng(0)
    centres = (np.arange(16) + 0.5) / 16  # at bin centres the shared binning is plain counting
    grey = np.zeros((32, 48), np.float32)
    grey[:16, :16] = rng.choice(centres[:5], (16, 16))  # dark cell
    grey[:16, 16:32] = grey[:16, :16]  # the same cell again
    grey[:16, 32:] = rng.choice(centres[10:], (16, 16))  # bright cell
    grey[16:] = rng.choice(centres, (16, 48))
    rows = cell_histograms(grey, (2, 3), 16)
    assert rows.shape == (6, 16)
    assert np.isclose(rows[0] @ rows[1], 1.0, atol=1e-5)
    assert rows[0] @ rows[2] < 0
    for a, b in ((0, 2), (0, 3), (2, 5)):
        cells = [grey[16 * (i // 3) : 16 * (i // 3) + 16, 16 * (i % 3) : 16 * (i % 3) + 16] for i in (a, b)]
        counts = [np.histogram(c, 16, (0, 1))[0] for c in cells]
        assert np.isclose(rows[a] @ rows[b], np.corrcoef(*counts)[0, 1], atol=1e-5)


def test_cell_histograms_change_little_with_a_small_brightness_shift():
    rng = np.random.default_rng(2)
    grey = rng.uniform(0.3, 0.32, (16, 16)).astype(np.float32)  # a narrow spike
    base = cell_histograms(grey, (1, 1), 16)[0]
    near = cell_histograms(grey + 0.02, (1, 1), 16)[0]
    far = cell_histograms(grey + 0.25, (1, 1), 16)[0]
    assert base @ near > 0.5 > base @ far


def test_pca_round_trip_and_shapes():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(50, 5)) @ rng.normal(size=(5, 20)) + 3.0)  # rank 5, off-centre
    pca = fit_pca(x, 8)
    assert isinstance(pca, PCA) and pca.components.shape == (8, 20) and pca.mean.shape == (20,)
    assert torch.allclose(pca.components @ pca.components.T, torch.eye(8), atol=1e-5)
    y = project(pca, x)
    assert y.shape == (50, 8)
    assert torch.allclose(reconstruct(pca, y), x.float(), atol=1e-4)
    few = x[:3]  # three samples support two components
    small = fit_pca(few, 8)
    assert small.components.shape == (2, 20)
    assert torch.allclose(reconstruct(small, project(small, few)), few.float(), atol=1e-4)


def test_pca_dims_are_capped_by_the_data():
    assert pca_dims(128, 5000, 512) == 128
    assert pca_dims(128, 10, 512) == 9
    assert pca_dims(64, 1000, 48) == 48
    assert pca_dims(64, 1, 256) == 1


# -- ranking --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gallery(tmp_path_factory, compact):
    """The eight scenes and their index."""
    folder = tmp_path_factory.mktemp("gallery")
    paths = make_gallery(folder)
    return paths, open_gallery(folder, compact)


@pytest.mark.parametrize("kind", KINDS)
def test_transformed_copy_ranks_first(gallery, kind):
    paths, index = gallery
    found = recommend(transformed_grey(scene(kind, 128 + 8 * (kind % 3), 96 + 8 * (kind % 2))), index, top=3)
    assert [r.path for r in found][0] == paths[kind], found
    assert found[0].score > found[1].score
    assert all(isinstance(r.global_score, float) for r in found)


def test_mirrored_copy_ranks_first(gallery):
    paths, index = gallery
    for kind in (4, 6):  # the two scenes that are not mirror-symmetric
        found = recommend(transformed_grey(scene(kind, 128 + 8 * (kind % 3), 96 + 8 * (kind % 2)), flip=True), index, top=1)
        assert found[0].path == paths[kind], found


class Gradients(Backbone):
    """Level 5 = the four half-wave rectified luminance gradients averaged over 16x16
    cells: blind to a uniform luminance offset, so two copies of an image that differ by
    one tie on the semantic term and only the histogram term tells them apart."""

    channels = (4, 4, 4, 4, 4)
    name = "gradients"

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        dx = F.pad(image[..., :, 1:] - image[..., :, :-1], (0, 1, 0, 0))
        dy = F.pad(image[..., 1:, :] - image[..., :-1, :], (0, 0, 0, 1))
        x = torch.cat([dx.clamp(min=0), (-dx).clamp(min=0), dy.clamp(min=0), (-dy).clamp(min=0)], 1)
        return [F.avg_pool2d(x, s) if s > 1 else x for s in (1, 2, 4, 8, 16)]


def texture(seed: int, width: int = 128, height: int = 96) -> np.ndarray:
    """Grey levels in [60, 160] with structure in every cell (no flat cell, no clipping)."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.random((height, width)).astype(np.float32), (0, 0), 2.0)
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    return (60 + 100 * noise).astype(np.uint8)


def test_luminance_term_prefers_the_closer_histogram(tmp_path):
    target = texture(0)
    write_png(tmp_path / "near.png", target + 6)  # same structure, histogram shifted by 6 levels
    write_png(tmp_path / "far.png", target + 60)  # same structure, shifted by 60 levels
    for seed in (1, 2, 3, 4):  # other structures, so the PCA has something to fit
        write_png(tmp_path / f"other{seed}.png", texture(seed))
    index = open_gallery(tmp_path, Gradients())

    def scores(beta: float) -> dict[str, float]:
        return {r.path.name: r.score for r in recommend(target, index, top=len(index), beta=beta)}

    semantic = scores(0.0)
    assert abs(semantic["near.png"] - semantic["far.png"]) < 1e-4  # a tie without the histograms
    assert semantic["near.png"] > max(v for k, v in semantic.items() if k.startswith("other"))
    full = scores(0.25)
    assert max(full, key=full.get) == "near.png", full
    assert full["near.png"] - full["far.png"] > 0.05


def test_grey_and_path_targets_agree(tmp_path, compact):
    make_gallery(tmp_path / "gallery")
    index = open_gallery(tmp_path / "gallery", compact)
    grey = transformed_grey(scene(2, 136, 104))
    target = write_png(tmp_path / "target.png", grey)
    assert recommend(target, index, top=3) == recommend(grey, index, top=3)
    wide = np.repeat(grey[..., None], 3, axis=2)  # an RGB grey image reads as the same target
    assert recommend(write_png(tmp_path / "rgb.png", wide), index, top=1)[0].path == recommend(grey, index, top=1)[0].path


def test_candidates_limit_the_local_ranking(gallery):
    _, index = gallery
    grey = transformed_grey(scene(5, 128 + 8 * 2, 96 + 8))
    assert len(recommend(grey, index, top=10, candidates=3)) == 3
    assert len(recommend(grey, index, top=10)) == len(index)
    best = recommend(grey, index, top=1, candidates=1)[0]
    assert best.global_score == max(r.global_score for r in recommend(grey, index, top=10))


# -- the index ------------------------------------------------------------------------------


def test_index_is_reused_when_nothing_changed(tmp_path, compact):
    make_gallery(tmp_path, kinds=range(6))
    first = Counting(compact)
    index = open_gallery(tmp_path, first)
    assert first.calls == 6 and len(index) == 6
    assert (tmp_path / INDEX_NAME).is_file() and not partial_files(tmp_path)
    stamp = (tmp_path / INDEX_NAME).stat().st_mtime_ns
    again = Counting(compact)
    reused = open_gallery(tmp_path, again)
    assert again.calls == 0
    assert (tmp_path / INDEX_NAME).stat().st_mtime_ns == stamp  # not even rewritten
    grey = transformed_grey(scene(1, 128 + 8, 96 + 8))
    assert recommend(grey, reused, top=6) == recommend(grey, index, top=6)


def test_index_is_updated_incrementally(tmp_path, compact):
    paths = make_gallery(tmp_path, kinds=range(6))
    open_gallery(tmp_path, Counting(compact))

    added = Counting(compact)
    write_png(tmp_path / "new" / "scene6.png", scene(6))
    index = open_gallery(tmp_path, added)
    assert added.calls == 1 and len(index) == 7
    assert recommend(transformed_grey(scene(6)), index, top=1)[0].path == tmp_path / "new" / "scene6.png"

    removed = Counting(compact)
    paths[2].unlink()
    index = open_gallery(tmp_path, removed)
    assert removed.calls == 0 and len(index) == 6 and paths[2] not in index.paths

    changed = Counting(compact)
    write_png(paths[0], scene(7))  # same name, other picture
    os.utime(paths[0], ns=(1, 1))  # a new mtime even on a coarse clock
    index = open_gallery(tmp_path, changed)
    assert changed.calls == 1 and len(index) == 6
    assert recommend(transformed_grey(scene(7)), index, top=1)[0].path == paths[0]


def test_a_gallery_that_doubled_is_described_again(tmp_path, compact):
    make_gallery(tmp_path, kinds=range(2))
    open_gallery(tmp_path, compact)
    make_gallery(tmp_path, kinds=range(2, 4))
    grown = Counting(compact)
    open_gallery(tmp_path, grown)
    assert grown.calls == 4  # the local PCA of 2 images is refitted on all 4


def test_another_backbone_rebuilds_the_index(tmp_path, compact):
    make_gallery(tmp_path, kinds=range(5))
    open_gallery(tmp_path, compact)
    other = Counting(seeded_compact(1))
    assert fingerprint(other) != fingerprint(Counting(compact))
    open_gallery(tmp_path, other)
    assert other.calls == 5
    back = Counting(compact)
    open_gallery(tmp_path, back)
    assert back.calls == 5  # the file now holds the other backbone's descriptors


def test_fingerprint_is_deterministic():
    assert fingerprint(recommendation_backbone(None)) == fingerprint(recommendation_backbone(None))
    assert fingerprint(recommendation_backbone(None)) != fingerprint(seeded_compact(1))
    assert len(fingerprint(recommendation_backbone(None))) == 16


def test_damaged_index_file_is_rebuilt(tmp_path, compact):
    make_gallery(tmp_path, kinds=range(4))
    open_gallery(tmp_path, compact)
    (tmp_path / INDEX_NAME).write_bytes(b"not an index")
    counting = Counting(compact)
    assert len(open_gallery(tmp_path, counting)) == 4
    assert counting.calls == 4


def test_missing_and_empty_galleries_are_errors(tmp_path, compact):
    with pytest.raises(ReferenceImageError, match="no such folder"):
        open_gallery(tmp_path / "absent", compact)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    with pytest.raises(ReferenceImageError, match="no images"):
        open_gallery(tmp_path / "empty", compact)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"not a png")
    with pytest.raises(ReferenceImageError, match="could be read"):
        open_gallery(tmp_path / "broken", compact)


# -- the command ----------------------------------------------------------------------------


def result_paths(stdout: str) -> list[str]:
    return [line.split("\t")[-1] for line in stdout.splitlines() if line.strip()]


def test_cli_prints_the_best_reference_first(tmp_path):
    paths = make_gallery(tmp_path / "gallery")
    target = write_png(tmp_path / "target.png", transformed_grey(scene(3, 128, 104)))
    run = run_cli("recommend", target, "--gallery", tmp_path / "gallery", "--top", "3", "--device", "cpu")
    assert run.code == 0, run.output
    found = result_paths(run.stdout)
    assert len(found) == 3 and found[0] == str(paths[3])
    score, global_score, _ = run.stdout.splitlines()[0].split("\t")
    assert -1.5 <= float(score) <= 1.5 and -1.0 <= float(global_score) <= 1.0
    assert (tmp_path / "gallery" / INDEX_NAME).is_file()

    as_json = run_cli("recommend", target, "--gallery", tmp_path / "gallery", "--top", "2", "--json")
    assert as_json.code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert [d["path"] for d in data] == found[:2]
    assert set(data[0]) == {"path", "score", "global_score"}


def test_cli_takes_the_middle_frame_of_a_film(tmp_path):
    paths = make_gallery(tmp_path / "gallery")
    frames = [transformed_grey(scene(4, 128 + 8, 96))] * 6 + [transformed_grey(scene(6))] * 12 + [transformed_grey(scene(2))] * 6
    film = write_frames_clip(tmp_path / "film.mp4", [f[:80, :112] for f in frames])
    run = run_cli("recommend", film, "--gallery", tmp_path / "gallery", "--top", "1")
    assert run.code == 0, run.output
    assert result_paths(run.stdout) == [str(paths[6])]


def test_cli_skips_unreadable_gallery_images_with_one_warning(tmp_path):
    paths = make_gallery(tmp_path / "gallery", kinds=range(5))
    (tmp_path / "gallery" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    target = write_png(tmp_path / "target.png", transformed_grey(scene(1, 136, 104)))
    run = run_cli("recommend", target, "--gallery", tmp_path / "gallery")
    assert run.code == 0, run.output
    warnings = run.warning_lines()
    assert len(warnings) == 1 and "broken.jpg" in warnings[0]
    assert result_paths(run.stdout)[0] == str(paths[1])
    assert "broken.jpg" not in run.stdout


def test_cli_errors_are_one_line(tmp_path):
    target = write_png(tmp_path / "target.png", transformed_grey(scene(0)))
    assert_clean_error(run_cli("recommend", target, "--gallery", tmp_path / "absent"), "absent", "no such folder")
    (tmp_path / "empty").mkdir()
    assert_clean_error(run_cli("recommend", target, "--gallery", tmp_path / "empty"), "no images")
    make_gallery(tmp_path / "gallery", kinds=range(3))
    assert_clean_error(run_cli("recommend", tmp_path / "nothing.png", "--gallery", tmp_path / "gallery"), "no such file")
    (tmp_path / "bad.png").write_bytes(b"garbage")
    assert_clean_error(run_cli("recommend", tmp_path / "bad.png", "--gallery", tmp_path / "gallery"), "bad.png")
    assert_clean_error(run_cli("recommend", target, "--gallery", tmp_path / "gallery", "--top", "0"), "--top")
