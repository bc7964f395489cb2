#!/usr/bin/env bash
# The GPU suite in one device call, for a session that is lent a GPU machine (see benchmarks/gpu_suite.py).
#
#   bash scripts/gpu-session.sh prepare   # here: deap's wheel into .whl/, the CIFAR-10 subset into .gpu-data/
#   device run, carry [".whl", ".gpu-data"], command "bash scripts/gpu-session.sh run", timeout_s 600
#
# The GPU machine has torch, torchvision, triton, sympy, click, scipy, scikit-learn and tqdm but not deap,
# and cannot reach ../shared, so both travel as ignored folders. "run" installs the wheel offline, runs the
# suite under a 9-minute limit and leaves its table in $OUT/gpu_suite.txt (copy it into
# benchmarks/RESULTS.md, with the machine and the date).
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  prepare)
    subset="${AFOS_TEST_DATA:-../shared/data}/cifar10-subset/cifar-10-batches-py"
    [ -d "$subset" ] || { echo "no CIFAR-10 subset at $subset (set AFOS_TEST_DATA)" >&2; exit 2; }
    deap="$(python3 -m pip show deap 2>/dev/null | sed -n 's/^Version: //p')"
    rm -rf .whl .gpu-data
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d .whl "deap${deap:+==$deap}"
    mkdir -p .gpu-data/cifar10-subset
    cp -r "$subset" .gpu-data/cifar10-subset/
    du -sh .whl .gpu-data
    ;;
  run)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    set -o pipefail
    timeout 540 python3 benchmarks/gpu_suite.py --data-dir .gpu-data/cifar10-subset 2>&1 | tee "${OUT:-.}/gpu_suite.txt"
    ;;
  *)
    echo "usage: bash scripts/gpu-session.sh prepare|run" >&2
    exit 2
    ;;
esac
