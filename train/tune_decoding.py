"""Tune an automatic network's decoding on the validation split and store the choice with
its weights: eccv16's annealed-mean temperature T (Zhang et al. 2016, section 3.1) or
larsson's chromatic fading eta (Larsson et al. 2016, section 3.3).

    python train/tune_decoding.py eccv16 [--data runs/data/val] [--max-frames 24]
                                         [--weights FILE] [--out FILE]

Each candidate value colours the validation clips (``vidcolor eval --reference-mode none``,
per frame). The choice: the highest class-rebalanced AuC among the values whose PSNR is at
most ``--psnr-margin`` dB under grey's (vivid colour that is wrong costs more than no
colour); when none is, the value of the highest PSNR. The table of every value is printed;
with ``--out`` the weights are written again with the chosen value in their config (the
tensors unchanged), ready for ``vidcolor weights`` and the manifest.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {  # model -> (config field, candidate values)
    "eccv16": ("temperature", (0.2, 0.3, 0.38, 0.5, 0.6, 0.7, 0.85, 1.0)),
    "larsson": ("fade", (0.005, 0.01, 0.02, 0.03, 0.05, 0.08)),
}
FIGURES = ("psnr", "ab_error", "auc_rebalanced", "colourfulness")


def measure(model: str, field: str, value: float, data: Path, max_frames: int, weights: Path | None) -> dict:
    """Evaluation summary of ``model`` with its config's ``field`` set to ``value``."""
    from vidcolor.eval.evaluate import evaluate
    from vidcolor.film.engine import Engine

    engine = Engine(model, device="cpu", weights=weights)
    net = engine.colorizer.net
    net.config = replace(net.config, **{field: value})
    report = evaluate(data, model, reference_mode="none", max_frames=max_frames, engine=engine, temporal="none")
    return report["summary"]["video" if "video" in report["summary"] else "photo"]["methods"]


def choose(rows: dict[float, dict], margin: float) -> float:
    """The value to keep: see the module's description."""
    allowed = [v for v, m in rows.items() if m["model"]["psnr"] >= m["grey"]["psnr"] - margin]
    if allowed:
        return max(allowed, key=lambda v: rows[v]["model"]["auc_rebalanced"])
    return max(rows, key=lambda v: rows[v]["model"]["psnr"])


def store(model: str, field: str, value: float, weights: Path | None, out: Path) -> None:
    """The weights file again, its config's ``field`` set to ``value``."""
    from vidcolor.models import weights as weights_io

    source = weights or weights_io.default_weights(model)
    metadata, state = weights_io.read(source)
    config = json.loads(metadata.get("config", "{}"))
    config[field] = value
    metadata["config"] = json.dumps(config)
    weights_io.write(out, state, metadata)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", choices=sorted(SETTINGS))
    p.add_argument("--data", type=Path, default=ROOT / "runs" / "data" / "val")
    p.add_argument("--max-frames", type=int, default=24)
    p.add_argument("--weights", type=Path, default=None, help="the network's weights (default: the installed ones)")
    p.add_argument("--psnr-margin", type=float, default=0.5)
    p.add_argument("--values", type=float, nargs="*", default=None, help="candidates (default: the model's list)")
    p.add_argument("--json", type=Path, default=None, help="write every value's figures here")
    p.add_argument("--out", type=Path, default=None, help="write the weights with the chosen value here")
    args = p.parse_args()
    field, values = SETTINGS[args.model]
    rows = {}
    for value in args.values or values:
        rows[value] = measure(args.model, field, value, args.data, args.max_frames, args.weights)
        m, g = rows[value]["model"], rows[value]["grey"]
        print(f"{field} {value:<6g} " + "  ".join(f"{k} {m[k]:.4g}" for k in FIGURES)
              + f"  (grey psnr {g['psnr']:.4g}, auc_rb {g['auc_rebalanced']:.4g})", flush=True)
    chosen = choose(rows, args.psnr_margin)
    print(f"chosen: {field} = {chosen:g}")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "field": field, "chosen": chosen,
                                         "rows": {str(v): r for v, r in rows.items()}}, indent=1))
    if args.out:
        store(args.model, field, chosen, args.weights, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
