"""``ddcolor``: the authors' DDColor checkpoints (Kang et al. 2023) imported and run.

Checkpoints are made here with the authors' key layout (written out below from the
published architecture, not from our modules), at the real shapes of the tiny model, and
of the large one with constant values (so the file stays small). The forward pass is
checked against an independent computation written here with functional operations on the
state dict (spectral normalisation from the stored singular vectors, BatchNorm from its
running statistics, attention written out).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import assert_clean_error, moving_grey, read_clip, run_cli, scene, write_clip, write_png
from vidcolor.models import automatic
from vidcolor.models.ddcolor.release import import_release

TINY = ((3, 3, 9, 3), (96, 192, 384, 768))
LARGE = ((3, 3, 27, 3), (192, 384, 768, 1536))


# --- the authors' layout ------------------------------------------------------------------

def authors_layout(depths, dims, single: bool = False, queries: int = 100) -> dict[str, tuple]:
    """Every key of the released state dict with its shape."""
    keys: dict[str, tuple] = {"mean": (1, 3, 1, 1), "std": (1, 3, 1, 1)}
    e = "encoder.arch."
    keys[e + "downsample_layers.0.0.weight"], keys[e + "downsample_layers.0.0.bias"] = (dims[0], 3, 4, 4), (dims[0],)
    keys[e + "downsample_layers.0.1.weight"] = keys[e + "downsample_layers.0.1.bias"] = (dims[0],)
    for i in range(1, 4):
        keys[f"{e}downsample_layers.{i}.0.weight"] = keys[f"{e}downsample_layers.{i}.0.bias"] = (dims[i - 1],)
        keys[f"{e}downsample_layers.{i}.1.weight"] = (dims[i], dims[i - 1], 2, 2)
        keys[f"{e}downsample_layers.{i}.1.bias"] = (dims[i],)
    for s, (n, c) in enumerate(zip(depths, dims)):
        for j in range(n):
            p = f"{e}stages.{s}.{j}."
            keys.update({p + "gamma": (c,), p + "dwconv.weight": (c, 1, 7, 7), p + "dwconv.bias": (c,),
                         p + "norm.weight": (c,), p + "norm.bias": (c,), p + "pwconv1.weight": (4 * c, c),
                         p + "pwconv1.bias": (4 * c,), p + "pwconv2.weight": (c, 4 * c), p + "pwconv2.bias": (c,)})
    for i, c in enumerate(dims):
        keys[f"{e}norm{i}.weight"] = keys[f"{e}norm{i}.bias"] = (c,)
    keys[e + "norm.weight"] = keys[e + "norm.bias"] = (dims[3],)

    def sn(p, cout, cin, k, bias):
        keys[p + "weight_orig"], keys[p + "weight_u"], keys[p + "weight_v"] = (cout, cin, k, k), (cout,), (cin * k * k,)
        if bias:
            keys[p + "bias"] = (cout,)

    def bn(p, c):
        for name in ("weight", "bias", "running_mean", "running_var"):
            keys[p + name] = (c,)
        keys[p + "num_batches_tracked"] = ()

    for i, (up_in, skip, out) in enumerate([(dims[3], dims[2], 512), (512, dims[1], 512), (512, dims[0], 256)]):
        p = f"decoder.layers.{i}."
        sn(p + "shuf.conv.0.", out * 4, up_in, 1, False)
        bn(p + "shuf.conv.1.", out * 4)
        bn(p + "bn.", skip)
        sn(p + "conv.0.", out, out + skip, 3, False)
        bn(p + "conv.2.", out)
    sn("decoder.last_shuf.conv.0.", 4096, 256, 1, True)

    def mha(p):
        keys.update({p + "in_proj_weight": (768, 256), p + "in_proj_bias": (768,), p + "out_proj.weight": (256, 256),
                     p + "out_proj.bias": (256,)})

    c = "decoder.color_decoder."
    if single:
        for j in range(6):
            p = f"{c}transformer.decoder.layers.{j}."
            mha(p + "self_attn.")
            mha(p + "multihead_attn.")
            keys.update({p + "linear1.weight": (2048, 256), p + "linear1.bias": (2048,), p + "linear2.weight": (256, 2048),
                         p + "linear2.bias": (256,)})
            for k in (1, 2, 3):
                keys[f"{p}norm{k}.weight"] = keys[f"{p}norm{k}.bias"] = (256,)
        keys[c + "transformer.decoder.norm.weight"] = keys[c + "transformer.decoder.norm.bias"] = (256,)
        keys[c + "query_embed.weight"] = (queries, 256)
        keys[c + "input_proj.weight"], keys[c + "input_proj.bias"] = (256, dims[3], 1, 1), (256,)
    else:
        for j in range(9):
            mha(f"{c}transformer_self_attention_layers.{j}.self_attn.")
            mha(f"{c}transformer_cross_attention_layers.{j}.multihead_attn.")
            for layer in ("transformer_self_attention_layers", "transformer_cross_attention_layers", "transformer_ffn_layers"):
                keys[f"{c}{layer}.{j}.norm.weight"] = keys[f"{c}{layer}.{j}.norm.bias"] = (256,)
            p = f"{c}transformer_ffn_layers.{j}."
            keys.update({p + "linear1.weight": (2048, 256), p + "linear1.bias": (2048,), p + "linear2.weight": (256, 2048),
                         p + "linear2.bias": (256,)})
        keys[c + "decoder_norm.weight"] = keys[c + "decoder_norm.bias"] = (256,)
        keys[c + "query_feat.weight"] = keys[c + "query_embed.weight"] = (queries, 256)
        keys[c + "level_embed.weight"] = (3, 256)
        for i, cin in enumerate((512, 512, 256)):
            keys[f"{c}input_proj.{i}.weight"], keys[f"{c}input_proj.{i}.bias"] = (256, cin, 1, 1), (256,)
        for i in range(3):
            keys[f"{c}color_embed.layers.{i}.weight"], keys[f"{c}color_embed.layers.{i}.bias"] = (256, 256), (256,)
    sn("refine_net.0.0.", 2, queries + 3, 1, True)
    return keys


def random_state(layout: dict[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout.items():
        if key == "mean":
            state[key] = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        elif key == "std":
            state[key] = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        elif key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=g)
        elif key.endswith(("weight_u", "weight_v")):
            state[key] = F.normalize(torch.randn(shape, generator=g), dim=0)
        elif key.endswith("gamma"):
            state[key] = 0.1 + 0.1 * torch.rand(shape, generator=g)
        elif len(shape) >= 2:
            fan_in = math.prod(shape[1:])
            state[key] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        elif key.endswith("norm.weight") or ".norm" in key and key.endswith("weight") or key.endswith("bn.weight"):
            state[key] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            state[key] = 0.05 * torch.randn(shape, generator=g)
    return state


# --- an independent computation ------------------------------------------------------------

def _ln_cf(x, s, p):
    u = x.mean(1, keepdim=True)
    v = ((x - u) ** 2).mean(1, keepdim=True)
    return (x - u) / torch.sqrt(v + 1e-6) * s[p + "weight"][:, None, None] + s[p + "bias"][:, None, None]


def _sn(s, p):
    w = s[p + "weight_orig"]
    return w / (s[p + "weight_u"] @ (w.reshape(w.shape[0], -1) @ s[p + "weight_v"]))


def _bn(x, s, p):
    return ((x - s[p + "running_mean"][:, None, None]) / torch.sqrt(s[p + "running_var"][:, None, None] + 1e-5)
            * s[p + "weight"][:, None, None] + s[p + "bias"][:, None, None])


def _shuffle_blur(x, r):
    b, c, h, w = x.shape
    y = x.view(b, c // (r * r), r, r, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c // (r * r), h * r, w * r)
    y = F.pad(y, (1, 0, 1, 0), mode="replicate")
    return (y[..., 1:, 1:] + y[..., :-1, 1:] + y[..., 1:, :-1] + y[..., :-1, :-1]) / 4


def _attention(s, p, q, k, v):
    w, bias = s[p + "in_proj_weight"], s[p + "in_proj_bias"]
    q, k, v = q @ w[:256].T + bias[:256], k @ w[256:512].T + bias[256:512], v @ w[512:].T + bias[512:]
    heads = lambda t: t.view(t.shape[0], t.shape[1], 8, 32).transpose(1, 2)  # noqa: E731
    a = torch.softmax(heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(32), -1) @ heads(v)
    return a.transpose(1, 2).reshape(q.shape[0], q.shape[1], 256) @ s[p + "out_proj.weight"].T + s[p + "out_proj.bias"]


def _ln(x, s, p):
    return F.layer_norm(x, (256,), s[p + "weight"], s[p + "bias"], 1e-5)


def _positions(h, w):
    def enc(n):
        p = torch.arange(1, n + 1, dtype=torch.float64) / (n + 1e-6) * 2 * math.pi
        out = torch.zeros(n, 128, dtype=torch.float64)
        for m in range(64):
            out[:, 2 * m] = torch.sin(p / 10000 ** (2 * m / 128))
            out[:, 2 * m + 1] = torch.cos(p / 10000 ** (2 * m / 128))
        return out.float()

    y, x = enc(h), enc(w)
    return torch.cat((y[:, None].expand(h, w, 128), x[None].expand(h, w, 128)), 2).reshape(1, h * w, 256)


def authors_forward(s, grey_rgb, depths, single=False):
    x = (grey_rgb - s["mean"]) / s["std"]
    e = "encoder.arch."
    feats, h = [], x
    for i in range(4):
        if i == 0:
            h = _ln_cf(F.conv2d(h, s[e + "downsample_layers.0.0.weight"], s[e + "downsample_layers.0.0.bias"], 4),
                       s, e + "downsample_layers.0.1.")
        else:
            h = F.conv2d(_ln_cf(h, s, f"{e}downsample_layers.{i}.0."), s[f"{e}downsample_layers.{i}.1.weight"],
                         s[f"{e}downsample_layers.{i}.1.bias"], 2)
        for j in range(depths[i]):
            p = f"{e}stages.{i}.{j}."
            y = F.conv2d(h, s[p + "dwconv.weight"], s[p + "dwconv.bias"], padding=3, groups=h.shape[1]).permute(0, 2, 3, 1)
            y = F.layer_norm(y, y.shape[-1:], s[p + "norm.weight"], s[p + "norm.bias"], 1e-6)
            y = F.linear(F.gelu(F.linear(y, s[p + "pwconv1.weight"], s[p + "pwconv1.bias"])), s[p + "pwconv2.weight"],
                         s[p + "pwconv2.bias"]) * s[p + "gamma"]
            h = h + y.permute(0, 3, 1, 2)
        feats.append(_ln_cf(h, s, f"{e}norm{i}."))

    def block(i, up, skip):
        p = f"decoder.layers.{i}."
        u = _shuffle_blur(F.relu(_bn(F.conv2d(up, _sn(s, p + "shuf.conv.0.")), s, p + "shuf.conv.1.")), 2)
        cat = F.relu(torch.cat((u, _bn(skip, s, p + "bn.")), 1))
        return _bn(F.relu(F.conv2d(cat, _sn(s, p + "conv.0."), padding=1)), s, p + "conv.2.")

    out0 = block(0, feats[3], feats[2])
    out1 = block(1, out0, feats[1])
    out2 = block(2, out1, feats[0])
    pixels = _shuffle_blur(F.relu(F.conv2d(out2, _sn(s, "decoder.last_shuf.conv.0."), s["decoder.last_shuf.conv.0.bias"])), 4)
    c = "decoder.color_decoder."
    b = x.shape[0]
    if single:
        mem = F.conv2d(feats[3], s[c + "input_proj.weight"], s[c + "input_proj.bias"]).flatten(2).transpose(1, 2)
        pos = _positions(*feats[3].shape[-2:])
        qpos = s[c + "query_embed.weight"][None].expand(b, -1, -1)
        t = torch.zeros_like(qpos)
        for j in range(6):
            p = f"{c}transformer.decoder.layers.{j}."
            t = _ln(t + _attention(s, p + "self_attn.", t + qpos, t + qpos, t), s, p + "norm1.")
            t = _ln(t + _attention(s, p + "multihead_attn.", t + qpos, mem + pos, mem), s, p + "norm2.")
            f = F.linear(F.relu(F.linear(t, s[p + "linear1.weight"], s[p + "linear1.bias"])), s[p + "linear2.weight"],
                         s[p + "linear2.bias"])
            t = _ln(t + f, s, p + "norm3.")
        embed = _ln(t, s, c + "transformer.decoder.norm.")
    else:
        levels = [out0, out1, out2]
        mems = [F.conv2d(lv, s[f"{c}input_proj.{i}.weight"], s[f"{c}input_proj.{i}.bias"]).flatten(2).transpose(1, 2)
                + s[c + "level_embed.weight"][i] for i, lv in enumerate(levels)]
        poss = [_positions(*lv.shape[-2:]) for lv in levels]
        qpos = s[c + "query_embed.weight"][None].expand(b, -1, -1)
        t = s[c + "query_feat.weight"][None].expand(b, -1, -1)
        for j in range(9):
            lv = j % 3
            p = f"{c}transformer_cross_attention_layers.{j}."
            t = _ln(t + _attention(s, p + "multihead_attn.", t + qpos, mems[lv] + poss[lv], mems[lv]), s, p + "norm.")
            p = f"{c}transformer_self_attention_layers.{j}."
            t = _ln(t + _attention(s, p + "self_attn.", t + qpos, t + qpos, t), s, p + "norm.")
            p = f"{c}transformer_ffn_layers.{j}."
            f = F.linear(F.relu(F.linear(t, s[p + "linear1.weight"], s[p + "linear1.bias"])), s[p + "linear2.weight"],
                         s[p + "linear2.bias"])
            t = _ln(t + f, s, p + "norm.")
        embed = _ln(t, s, c + "decoder_norm.")
        for i in range(3):
            embed = F.linear(embed, s[f"{c}color_embed.layers.{i}.weight"], s[f"{c}color_embed.layers.{i}.bias"])
            embed = F.relu(embed) if i < 2 else embed
    maps = torch.einsum("bqc,bchw->bqhw", embed, pixels)
    return F.conv2d(torch.cat((maps, x), 1), _sn(s, "refine_net.0.0."), s["refine_net.0.0.bias"])


# --- tests ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddcolor")
    state = random_state(authors_layout(*TINY))
    path = folder / "ddcolor_paper_tiny.pth"
    extra = {"encoder.arch.head_cls.weight": torch.zeros(4, 768), "encoder.arch.head_cls.bias": torch.zeros(4)}
    torch.save({"params": {**state, **extra}}, path)
    installed = import_release(path, folder / "weights", any_hash=True)
    return state, path, installed


def test_import_recognises_checks_and_installs(tiny, monkeypatch):
    state, path, installed = tiny
    net = automatic.load(installed, "ddcolor")
    assert (net.config.encoder, net.config.decoder, net.config.num_queries, net.config.input_size) == ("tiny", "multi", 100, 512)
    ours = net.state_dict()
    assert set(ours) == set(state)  # the classifier head is dropped
    assert all(torch.equal(ours[k], state[k].to(ours[k].dtype)) for k in ours)
    entry = next(e for e in json.loads((installed.parent / "MANIFEST.json").read_text())["weights"] if e["name"] == "ddcolor")
    assert entry["parameters"] == 55_006_640 and entry["source"]["official"] is False
    result = run_cli("weights", "import", "ddcolor", path)
    assert_clean_error(result, "sha256", "none of the published", "--any-hash")
    monkeypatch.setenv("VIDCOLOR_WEIGHTS", str(installed.parent))
    listed = run_cli("weights", "list").stdout
    assert "ddcolor\tddcolor.safetensors\t55.0 M parameters, from ddcolor_paper_tiny.pth (not the published file)\tok" in listed


def test_forward_pass_matches_the_authors_computation(tiny):
    state, _, installed = tiny
    net = automatic.load(installed, "ddcolor")
    grey = torch.rand(1, 1, 64, 96, generator=torch.Generator().manual_seed(4)).expand(-1, 3, -1, -1)
    with torch.no_grad():
        ours = net(grey)
        expected = authors_forward(state, grey, TINY[0])
    assert ours.shape == (1, 2, 64, 96)
    assert torch.allclose(ours, expected, atol=1e-3 * expected.abs().amax()), (ours - expected).abs().max()


def test_the_authors_recipe_resizes_to_512_and_back_by_nearest_neighbours(tiny):
    _, _, installed = tiny
    net = automatic.load(installed, "ddcolor")
    lightness = torch.rand(1, 1, 40, 72, generator=torch.Generator().manual_seed(5)) * 100
    from vidcolor.ops import color

    with torch.no_grad():
        ab = net.colorize(lightness)
        grey = F.interpolate(color.lightness_to_grey(lightness), size=(512, 512), mode="bilinear", align_corners=False)
        full = net(grey.expand(-1, 3, -1, -1))
    rows = (torch.arange(40) * 512 / 40).floor().long()
    cols = (torch.arange(72) * 512 / 72).floor().long()
    assert torch.allclose(ab, full[..., rows[:, None], cols[None, :]], atol=1e-4)


def test_single_scale_and_large_variants_are_recognised(tmp_path):
    state = random_state(authors_layout(*TINY, single=True, queries=256), seed=1)
    torch.save(state, tmp_path / "single.pth")
    net = automatic.load(import_release(tmp_path / "single.pth", tmp_path / "w1", any_hash=True), "ddcolor")
    assert (net.config.decoder, net.config.num_queries) == ("single", 256)
    grey = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(6)).expand(-1, 3, -1, -1)
    with torch.no_grad():
        ours, expected = net(grey), authors_forward(state, grey, TINY[0], single=True)
    assert torch.allclose(ours, expected, atol=1e-3 * expected.abs().amax())
    # the large encoder, at its real shapes (constant values keep the file small)
    large = {k: torch.ones(1).expand(shape) if shape else torch.tensor(0) for k, shape in authors_layout(*LARGE).items()}
    torch.save({"params": large}, tmp_path / "large.pth")
    net = automatic.load(import_release(tmp_path / "large.pth", tmp_path / "w2", any_hash=True), "ddcolor")
    assert net.config.encoder == "large" and sum(p.numel() for p in net.parameters()) == 227_869_328


def test_unknown_variants_and_broken_files_get_one_line_errors(tmp_path):
    small = {k: torch.zeros(shape) for k, shape in authors_layout((3, 3, 27, 3), TINY[1]).items()}  # ConvNeXt-S
    torch.save(small, tmp_path / "small.pth")
    assert_clean_error(run_cli("weights", "import", "ddcolor", tmp_path / "small.pth", "--any-hash"), "none of the released")
    tiny_keys = {k: torch.zeros(shape) for k, shape in authors_layout(*TINY).items()}
    torch.save({**tiny_keys, "refine_net.0.0.weight_orig": torch.zeros(2, 103, 3, 3)}, tmp_path / "shape.pth")
    assert_clean_error(run_cli("weights", "import", "ddcolor", tmp_path / "shape.pth", "--any-hash"),
                       "refine_net.0.0.weight_orig")
    del tiny_keys["decoder.color_decoder.decoder_norm.weight"]
    torch.save(tiny_keys, tmp_path / "missing.pth")
    assert_clean_error(run_cli("weights", "import", "ddcolor", tmp_path / "missing.pth", "--any-hash"), "missing")
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "vgg.pth")
    assert_clean_error(run_cli("weights", "import", "ddcolor", tmp_path / "vgg.pth", "--any-hash"), "not ddcolor weights")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "vgg.pth").read_bytes()[:100])
    assert_clean_error(run_cli("weights", "import", "ddcolor", tmp_path / "cut.pth", "--any-hash"), "not a readable")


def test_ddcolor_colours_photos_a_film_a_preview_and_an_evaluation(tiny, tmp_path):
    from vidcolor.models.ddcolor.network import DDColor

    state, _, installed = tiny
    small = DDColor(DDColor.Config(input_size=64))  # the same weights, run at 64 x 64 to keep the test short
    small.load_state_dict(automatic.load(installed, "ddcolor").state_dict())
    weights = tmp_path / "ddcolor64.safetensors"
    automatic.save(small.eval(), weights)
    photo = write_png(tmp_path / "photo.png", scene(3, 72)[..., 0])
    result = run_cli(photo, "--auto", "--model", "ddcolor", "--weights", installed, "-o", tmp_path / "photo_c.png", "-q")
    assert result.code == 0, result.output
    folder = tmp_path / "photos"
    for k in range(2):
        write_png(folder / f"p{k}.png", scene(k, 56)[..., 1])
    result = run_cli(folder, "--auto", "--model", "ddcolor", "--weights", weights, "-o", tmp_path / "out", "-q")
    assert result.code == 0 and len(list((tmp_path / "out").iterdir())) == 2, result.output
    film = write_clip(tmp_path / "film.mp4", frames=5, size=(64, 48), content=moving_grey, audio="aac")
    result = run_cli(film, "--auto", "--model", "ddcolor", "--weights", weights, "-o", tmp_path / "film_c.mp4", "-q")
    assert result.code == 0, result.output
    source, coloured = read_clip(film), read_clip(tmp_path / "film_c.mp4")
    assert coloured.times == source.times and coloured.audio == source.audio and coloured.audio
    assert np.abs(coloured.rgb[2].astype(int)[..., 0] - coloured.rgb[2].astype(int)[..., 2]).max() > 0  # coloured
    result = run_cli(film, "--auto", "--model", "ddcolor", "--weights", weights, "--preview", "-o", tmp_path / "p.png", "-q")
    assert result.code == 0 and (tmp_path / "p.png").is_file(), result.output
    originals = tmp_path / "originals"
    originals.mkdir()
    write_png(originals / "a.png", scene(8, 64))
    result = run_cli("eval", originals, "--model", "ddcolor", "--reference-mode", "none", "--weights", weights, "--json", tmp_path / "e.json", "-q")
    assert result.code == 0, result.output
    assert json.loads((tmp_path / "e.json").read_text())
    assert_clean_error(run_cli("train", "ddcolor", "--data", originals, "--out", tmp_path / "run"), "unknown model")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_ddcolor_on_cuda_agrees_with_the_cpu(tiny):
    from vidcolor.colorizers import create

    _, _, installed = tiny
    lightness = torch.rand(1, 1, 40, 72, generator=torch.Generator().manual_seed(9)) * 100
    out = {}
    for device in ("cpu", "cuda"):
        with torch.no_grad():
            out[device] = create("ddcolor", device=device, weights=installed).colorize(lightness.to(device)).cpu()
    assert (out["cpu"] - out["cuda"]).abs().mean() < 0.05 * out["cpu"].abs().mean() + 0.5  # bf16 autocast on the GPU
