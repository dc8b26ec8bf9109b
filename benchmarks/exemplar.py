"""The exemplar network: the correspondence design, measured, and its speed on this machine.

1. Correspondence. Each photo of a set (default kodak24) is the reference; the target is
   the same photo under a known smooth deformation (a random displacement field, Gaussian-
   smoothed, up to ``--amplitude`` pixels, plus a shift) and a brightness change, so the true
   ``phi_T->R`` is known. Variants of the Similarity sub-net's matching are compared on
   end-point error (median, and the share of pixels within 2 px), on PSNR of the target's L
   with the warped reference ab (R'_ab) against the original, and on time per pair:
   - global: matching at level 4 (stride 8) only, the field enlarged;
   - soft: attention at level 3 (stride 4) with temperature 0.01, warped ab and positions
     as softmax-weighted means, enlarged bilinearly;
   - c2f: global at level 4, then window search (radius 1) at each finer level;
   - c2f+prop: the same with PatchMatch-style propagation from the four neighbours;
   - x2, x3: two or three rounds of search and propagation per level (two: the default);
   - r2: radius 2; "to level 2": refinement stops at stride 2, the field is enlarged.
   Features: the backbone named by ``--backbone`` with the weights of ``--weights`` (an
   exemplar checkpoint) or, without, a fixed random initialisation (seed 0).
2. Speed: seconds per frame of the Similarity sub-net and of the Colorization sub-net for a
   batch of frames at work resolution 256 (256x448 for 16:9), U-Net widths 16, 32 and 64.

    .venv/bin/python benchmarks/exemplar.py [--set kodak24] [--pairs 12] [--runs 3] [--json out.json]
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

import common
from vidcolor.models.exemplar import backbones
from vidcolor.ops import color
from vidcolor.models.exemplar import correspondence as corr
from vidcolor.models.exemplar.network import ExemplarConfig, ExemplarNet, lightness_to_grey, load
from vidcolor.io.images import list_images, read_rgb
from vidcolor.eval.metrics import psnr


def deform(rgb: torch.Tensor, amplitude: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Target = reference read at ``field``: returns (target, field), field ``(1, h, w, 2)``."""
    g = torch.Generator().manual_seed(seed)
    _, _, h, w = rgb.shape
    coarse = torch.randn(1, 2, 6, 6, generator=g)
    disp = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    disp = disp / disp.abs().amax() * amplitude
    shift = (torch.rand(2, generator=g) - 0.5) * amplitude
    disp = disp + shift.view(1, 2, 1, 1)
    pixels = corr.pixel_grid(1, h, w, "cpu").permute(0, 3, 1, 2)
    scale = torch.tensor([2.0 / w, 2.0 / h]).view(1, 2, 1, 1)
    field = (pixels + disp * scale).permute(0, 2, 3, 1)
    target = corr.sample(rgb, field)
    return (target * (0.85 + 0.3 * torch.rand(1, generator=g).item())).clamp(0, 1), field


def soft_field(t_levels, r_levels, reference_ab, size, level=3, temperature=0.01):
    query = corr.matching_features(t_levels, level)
    keys = corr.matching_features(r_levels, level)
    h, w = query.shape[-2:]
    grid = corr.pixel_grid(1, *keys.shape[-2:], "cpu")
    ab = F.interpolate(reference_ab, size=keys.shape[-2:], mode="area")
    values = torch.cat((corr.flatten(ab), grid.reshape(1, -1, 2)), 2)
    found = corr.match(corr.flatten(query), corr.flatten(keys), values, temperature)
    soft = found.soft.transpose(1, 2).reshape(1, 4, h, w)
    soft = F.interpolate(soft, size=size, mode="bilinear", align_corners=False)
    return soft[:, 2:].permute(0, 2, 3, 1), soft[:, :2]


def variants():
    def hard(match_level, finest, radius, propagate, iterations=1):
        def run(t, r, ref_ab, size):
            field = corr.nearest_field(t, r, match_level, finest, radius, propagate, iterations)
            field = corr.resize_field(field, *size)
            return field, corr.sample(ref_ab, field)

        return run

    return {
        "global": hard(4, 4, 1, False),
        "soft": soft_field,
        "c2f": hard(4, 1, 1, False),
        "c2f+prop": hard(4, 1, 1, True),
        "c2f+prop x2": hard(4, 1, 1, True, 2),
        "c2f+prop x3": hard(4, 1, 1, True, 3),
        "c2f+prop r2": hard(4, 1, 2, True),
        "c2f+prop x2 to level 2": hard(4, 2, 1, True, 2),
    }


def correspondence_table(args, backbone) -> tuple[str, dict]:
    photos = list_images(args.eval / "photos" / args.set)[0][: args.pairs]
    if not photos:
        raise SystemExit(f"no photos in {args.eval / 'photos' / args.set}")
    stats = {name: {"epe": [], "within2": [], "psnr": [], "seconds": []} for name in variants()}
    grey_psnr = []
    for k, path in enumerate(photos):
        rgb = torch.from_numpy(read_rgb(path)).permute(2, 0, 1)[None].float() / 255
        rgb = color.resize(rgb, color.work_size(*rgb.shape[-2:], args.work_res))
        target, truth = deform(rgb, args.amplitude, seed=k)
        t_lab, r_lab = color.rgb_to_lab(target), color.rgb_to_lab(rgb)
        size = tuple(target.shape[-2:])
        h, w = size
        inside = (truth.abs() < 1).all(-1)[0]
        original = (target * 255).round().byte()[0].permute(1, 2, 0).numpy()
        with torch.no_grad():
            t_levels = [corr.l2_normalise(f) for f in backbone(lightness_to_grey(t_lab[:, :1]))]
            r_levels = [corr.l2_normalise(f) for f in backbone(lightness_to_grey(r_lab[:, :1]))]
            for name, run in variants().items():
                start = time.perf_counter()
                field, ab = run(t_levels, r_levels, r_lab[:, 1:], size)
                stats[name]["seconds"].append(time.perf_counter() - start)
                err = ((field - truth) * torch.tensor([w / 2, h / 2])).norm(dim=-1)[0][inside]
                stats[name]["epe"].append(float(err.median()))
                stats[name]["within2"].append(float((err <= 2).float().mean()))
                out = color.lab_to_rgb(torch.cat((t_lab[:, :1], ab), 1))
                stats[name]["psnr"].append(psnr((out * 255).round().byte()[0].permute(1, 2, 0).numpy(), original))
            grey = color.lab_to_rgb(torch.cat((t_lab[:, :1], torch.zeros_like(t_lab[:, 1:])), 1))
            grey_psnr.append(psnr((grey * 255).round().byte()[0].permute(1, 2, 0).numpy(), original))
    rows = [
        [name, f"{np.median(s['epe']):.2f}", f"{100 * np.mean(s['within2']):.1f}%", f"{np.mean(s['psnr']):.2f}", f"{1000 * np.median(s['seconds']):.0f}"]
        for name, s in stats.items()
    ]
    rows.append(["grey (no colour)", "", "", f"{np.mean(grey_psnr):.2f}", ""])
    text = common.table(["matching", "median EPE (px)", "within 2 px", "PSNR L+R'ab (dB)", "ms per pair"], rows)
    return text, {"correspondence": stats, "grey_psnr": grey_psnr}


def speed_table(args, backbone_name: str) -> tuple[str, dict]:
    rows, results = [], {}
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    lightness = torch.rand(args.batch, 1, 256, 448, device=device) * 100
    reference = torch.rand(1, 3, 256, 448, device=device)

    def now() -> float:
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    for width in (16, 32, 64):
        torch.manual_seed(0)
        net = ExemplarNet(ExemplarConfig(backbone=backbone_name, width=width)).eval().to(device)
        if cuda:  # as the exemplar colorizer runs it: channels-last, bf16 autocast
            net = net.to(memory_format=torch.channels_last)
        sim_t, col_t = [], []
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            prepared = net.prepare(reference)
            for _ in range(args.runs + 1):  # the first run warms up
                start = now()
                found = net.similarity(lightness, prepared)
                mid = now()
                net.colorize(lightness, found.warped_ab, found.similarity)
                end = now()
                sim_t.append((mid - start) / args.batch)
                col_t.append((end - mid) / args.batch)
        sim, col = common.median(sim_t[1:]), common.median(col_t[1:])
        params = sum(p.numel() for p in net.colorizer.parameters())
        results[width] = {"similarity_s": sim, "colorization_s": col, "unet_parameters": params}
        rows.append([width, f"{params / 1e6:.1f} M", f"{sim:.3f}", f"{col:.3f}", f"{1 / (sim + col):.2f}"])
    text = common.table(["U-Net width", "parameters", "similarity s/frame", "colorization s/frame", "frames/s"], rows)
    return text, results


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], runs=3)
    p.add_argument("--set", default="kodak24")
    p.add_argument("--pairs", type=int, default=12)
    p.add_argument("--amplitude", type=float, default=12.0, help="largest displacement in pixels")
    p.add_argument("--work-res", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--backbone", default="compact", choices=backbones.names())
    p.add_argument("--weights", help="exemplar checkpoint whose backbone to use")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-correspondence", action="store_true")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the speed table is measured")
    args = p.parse_args()
    torch.manual_seed(0)
    backbone = load(args.weights).backbone if args.weights else backbones.create(args.backbone).eval()
    name = backbone.name
    text, results = "", {}
    if not args.skip_correspondence:
        text, results = correspondence_table(args, backbone)
        source = f"weights {args.weights}" if args.weights else "random initialisation, seed 0"
        text = f"### Correspondence on {args.set} ({args.pairs} photos, deformation up to {args.amplitude:g} px; backbone {name}, {source})\n\n{text}"
    if not args.skip_speed:
        speed, timing = speed_table(args, name)
        where = torch.cuda.get_device_name() + ", bf16 autocast, channels-last" if args.device == "cuda" else f"CPU, torch threads {torch.get_num_threads()}"
        text += f"\n\n### Speed (batch {args.batch} at 256x448, {where})\n\n{speed}"
        results["speed"] = timing
    common.report("Exemplar network", text, results, args)


if __name__ == "__main__":
    main()
