#!/usr/bin/env bash
# The GPU form of a recipe: train/$MODEL.toml (default exemplar) on one GPU within a time
# budget (default 9 minutes), from the shipped weights of that model where there are some,
# with a compact copy of the data that travels with the working tree (under 64 MiB in all)
# and needs no PyAV there.
#
# Prepared here, once:
#   python train/compact_data.py runs/data/train ../shared/train --frames --quality 85 --out runs/gpu_data/train
#   python train/compact_data.py runs/data/val --frames --quality 85 --out runs/gpu_data/val
#   kornia's wheels for the GPU machine's Python in .whl/ (where it lacks kornia)
# On the GPU machine, carrying runs/gpu_data and .whl:
#   bash train/gpu.sh            # then, here: train/calibrate_confidence.py on the result
#   MODEL=siggraph17 bash train/gpu.sh    # an automatic network (INIT= trains it from scratch)
# Tried on the CPU at tiny size:
#   DEVICE=cpu STEPS=3 BATCH=4 SECONDS_BUDGET=120 bash train/gpu.sh
#
# Settings (environment): MODEL (exemplar), INIT (the weights to start from; default the
# shipped vidcolor/weights/$MODEL.safetensors where it exists), DATA (runs/gpu_data), RUN (the
# run folder; $OUT/${MODEL}_gpu when $OUT is set, else runs/${MODEL}_gpu), DEVICE (cuda),
# STEPS (2500), BATCH (32),
# PRECISION (bf16 on cuda), SECONDS_BUDGET (540): when the budget is spent, training stops
# with a checkpoint and the weights are exported from it; `--resume` continues it later.
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=${MODEL:-exemplar}
[ -f "train/$MODEL.toml" ] || { echo "train/$MODEL.toml: no such recipe" >&2; exit 1; }
if [ -z "${INIT+set}" ] && [ -f "vidcolor/weights/$MODEL.safetensors" ]; then INIT=vidcolor/weights/$MODEL.safetensors; fi
INIT=${INIT:-}
DATA=${DATA:-runs/gpu_data}
RUN=${RUN:-${OUT:+$OUT/${MODEL}_gpu}}
RUN=${RUN:-runs/${MODEL}_gpu}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-2500}
BATCH=${BATCH:-32}
SECONDS_BUDGET=${SECONDS_BUDGET:-540}
if [ "$DEVICE" = cuda ]; then PRECISION=${PRECISION:-bf16}; else PRECISION=${PRECISION:-fp32}; fi

if ! python3 -c "import kornia" 2>/dev/null; then
    [ -d .whl ] || { echo "kornia is missing and there is no .whl folder of wheels to install it from" >&2; exit 1; }
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
[ -d "$DATA/train" ] && [ -d "$DATA/val" ] || { echo "$DATA/train and $DATA/val: prepare them with train/compact_data.py --frames" >&2; exit 1; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

DRIVER='
import sys
from pathlib import Path

from vidcolor.train.loop import TrainConfig, train

data, run, device, steps, batch, precision, resume, model, init = sys.argv[1:10]
config = TrainConfig.load(Path(f"train/{model}.toml"), steps=int(steps), batch_size=int(batch), precision=precision,
                          init_weights=init or None)
resumed = resume == "resume"
try:
    weights = train(config, [Path(data) / "train"], Path(run), [Path(data) / "val"], device, resumed,
                    int(steps) if resumed else None)
except KeyboardInterrupt:
    sys.exit(130)
print(f"wrote {weights}")
'

start=$(date +%s)
# at the budget, SIGINT: the loop writes its checkpoint and stops; the weights of that step are exported
status=0
timeout -s INT "$SECONDS_BUDGET" python3 -c "$DRIVER" "$DATA" "$RUN" "$DEVICE" "$STEPS" "$BATCH" "$PRECISION" new \
    "$MODEL" "$INIT" || status=$?
if [ "$status" -eq 124 ]; then
    step=$(python3 -c "import torch; print(torch.load('$RUN/checkpoint.pt', map_location='cpu', weights_only=False)['step'])")
    echo "time budget spent at step $step; exporting the weights of that step"
    python3 -c "$DRIVER" "$DATA" "$RUN" "$DEVICE" "$step" "$BATCH" "$PRECISION" resume "$MODEL" "$INIT"
elif [ "$status" -ne 0 ]; then
    exit "$status"
fi
echo "trained in $(( $(date +%s) - start )) s; run folder: $RUN"
tail -n 3 "$RUN/log.csv"
