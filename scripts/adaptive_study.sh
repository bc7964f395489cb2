#!/usr/bin/env bash
# The per-layer adaptive study: adaptive vs plain sigmoid, tanh and ReLU under five optimizers.
#   scripts/adaptive_study.sh [--data-dir DIR] [--device cuda] [--seeds 3] ...   (extra options go to afos)
# Each optimizer is its own protocol, so each gets its own output folder: results/adaptive-<optimizer>/.
set -euo pipefail
functions=(adaptive_sigmoid sigmoid adaptive_tanh tanh adaptive_relu relu)
run() {  # run NAME OPTIONS...
  local name=$1; shift
  afos evaluate "${functions[@]}" --config adaptive-layers --out "results/adaptive-$name" "$@"
}
run sgd      --optimizer sgd      --momentum 0   --lr 0.05 "$@"
run momentum --optimizer sgd      --momentum 0.9 --lr 0.05 "$@"
run adagrad  --optimizer adagrad                 --lr 0.01 "$@"
run adadelta --optimizer adadelta                --lr 1.0  "$@"
run adam     --optimizer adam                    --lr 0.001 "$@"
