#!/usr/bin/env bash
# The paper profile's full re-run, in the order issue 15 sets, so that a complete table exists early:
#   1. the popularity baseline, the teachers and their ID baselines (exp_teacher resumes from its Trainer checkpoints);
#   2. the Fisher of each teacher;
#   3. every main method at seed 0 on both datasets, one unit at a time;
#   4. seeds 1 and 2 (exp_distill reads the finished seed-0 units back);
#   5. exp_weights on Office; 6. the benchmarks; 7. the compression frontier with its depth sweep (2, 4, 6, 10 blocks).
# It takes far longer than one sitting (see the README's budget): run it in the background, and again after a kill:
# every step resumes (finished runs and units are read back). Pin and build the paper afterwards:
#   python -m lwa.reproduce --profile paper --pin
# Usage: nohup scripts/rerun_paper.sh [STAGE ...] > .cache/rerun.log 2>&1 &   (stages 1-7; default: all, in order)
# Run stage 7 alone on an idle machine: its timings are wall times.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
say() { echo "$(date -u +%FT%TZ) rerun_paper: $*"; }
repro() { $PY -m lwa.reproduce --profile paper --force --only "$@"; }  # --force: past the committed runs of older code

stage() {
  case "$1" in
    1) repro exp_popularity exp_teacher ;;
    2) repro exp_fisher ;;
    3) for ds in office scientific; do
         for m in $($PY -c "from lwa.methods import MAIN_METHODS; print(*MAIN_METHODS)"); do
           say "unit $ds $m seed 0"
           $PY -m lwa.distill --profile paper --dataset "$ds" --method "$m" --seed 0
         done
       done ;;
    4) repro exp_distill ;;
    5) repro exp_weights ;;
    6) repro bench_fisher bench_distill ;;
    7) repro bench_frontier ;;
    *) echo "rerun_paper: no stage $1 (stages 1-7)" >&2; exit 2 ;;
  esac
}

for s in "${@:-1 2 3 4 5 6 7}"; do
  for t in $s; do say "stage $t"; stage "$t"; done
done
say "done: now python -m lwa.reproduce --profile paper --pin"
