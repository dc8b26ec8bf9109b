"""`vidcolor train`: the loop learns, checkpoints resume exactly, outputs load."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import (assert_clean_error, moving_colour, run_cli, scene, torchvision_vgg19_state, write_clip,
                      write_png)
from vidcolor.models import automatic
from vidcolor.train.data import ExemplarPairs, load_media
from vidcolor.models.exemplar.network import load
from vidcolor.train.loop import TrainConfig, train


@pytest.fixture
def media(tmp_path):
    folder = tmp_path / "data"
    for k in range(4):
        write_png(folder / f"photo{k}.png", scene(k, 72))
    write_png(folder / "grey.png", np.full((48, 48), 120, np.uint8))
    write_clip(folder / "clip.mp4", frames=12, size=(80, 64), content=moving_colour)
    return folder


def settings(tmp_path, **extra) -> object:
    path = tmp_path / "tiny.json"
    values = {"size": 32, "width": 8, "batch_size": 2, "val_every": 3, "val_pairs": 2, "load_size": 48, "lr": 1e-3}
    path.write_text(json.dumps({**values, **extra}))
    return path


def log_rows(run) -> list[dict]:
    with (run / "log.csv").open() as f:
        return list(csv.DictReader(f))


def test_media_skip_grey_and_sample_videos(media):
    clips = load_media([media], load_size=48, frames_per_video=6)
    names = sorted(c.name for c in clips)
    assert names == ["clip.mp4", "photo0.png", "photo1.png", "photo2.png", "photo3.png"]
    assert len(next(c for c in clips if c.name == "clip.mp4").frames) == 6
    assert min(min(f.shape[-2:]) for c in clips for f in c.frames) == 48


def test_batches_depend_on_the_step_alone(media):
    pairs = ExemplarPairs(load_media([media], 48), size=32, batch=3, seed=5)
    a, b = pairs.batch_at(7), pairs.batch_at(7)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[0].shape == (3, 3, 32, 32)
    assert not torch.equal(pairs.batch_at(8)[0], a[0])


def test_train_exemplar_from_the_command_line(tmp_path, media):
    run = tmp_path / "run"
    result = run_cli("train", "exemplar", "--data", media, "--out", run, "--config", settings(tmp_path), "--steps", "6", "-q")
    assert result.code == 0, result.output
    rows = log_rows(run)
    assert [int(r["step"]) for r in rows] == list(range(1, 7))
    assert rows[2]["val_psnr"] and rows[5]["val_psnr"] and not rows[3]["val_psnr"]
    assert (run / "val_000003.png").is_file() and (run / "val_000006.png").is_file()
    model = load(run / "exemplar.safetensors")
    assert model.config.width == 8


def test_resume_continues_exactly(tmp_path, media):
    config = TrainConfig.load(settings(tmp_path), model="exemplar", steps=6)
    straight = train(config, [media], tmp_path / "straight")
    train(TrainConfig.load(settings(tmp_path), model="exemplar", steps=3), [media], tmp_path / "split")
    resumed = train(config, [media], tmp_path / "split", resume=True, steps=6)
    a, b = load(straight).state_dict(), load(resumed).state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    assert [r["step"] for r in log_rows(tmp_path / "split")] == [str(s) for s in range(1, 7)]


def test_the_backbone_pretext_loss_falls(tmp_path, media):
    run = tmp_path / "bb"
    config = TrainConfig.load(settings(tmp_path, lr=3e-3, batch_size=4), model="backbone", steps=30)
    path = train(config, [media], run)
    losses = [float(r["loss"]) for r in log_rows(run)]
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    # and an exemplar run starts from it
    exemplar = train(
        TrainConfig.load(settings(tmp_path), model="exemplar", steps=1, backbone_weights=str(path)), [media], tmp_path / "ex"
    )
    from safetensors.torch import load_file

    backbone = load_file(str(path))
    loaded = load(exemplar).backbone.state_dict()
    assert all(torch.equal(backbone[k], loaded[k]) for k in backbone)


def test_training_refuses_bad_settings_and_grey_data(tmp_path, media):
    grey = tmp_path / "grey"
    write_png(grey / "a.png", np.full((48, 48), 90, np.uint8))
    assert_clean_error(run_cli("train", "exemplar", "--data", grey, "--out", tmp_path / "r1", "-q"), "no colour")
    assert_clean_error(run_cli("train", "pixcolour", "--data", media, "--out", tmp_path / "r2"), "unknown model")
    bad = tmp_path / "bad.json"
    bad.write_text('{"sise": 32}')
    assert_clean_error(run_cli("train", "exemplar", "--data", media, "--config", bad, "--out", tmp_path / "r3"), "sise")
    assert_clean_error(run_cli("train", "exemplar", "--data", media, "--out", tmp_path / "r4", "--resume"), "checkpoint")


def test_exemplar_training_on_imagenet_vgg19_weights(tmp_path, media):
    vgg = tmp_path / "vgg19.pth"
    torch.save(torchvision_vgg19_state(), vgg)
    config = TrainConfig.load(settings(tmp_path), model="exemplar", steps=1, backbone="vgg19_gray", backbone_weights=str(vgg))
    model = load(train(config, [media], tmp_path / "vgg"))
    assert model.config.backbone == "vgg19_gray"
    assert torch.equal(model.backbone.features[0].weight, torch.load(vgg)["features.0.weight"])


@pytest.mark.parametrize("name", automatic.trainable())
def test_automatic_networks_learn_and_resume(tmp_path, media, name):
    """A few steps on tiny data: the loss on a fixed batch falls, the exported file loads,
    and a run split by --resume ends with the same weights as one run straight through."""
    from vidcolor.ops import quantize
    from vidcolor.models.eccv16 import colour_prior
    from vidcolor.train.loop import build, step_losses

    photo = tmp_path / "one"
    write_png(photo / "a.png", scene(1, 48))
    extra = {"lr": 3e-3, "batch_size": 2, "val_every": 50}
    config = TrainConfig.load(settings(tmp_path, **extra), model=name, steps=30)
    clips = load_media([photo], 48)
    batch = ExemplarPairs(clips, 32, 4, seed=99).batch_at(0)
    rebalance = quantize.rebalancing_weights(colour_prior(clips)) if name == "eccv16" else None
    torch.manual_seed(config.seed)  # the initialisation train() starts from
    before = step_losses(build(config).train(), config, *batch, 0, rebalance)["loss"].item()
    trained = automatic.load(train(config, [photo], tmp_path / "run"), name)
    assert trained.config == build(config).config and getattr(trained.config, "width", 8) == 8
    after = step_losses(trained.train(), config, *batch, 0, rebalance)["loss"].item()
    assert after < 0.8 * before, (before, after)  # cross-entropy to soft labels cannot reach 0
    short = TrainConfig.load(settings(tmp_path, **extra), model=name, steps=4)
    straight = train(short, [media], tmp_path / "straight")
    train(TrainConfig.load(settings(tmp_path, **extra), model=name, steps=2), [media], tmp_path / "split")
    resumed = train(short, [media], tmp_path / "split", resume=True, steps=4)
    a, b = automatic.load(straight).state_dict(), automatic.load(resumed).state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


def test_related_pairs_join_pictures_of_the_same_content():
    from vidcolor.models.exemplar.backbones import create
    from vidcolor.train.data import Clip, related_items

    def picture(seed, shift=0, gain=1.0):
        return torch.from_numpy(np.roll(scene(seed, 64), shift, axis=1) * gain / 255).permute(2, 0, 1).float().clamp(0, 1)

    clips = [Clip("a", [picture(1)]), Clip("b", [picture(5)]), Clip("a2", [picture(1, 6, 0.9)]), Clip("c", [picture(9)])]
    torch.manual_seed(0)
    related = related_items(clips, create("compact").eval())
    assert related[0] == 2 and related[2] == 0 and all(r != i for i, r in enumerate(related))
    pairs = ExemplarPairs(clips, size=32, batch=64, seed=1, related=related, related_share=1.0)
    targets, refs = pairs.batch_at(0)
    assert targets.shape == refs.shape == (64, 3, 32, 32)


def test_unrelated_pairs_come_last_and_from_another_picture():
    from vidcolor.train.data import Clip

    def solid(value):  # each picture one colour: its red/green ratio (kept by any gain) tells it
        return torch.tensor([value / 10, 0.6, 0.3]).view(3, 1, 1).expand(3, 40, 40).clone()

    def which(rgb):
        return (rgb[:, 0, 0, 0] / rgb[:, 1, 0, 0] * 6).round().long() - 1

    clips = [Clip(str(v), [solid(v)]) for v in range(1, 6)]
    related = [1, 0, 3, 2, 0]
    pairs = ExemplarPairs(clips, size=32, batch=8, seed=3, related=related, related_share=0.0,
                          unrelated_share=0.25, video_share=0.0, amplitude=0.0)
    for step in range(20):
        targets, refs = pairs.batch_at(step)
        source, reference = which(targets), which(refs)
        assert bool((source[:6] == reference[:6]).all())  # a picture and its deformed copy
        for k, j in zip(source[6:].tolist(), reference[6:].tolist()):
            assert j != k and j != related[k]


def test_unrelated_pairs_train_the_network_to_keep_the_target_s_colour(tmp_path):
    from vidcolor.models.exemplar.network import ExemplarConfig, ExemplarNet
    from vidcolor.ops import color
    from vidcolor.train.losses import chrominance_loss, exemplar_losses

    torch.manual_seed(0)
    net = ExemplarNet(ExemplarConfig(width=8)).train()
    to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float() / 255  # noqa: E731
    targets = torch.stack([to(scene(k, 64)) for k in range(4)])
    refs = torch.stack([to(scene(k + 10, 64)) for k in range(4)])
    plain = exemplar_losses(net, targets[:2], refs[:2])
    mixed = exemplar_losses(net, targets, refs, unrelated=2)
    assert float(plain.unrelated) == 0.0 and torch.allclose(plain.total, plain.chrominance + 0.005 * plain.perceptual)
    lab = color.rgb_to_lab(targets[2:])
    with torch.no_grad():
        found = net.similarity(lab[:, :1], net.prepare(refs[2:]))
    by_hand = chrominance_loss(net.colorize(lab[:, :1], found.warped_ab, found.similarity), lab[:, 1:])
    assert torch.allclose(mixed.unrelated, by_hand, atol=1e-5)
    assert torch.allclose(mixed.chrominance, plain.chrominance, atol=1e-5)  # the other pairs as before
    mixed.total.backward()
    assert net.colorizer.out.weight.grad.abs().sum() > 0


def test_train_exemplar_with_unrelated_references(tmp_path, media):
    run = tmp_path / "run"
    config = settings(tmp_path, batch_size=4, unrelated_share=0.25)
    result = run_cli("train", "exemplar", "--data", media, "--out", run, "--config", config, "--steps", "3", "-q")
    assert result.code == 0, result.output
    rows = log_rows(run)
    assert len(rows) == 3 and all(float(r["unrelated"]) > 0 for r in rows)


def test_every_recipe_loads_and_names_its_model():
    from pathlib import Path

    recipes = sorted((Path(__file__).resolve().parents[2] / "train").glob("*.toml"))
    assert {r.stem.split("_")[0] for r in recipes} == {"backbone", "exemplar", *automatic.trainable()}
    for recipe in recipes:  # exemplar_cpu.toml: another form of the exemplar recipe
        assert TrainConfig.load(recipe).model == recipe.stem.split("_")[0]


def test_several_data_folders_after_one_flag(tmp_path, media):
    second = tmp_path / "more"
    write_png(second / "extra.png", scene(11, 72))
    run = tmp_path / "run"
    result = run_cli("train", "eccv16", "--data", media, second, "--out", run, "--config", settings(tmp_path),
                     "--steps", "2", "-q")
    assert result.code == 0, result.output
    assert automatic.load(run / "eccv16.safetensors").config.width == 8
    result = run_cli("train", "eccv16", "--data", media, tmp_path / "missing", "--out", tmp_path / "r2", "-q")
    assert_clean_error(result, "missing")


def test_training_goes_on_from_trained_weights(tmp_path, media):
    """``init_weights``: a run starts from a trained network of the same layout (with lr 0 its
    parameters stay exactly those); the confidence head is left for calibration afresh."""
    from vidcolor.models.exemplar.network import save

    first = load(train(TrainConfig.load(settings(tmp_path), model="exemplar", steps=2), [media], tmp_path / "a"))
    first.set_confidence(torch.ones(10), torch.zeros(1))
    start = tmp_path / "start.safetensors"
    save(first, start)
    config = TrainConfig.load(settings(tmp_path, lr=0.0), model="exemplar", steps=2, init_weights=str(start))
    went_on = load(train(config, [media], tmp_path / "b"))
    assert not went_on.config.confidence
    before, after = dict(load(start).named_parameters()), dict(went_on.named_parameters())
    assert set(after) == {k for k in before if not k.startswith("confidence_head.")}
    assert all(torch.equal(before[k], after[k]) for k in after)
    moved = load(train(replace(config, lr=1e-3), [media], tmp_path / "c"))
    assert any(not torch.equal(before[k], v) for k, v in moved.named_parameters() if v.requires_grad)

    other_width = settings(tmp_path, width=16)
    result = run_cli("train", "exemplar", "--data", media, "--out", tmp_path / "d", "--config", other_width,
                     "--init-weights", start, "-q")
    assert_clean_error(result, "width 8")
    result = run_cli("train", "exemplar", "--data", media, "--out", tmp_path / "e", "--config", settings(tmp_path),
                     "--init-weights", tmp_path / "none.safetensors", "-q")
    assert_clean_error(result, "no such weights file")
    result = run_cli("train", "eccv16", "--data", media, "--out", tmp_path / "f", "--config", settings(tmp_path),
                     "--init-weights", start, "-q")
    assert_clean_error(result, "exemplar")


def test_compact_frame_folders_train_without_pyav(tmp_path, media):
    """``train/compact_data.py --frames`` writes each video as a folder of JPEG frames; the
    loader reads such a folder as one clip, in a process where PyAV cannot be imported."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    small = tmp_path / "small"
    subprocess.run([sys.executable, str(root / "train" / "compact_data.py"), str(media), "--frames", "--size", "48",
                    "--out", str(small)], check=True, capture_output=True)
    frames = sorted((small / "data" / "clip.frames").iterdir())
    assert [f.name for f in frames] == [f"{k:05d}.jpg" for k in range(12)]
    blocked = (
        "import sys, json\n"
        "class NoAV:\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'av': raise ImportError('no PyAV here')\n"
        "sys.meta_path.insert(0, NoAV())\n"
        "from vidcolor.train.data import load_media\n"
        f"clips = load_media([{str(small)!r}], 48, frames_per_video=6)\n"
        "print(json.dumps({c.name: len(c.frames) for c in clips}))\n"
        "assert 'av' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", blocked], check=True, capture_output=True, text=True, cwd=root)
    assert json.loads(out.stdout) == {"data/clip.frames": 6, **{f"data/photo{k}.jpg": 1 for k in range(4)}}
    original = {c.name: c.frames for c in load_media([media], 48, frames_per_video=6)}["clip.mp4"]
    copied = {c.name: c.frames for c in load_media([small], 48, frames_per_video=6)}["data/clip.frames"]
    assert len(copied) == len(original)
    assert all((a - b).abs().mean() < 0.03 for a, b in zip(original, copied))  # the same frames, through JPEG
