#!/usr/bin/env bash
# Everything afos checks on a GPU, in one device call, for a session that is lent a GPU machine.
#
#   bash scripts/gpu-session.sh prepare        # here: deap and its needs into .whl/, the CIFAR-10 subset into .gpu-data/
#   device run, carry [".whl", ".gpu-data"], command "bash scripts/gpu-session.sh run", timeout_s 560
#   bash scripts/gpu-session.sh run --quick    # here, on the CPU: rehearses every step at tiny sizes
#
# The GPU machine has torch, torchvision, triton, sympy, click, scipy, scikit-learn, matplotlib and tqdm but
# not deap, and cannot reach ../shared, so both travel as ignored folders. "run" does, in order, each step
# under its own time limit so that one hang cannot eat the rest (STEPS="tests suite" runs only those):
#
#   tests    the tests that skip without CUDA, and the kernel tests with their CUDA parameters
#   evaluate afos evaluate relu eelu on the fast CIFAR-10 protocol, two seeds (the user's path), beside the tests
#   suite    benchmarks/gpu_suite.py: step ratios per kernel path, peak memory, seconds per candidate
#   search   afos search on the fast protocol for 120 s, serial, three finalists confirmed on three seeds
#   report   afos report of that search, beside the next step
#   workers  the same search for 60 s with --executor process --workers-per-gpu 4, unconfirmed
#   suite-all the whole default test suite with CUDA present, in whatever time is left
#
# What comes back in $OUT: steps.txt (each step's exit status, seconds and last lines), env.txt, preflight.txt,
# tests.txt, suite.txt, suite-all.txt and runs.tar.gz (every run folder, the other steps' logs, GPU utilisation).
# The steps end within BUDGET seconds (default 520): give the device call a timeout_s above it.
set -euo pipefail
cd "$(dirname "$0")/.."

prepare() {
  subset="${AFOS_TEST_DATA:-../shared/data}/cifar10-subset/cifar-10-batches-py"
  [ -d "$subset" ] || { echo "no CIFAR-10 subset at $subset (set AFOS_TEST_DATA)" >&2; exit 2; }
  deap="$(python3 -m pip show deap 2>/dev/null | sed -n 's/^Version: //p')"
  rm -rf .whl .gpu-data
  # deap and what deap 1.4.4 imports that the GPU image lacks (moocore, for deap.tools.indicator, and its needs)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "deap${deap:+==$deap}" moocore cffi pycparser platformdirs
  mkdir -p .gpu-data/cifar10-subset
  cp -r "$subset" .gpu-data/cifar10-subset/
  du -sh .whl .gpu-data
}

# step NAME SECONDS COMMAND...: run COMMAND under a time limit (never past the session's BUDGET), its output in
# $LOGS/NAME.log (in $OUT for the steps listed in KEEP, so that they come back even from a killed call), a line
# in steps.txt. SIG=INT step ... stops it with SIGINT, on which pytest still prints its summary.
step() {
  local name=$1 limit=$2 start rc log
  shift 2
  if [[ " ${STEPS:-tests suite evaluate search report workers suite-all} " != *" $name "* ]]; then return 0; fi
  [ "$(left)" -lt "$limit" ] && limit=$(left)
  [ "$limit" -lt 10 ] && { echo "   $name: skipped, the session's time is up" | tee -a "$OUT/steps.txt"; return 0; }
  log="$LOGS/$name.log"
  [[ " $KEEP " == *" $name "* ]] && log="$OUT/$name.txt"
  start=$(date +%s)
  echo "== $name (limit ${limit} s, from $(date -u +%T)): $*" | tee -a "$OUT/steps.txt"
  set +e
  timeout -s "${SIG:-TERM}" -k 10 "$limit" "$@" >"$log" 2>&1
  rc=$?
  set -e
  echo "   $name: rc $rc in $(( $(date +%s) - start )) s" | tee -a "$OUT/steps.txt"
  tail -n 5 "$log" | sed 's/^/   | /' >>"$OUT/steps.txt"
}

# The seconds left before the session must end (BUDGET seconds from its start), less a margin for packing.
left() { echo $(( BUDGET - ($(date +%s) - BEGIN) - 20 )); }

KEEP="tests suite suite-all"

run() {
  local quick="" device=cuda data=.gpu-data/cifar10-subset epochs=() xdist=() search_s=120 workers_s=60
  if [ "${1:-}" = "--quick" ]; then
    quick=--quick device=cpu search_s=30 workers_s=20 data="${AFOS_TEST_DATA:-../shared/data}/cifar10-subset"
    epochs=(--epochs 0.2)
  fi
  BEGIN=$(date +%s); BUDGET=${BUDGET:-520}
  OUT="${OUT:-$PWD/.gpu-out}"; LOGS=/tmp/afos-gpu-logs; RUNS=/tmp/afos-gpu-runs
  rm -rf "$LOGS" "$RUNS"; mkdir -p "$OUT" "$LOGS" "$RUNS"; : >"$OUT/steps.txt"
  if [ -z "$quick" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD"
  fi
  AFOS_TEST_DATA="$(cd "$(dirname "$data")" && pwd)"
  export PYTHONUNBUFFERED=1 MPLBACKEND=Agg AFOS_TEST_DATA
  { date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true
    python3 -c "import sys, torch, triton; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" 2>&1 || true
    nproc; } >"$OUT/env.txt"
  python3 -c "import xdist" 2>/dev/null && xdist=(-n 8)
  local sampler=""  # GPU utilisation and memory once a second, to read each step's share of the machine
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -l 1 >"$LOGS/gpu-util.log" 2>&1 &
    sampler=$!
  fi
  local afos=(python3 -m afos) fast=(--config cifar10-fast --device "$device" --data-dir "$data")

  # Every module imports: a missing package fails here in seconds, not in every step (deap 1.4.4 needs moocore).
  if ! python3 -c "import deap.tools, afos.search.loop, afos.execution.factory, afos.reporting.search_report" >"$OUT/preflight.txt" 2>&1; then
    echo "preflight failed: $(tail -n 1 "$OUT/preflight.txt")" | tee -a "$OUT/steps.txt"; exit 1
  fi

  # The tests and evaluate time nothing, so they share the machine; the timed steps run alone.
  local tests_pid report_pid
  SIG=INT step tests 180 python3 -m pytest -q -p no:cacheprovider "${xdist[@]}" -rfEs --durations=5 tests/activation \
    tests/training/test_cuda_graphs.py tests/training/data/test_data.py &
  tests_pid=$!
  step evaluate 100 "${afos[@]}" evaluate relu eelu "${fast[@]}" "${epochs[@]}" --seeds 2 --out "$RUNS/evaluate"
  wait "$tests_pid"  # not a bare wait: that would also wait for the GPU sampler, which never ends
  step suite 180 python3 benchmarks/gpu_suite.py --skip-tests $quick --device "$device" --data-dir "$data"
  step search 180 "${afos[@]}" search "${fast[@]}" "${epochs[@]}" --time-limit "$search_s" --confirm-top 3 \
    --confirm-seeds 3 --out "$RUNS/search"
  step report 30 "${afos[@]}" report "$RUNS/search" &
  report_pid=$!
  step workers 100 "${afos[@]}" search "${fast[@]}" "${epochs[@]}" --time-limit "$workers_s" --no-confirm \
    --executor process --workers-per-gpu 4 --out "$RUNS/workers"
  wait "$report_pid"
  local rest; rest=$(left)
  if [ "$rest" -gt 30 ]; then
    SIG=INT step suite-all "$rest" python3 -m pytest -q -p no:cacheprovider "${xdist[@]}" --maxfail=30 -rfE
  fi
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
  tar -czf "$OUT/runs.tar.gz" -C /tmp afos-gpu-logs afos-gpu-runs
  echo "session: $(( $(date +%s) - BEGIN )) s" >>"$OUT/steps.txt"
}

case "${1:-}" in
  prepare) prepare ;;
  run) shift; run "$@" ;;
  *) echo "usage: bash scripts/gpu-session.sh prepare | run [--quick]" >&2; exit 2 ;;
esac
