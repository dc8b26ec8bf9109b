"""``devc``: the authors' DEVC release (Zhang et al. 2019) imported and run.

The checkpoints here are made by the test at the real shapes with the authors' key layout
(written out below from their published architecture, not from our modules), packed as
their ``colorization_checkpoint.zip``. The forward pass is checked against an independent
computation written here with plain functional operations on those state dicts: the
authors' dense softmax at temperature 1e-10 over the whole similarity matrix, where the
module uses vidcolor's matcher.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import assert_clean_error, mean_chroma, moving_colour, read_clip, run_cli, scene, write_clip, write_png
from vidcolor.models.devc.network import load
from vidcolor.models.devc.release import import_release
from vidcolor.ops import color
from vidcolor.ops.edge_smoothing import fast_global_smoother

# --- the authors' layout ------------------------------------------------------------------

VGG = [(f"conv{s}_{k}", cout, cin) for s, k, cin, cout in [
    (1, 1, 3, 64), (1, 2, 64, 64), (2, 1, 64, 128), (2, 2, 128, 128),
    (3, 1, 128, 256), (3, 2, 256, 256), (3, 3, 256, 256), (3, 4, 256, 256),
    (4, 1, 256, 512), (4, 2, 512, 512), (4, 3, 512, 512), (4, 4, 512, 512),
    (5, 1, 512, 512), (5, 2, 512, 512), (5, 3, 512, 512), (5, 4, 512, 512)]]
WARP_CONVS = [("layer2_1.1", 128, 128), ("layer2_1.5", 64, 128), ("layer3_1.1", 128, 256), ("layer3_1.5", 64, 128),
              ("layer4_1.1", 256, 512), ("layer4_1.5", 64, 256), ("layer5_1.1", 256, 512), ("layer5_1.6", 64, 256)]
WARP_PRELU = ["layer2_1.3", "layer2_1.7", "layer3_1.3", "layer3_1.7", "layer4_1.3", "layer4_1.7", "layer5_1.3",
              "layer5_1.8", "layer.0.prelu", "layer.1.prelu", "layer.2.prelu"]
COLOR_CONVS = [("conv1_1.0", 32, 7), ("conv1_1.2", 64, 32), ("conv1_2", 64, 64), ("conv2_1", 128, 64),
               ("conv2_2", 128, 128), ("conv3_1", 256, 128), ("conv3_2", 256, 256), ("conv3_3", 256, 256),
               ("conv4_1", 512, 256), ("conv4_2", 512, 512), ("conv4_3", 512, 512),
               *[(f"conv{b}_{k}", 512, 512) for b in (5, 6, 7) for k in (1, 2, 3)],
               ("conv8_1.1", 256, 512), ("conv3_3_short", 256, 256), ("conv8_2", 256, 256), ("conv8_3", 256, 256),
               ("conv9_1.1", 128, 256), ("conv2_2_short", 128, 128), ("conv9_2", 128, 128),
               ("conv10_1.1", 128, 128), ("conv1_2_short", 128, 64), ("conv10_2", 128, 128)]


def _conv(state, g, name, cout, cin, k=3, bias=True):
    state[f"{name}.weight"] = torch.randn(cout, cin, k, k, generator=g) * (2.0 / (cin * k * k)) ** 0.5
    if bias:
        state[f"{name}.bias"] = torch.randn(cout, generator=g) * 0.05


def authors_states(seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    vgg, warp, colornet = {}, {}, {}
    for name, cout, cin in VGG:
        _conv(vgg, g, name, cout, cin)
    for name, cout, cin in WARP_CONVS:
        _conv(warp, g, name, cout, cin)
    for name in WARP_PRELU:
        warp[f"{name}.weight"] = torch.full((1,), 0.25) + 0.05 * torch.randn(1, generator=g)
    for b in range(3):
        _conv(warp, g, f"layer.{b}.conv1", 256, 256)
        _conv(warp, g, f"layer.{b}.conv2", 256, 256)
    _conv(warp, g, "theta", 256, 256, 1)
    _conv(warp, g, "phi", 256, 256, 1)
    for name, cout, cin in COLOR_CONVS:
        _conv(colornet, g, name, cout, cin)
    for name, c in (("conv1_2norm_ss", 64), ("conv2_2norm_ss", 128), ("conv3_3norm_ss", 256)):
        colornet[f"{name}.weight"] = 1.0 + 0.1 * torch.randn(c, 1, 1, 1, generator=g)
    _conv(colornet, g, "conv10_ab", 2, 128, 1)
    return {"vgg": vgg, "nonlocal_net": warp, "colornet": colornet}


def _bytes(state) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def release_zip(path, states, drop: str | None = None):
    members = {"checkpoints/video_moredata_l1/nonlocal_net_iter_76000.pth": states["nonlocal_net"],
               "checkpoints/video_moredata_l1/colornet_iter_76000.pth": states["colornet"],
               "data/vgg19_conv.pth": states["vgg"], "data/vgg19_gray.pth": {"features.0.weight": torch.zeros(1)}}
    with zipfile.ZipFile(path, "w") as archive:
        for member, state in members.items():
            if drop is None or drop not in member:
                archive.writestr(member, _bytes(state))
    return path


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    folder = tmp_path_factory.mktemp("devc")
    states = authors_states()
    zipped = release_zip(folder / "colorization_checkpoint.zip", states)
    installed = import_release(zipped, folder / "weights")
    return states, zipped, installed


# --- an independent computation of the authors' inference --------------------------------

def _c(x, s, name, padding=1, stride=1, dilation=1, groups=1):
    return F.conv2d(x, s[f"{name}.weight"], s.get(f"{name}.bias"), stride, padding, dilation, groups)


def _vgg(s, rgb):
    x = (rgb[:, [2, 1, 0]] - torch.tensor([0.40760392, 0.45795686, 0.48501961]).view(1, 3, 1, 1)) * 255
    feats = {}
    for stage, convs in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4)):
        if stage > 1:
            x = F.max_pool2d(x, 2)
        for k in range(1, convs + 1):
            x = F.relu(_c(x, s, f"conv{stage}_{k}"))
            feats[f"r{stage}{k}"] = x
    return [feats[k] for k in ("r22", "r32", "r42", "r52")]


def _prelu(x, s, name):
    return F.prelu(x, s[f"{name}.weight"])


def _rp(x):
    return F.pad(x, (1, 1, 1, 1), mode="reflect")


def _warp_features(s, levels):
    eps = np.finfo(float).eps
    r2, r3, r4, r5 = [f / (f.norm(dim=1, keepdim=True) + eps) for f in levels]

    def unit(x, conv, act, stride=1):
        return _prelu(F.instance_norm(F.conv2d(_rp(x), s[f"{conv}.weight"], s[f"{conv}.bias"], stride)), s, act)

    up = lambda x: F.interpolate(x, scale_factor=2, mode="nearest")  # noqa: E731
    f2 = unit(unit(r2, "layer2_1.1", "layer2_1.3"), "layer2_1.5", "layer2_1.7", stride=2)
    f3 = unit(unit(r3, "layer3_1.1", "layer3_1.3"), "layer3_1.5", "layer3_1.7")
    f4 = up(unit(unit(r4, "layer4_1.1", "layer4_1.3"), "layer4_1.5", "layer4_1.7"))
    f5 = up(unit(up(unit(r5, "layer5_1.1", "layer5_1.3")), "layer5_1.6", "layer5_1.8"))
    if f5.shape[-2:] != f2.shape[-2:]:
        f5 = F.pad(f5, (0, 0, 1, 1), mode="replicate")
    x = torch.cat((f2, f3, f4, f5), 1)
    for b in range(3):
        y = F.prelu(F.instance_norm(_c(_rp(x), s, f"layer.{b}.conv1", padding=0)), s[f"layer.{b}.prelu.weight"])
        y = F.instance_norm(_c(_rp(y), s, f"layer.{b}.conv2", padding=0))
        x = F.prelu(x + y, s[f"layer.{b}.prelu.weight"])
    return x


def authors_warp(states, grey_l, ref_rgb, ref_lab):
    s = states["nonlocal_net"]
    a = _warp_features(s, _vgg(states["vgg"], (grey_l / 100).expand(-1, 3, -1, -1)))
    b = _warp_features(s, _vgg(states["vgg"], ref_rgb))
    eps = np.finfo(float).eps

    def project(x, name):
        x = _c(x, s, name, padding=0).flatten(2)
        x = x - x.mean(-1, keepdim=True)
        return x / (x.norm(dim=1, keepdim=True) + eps)

    theta, phi = project(a, "theta"), project(b, "phi")
    f = torch.einsum("bcn,bcm->bnm", theta, phi)
    similarity = f.max(-1).values
    weights = torch.softmax(f / 1e-10, -1)
    pooled = F.avg_pool2d(torch.cat((ref_lab[:, :1] - 50, ref_lab[:, 1:]), 1), 4).flatten(2)
    warped = torch.einsum("bnm,bcm->bcn", weights, pooled)
    h, w = a.shape[-2:]
    up = lambda x: F.interpolate(x.view(1, -1, h, w), scale_factor=4, mode="nearest")  # noqa: E731
    return up(warped), up(similarity)


def authors_colornet(s, x):
    def stage(x, *names, dilation=1):
        for n in names:
            x = F.relu(_c(x, s, n, padding=dilation, dilation=dilation))
        return F.instance_norm(x)

    def ss(x, name):
        return F.conv2d(x, s[f"{name}.weight"], None, 2, 0, 1, x.shape[1])

    up = lambda x: F.interpolate(x, scale_factor=2, mode="nearest")  # noqa: E731
    x = F.relu(_c(F.relu(_c(x, s, "conv1_1.0")), s, "conv1_1.2"))
    n1 = stage(x, "conv1_2")
    n2 = stage(ss(n1, "conv1_2norm_ss"), "conv2_1", "conv2_2")
    n3 = stage(ss(n2, "conv2_2norm_ss"), "conv3_1", "conv3_2", "conv3_3")
    x = stage(ss(n3, "conv3_3norm_ss"), "conv4_1", "conv4_2", "conv4_3")
    x = stage(x, "conv5_1", "conv5_2", "conv5_3", dilation=2)
    x = stage(x, "conv6_1", "conv6_2", "conv6_3", dilation=2)
    x = stage(x, "conv7_1", "conv7_2", "conv7_3")
    x = stage(F.relu(_c(up(x), s, "conv8_1.1") + _c(n3, s, "conv3_3_short")), "conv8_2", "conv8_3")
    x = stage(F.relu(_c(up(x), s, "conv9_1.1") + _c(n2, s, "conv2_2_short")), "conv9_2")
    x = F.relu(_c(up(x), s, "conv10_1.1") + _c(n1, s, "conv1_2_short"))
    x = F.leaky_relu(_c(x, s, "conv10_2"), 0.2)
    return torch.tanh(_c(x, s, "conv10_ab", padding=0)) * 128


# --- tests ----------------------------------------------------------------------------------

def test_import_checks_and_installs_the_release(release, tmp_path, monkeypatch):
    states, zipped, installed = release
    assert installed.name == "devc.safetensors"
    entry = next(e for e in json.loads((installed.parent / "MANIFEST.json").read_text())["weights"] if e["name"] == "devc")
    assert entry["parameters"] == 20_024_384 + 6_917_131 + 32_802_370  # the release's three networks
    assert set(entry["source"]["files"]) == {"nonlocal_net_iter_76000.pth", "colornet_iter_76000.pth", "vgg19_conv.pth"}
    net = load(installed)
    for part in ("vgg", "nonlocal_net", "colornet"):
        ours = getattr(net, part).state_dict()
        assert set(ours) == set(states[part])
        assert all(torch.equal(ours[k], states[part][k]) for k in ours)
    # the same files in a folder, as the zip unpacks
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(zipped) as archive:
        archive.extractall(folder)
    monkeypatch.setenv("VIDCOLOR_WEIGHTS", str(installed.parent))
    assert "devc\tdevc.safetensors\t59.7 M parameters, from colorization_checkpoint.zip\tok" in run_cli("weights", "list").stdout
    again = import_release(folder, tmp_path / "w2")
    assert torch.equal(load(again).colornet.conv10_ab.weight, states["colornet"]["conv10_ab.weight"])


def test_forward_pass_matches_the_authors_computation(release):
    states, _, installed = release
    net = load(installed)
    g = torch.Generator().manual_seed(3)
    ref_rgb = torch.rand(1, 3, 48, 64, generator=g)
    ref_lab = color.rgb_to_lab(ref_rgb)
    grey = color.rgb_to_lab(torch.rand(2, 3, 48, 64, generator=g))[:, :1]
    with torch.no_grad():
        prepared = net.prepare(ref_rgb, ref_lab)
        warped = net.warp(grey, prepared)
        ab, last = net.colorize(grey, prepared)
        for k in range(2):
            lab, sim = authors_warp(states, grey[k : k + 1], ref_rgb, ref_lab)
            assert torch.allclose(warped.similarity[k : k + 1], sim, atol=1e-5)
            assert torch.allclose(warped.lab[k : k + 1], lab, atol=1e-3)
        previous = torch.zeros(1, 3, 48, 64)
        for k in range(2):
            x = torch.cat((grey[k : k + 1] - 50, warped.lab[k : k + 1, 1:], warped.similarity[k : k + 1], previous), 1)
            expected = authors_colornet(states["colornet"], x)
            assert torch.allclose(ab[k : k + 1], expected, atol=1e-3), (ab[k : k + 1] - expected).abs().max()
            previous = torch.cat((grey[k : k + 1] - 50, expected), 1)
        assert torch.allclose(last, previous, atol=1e-3)
    assert ab.abs().amax() > 1  # a real colour, not a collapsed output


def test_foreign_and_broken_releases_get_one_line_errors(release, tmp_path):
    states, zipped, _ = release
    missing = release_zip(tmp_path / "partial.zip", states, drop="colornet")
    assert_clean_error(run_cli("weights", "import", "devc", missing), "colornet_iter_76000.pth not found")
    wrong = {**states, "colornet": {**states["colornet"], "conv10_ab.weight": torch.zeros(3, 128, 1, 1)}}
    assert_clean_error(run_cli("weights", "import", "devc", release_zip(tmp_path / "shape.zip", wrong)), "conv10_ab.weight")
    foreign = {**states, "nonlocal_net": {"features.0.weight": torch.zeros(3)}}
    assert_clean_error(run_cli("weights", "import", "devc", release_zip(tmp_path / "foreign.zip", foreign)),
                       "not the authors'")
    cut = tmp_path / "cut.zip"
    with zipfile.ZipFile(zipped) as src, zipfile.ZipFile(cut, "w") as dst:
        for member in src.namelist():
            data = src.read(member)
            dst.writestr(member, data[: len(data) // 2] if "colornet" in member else data)
    assert_clean_error(run_cli("weights", "import", "devc", cut), "not a readable PyTorch state dict")
    (tmp_path / "notes.txt").write_text("hello")
    assert_clean_error(run_cli("weights", "import", "devc", tmp_path / "notes.txt"), "neither")


def test_devc_colours_a_film_photos_a_preview_and_an_evaluation(release, tmp_path, monkeypatch):
    _, _, installed = release
    monkeypatch.setenv("VIDCOLOR_WEIGHTS", str(installed.parent))
    film = write_clip(tmp_path / "film.mp4", frames=6, size=(72, 48), content=moving_colour, audio="aac")
    ref = write_png(tmp_path / "ref.png", scene(2, 64))
    out = tmp_path / "film_color.mp4"
    result = run_cli(film, "--model", "devc", "--reference", ref, "-o", out, "--work-res", "48", "-q")
    assert result.code == 0, result.output
    source, coloured = read_clip(film), read_clip(out)
    assert coloured.times == source.times and (coloured.width, coloured.height) == (72, 48)
    assert coloured.audio == source.audio and coloured.audio  # the audio packets, bit-exact
    assert max(mean_chroma(rgb) for rgb in coloured.rgb) > 2
    photos = tmp_path / "photos"
    for k in range(2):
        write_png(photos / f"p{k}.png", scene(k + 5, 56)[..., 0])
    result = run_cli(photos, "--model", "devc", "--reference", ref, "-o", tmp_path / "coloured", "--post", "none", "-q")
    assert result.code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "coloured").iterdir()) == ["p0.png", "p1.png"]
    result = run_cli(film, "--model", "devc", "--reference", ref, "--preview", "-o", tmp_path / "p.png", "-q")
    assert result.code == 0 and (tmp_path / "p.png").is_file(), result.output
    originals = tmp_path / "originals"
    originals.mkdir()
    write_clip(originals / "clip.mp4", frames=4, size=(64, 48), content=moving_colour)
    result = run_cli("eval", originals, "--model", "devc", "--reference-mode", "keyframe", "--json",
                     tmp_path / "eval.json", "-q")
    assert result.code == 0, result.output
    assert json.loads((tmp_path / "eval.json").read_text())
    assert_clean_error(run_cli(film, "--model", "exemplar", "--reference", ref, "--post", "none", "-o",
                               tmp_path / "x.mp4"), "--post is for --model devc")
    assert_clean_error(run_cli(film, "--model", "devc", "--reference", ref, "--post", "strong", "-o",
                               tmp_path / "y.mp4"), "choose authors")


def test_each_frame_of_a_shot_is_fed_the_previous_one(release):
    from vidcolor.colorizers import create
    from vidcolor.colorizers.devc import DEVCPost

    _, _, installed = release
    colorizer = create("devc", weights=installed, options=DEVCPost.named("none"))
    prepared = colorizer.prepare(torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(1)))
    frames = color.rgb_to_lab(torch.rand(3, 3, 40, 56, generator=torch.Generator().manual_seed(2)))[:, :1]
    alone = colorizer.colorize(frames, prepared)
    colorizer.new_shot()
    shot = colorizer.colorize(frames[:1], prepared, sequence=True)
    shot = torch.cat((shot, colorizer.colorize(frames[1:], prepared, sequence=True)))
    assert torch.allclose(shot[:1], alone[:1], atol=1e-4)  # the first frame of a shot: no previous colour
    assert (shot[1:] - alone[1:]).abs().amax() > 1e-2  # later frames see the previous frame's colour
    with torch.no_grad():  # what the network gives with the first frame's Lab fed to the next
        first, last = colorizer.net.colorize(frames[:1], prepared)
        rest, _ = colorizer.net.colorize(frames[1:], prepared, last)
    assert torch.equal(shot, torch.cat((first, rest)))
    assert alone.shape == (3, 2, 40, 56)


def test_the_authors_post_processing():
    from vidcolor.colorizers.devc import DEVCPost

    ab = torch.randn(1, 2, 24, 32) * 10
    lightness = torch.full((1, 1, 24, 32), 50.0)
    assert torch.allclose(DEVCPost.named("boost")(ab, lightness), ab * 1.25)
    assert torch.equal(DEVCPost.named("none")(ab, lightness), ab)
    smoothed = DEVCPost.named("smooth")(ab, lightness)
    assert smoothed.std() < 0.5 * ab.std()  # flat guide: noise is smoothed away
    assert torch.allclose(smoothed.mean(), ab.mean(), atol=0.3)


def _dense_line(values: np.ndarray, guide: np.ndarray, lam: float, sigma: float) -> np.ndarray:
    n = len(values)
    w = np.exp(-np.abs(np.diff(guide)) / sigma)
    a = np.eye(n)
    for j in range(n - 1):
        a[j, j] += lam * w[j]
        a[j + 1, j + 1] += lam * w[j]
        a[j, j + 1] -= lam * w[j]
        a[j + 1, j] -= lam * w[j]
    return np.linalg.solve(a, values)


def test_fast_global_smoother_solves_the_weighted_least_squares_lines():
    rng = np.random.default_rng(0)
    values = rng.normal(size=40)
    guide = np.where(np.arange(40) < 20, 30.0, 200.0) + rng.normal(size=40)
    # one row, one iteration: the 1-D system solved exactly
    out = fast_global_smoother(torch.tensor(values).view(1, 1, 1, 40), torch.tensor(guide).view(1, 1, 1, 40),
                               lam=50.0, sigma_color=4.0, iterations=1)
    assert np.allclose(out.view(-1).numpy(), _dense_line(values, guide, 50.0, 4.0), atol=1e-9)
    # a column too
    out = fast_global_smoother(torch.tensor(values).view(1, 1, 40, 1), torch.tensor(guide).view(1, 1, 40, 1),
                               lam=50.0, sigma_color=4.0, iterations=1)
    assert np.allclose(out.view(-1).numpy(), _dense_line(values, guide, 50.0, 4.0), atol=1e-9)
    # 2-D: a step in the guide keeps the step in the values; noise on each side goes
    step = torch.zeros(1, 1, 16, 16)
    step[..., 8:] = 40.0
    noisy = step + torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    smoothed = fast_global_smoother(noisy, step * 4, lam=500.0, sigma_color=4.0)
    assert (smoothed - step).abs().mean() < 0.5 * (noisy - step).abs().mean()
    assert smoothed[..., 8:].mean() - smoothed[..., :8].mean() > 38


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_devc_on_cuda_agrees_with_the_cpu(release):
    """On CUDA the correspondence runs through the fused matching kernel."""
    from vidcolor.colorizers import create
    from vidcolor.colorizers.devc import DEVCPost

    _, _, installed = release
    reference = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(7))
    frames = color.rgb_to_lab(torch.rand(2, 3, 48, 64, generator=torch.Generator().manual_seed(8)))[:, :1]
    out = {}
    for device in ("cpu", "cuda"):
        colorizer = create("devc", device=device, weights=installed, options=DEVCPost.named("none"))
        with torch.no_grad():
            warped = colorizer.net.warp(frames.to(device), colorizer.prepare(reference))
        out[device] = warped.similarity.cpu()
    assert torch.allclose(out["cpu"], out["cuda"], atol=1e-2)
