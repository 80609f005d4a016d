#!/usr/bin/env bash
# The paper profile's full re-run, in the order issue 15 sets, so that a complete table exists early:
#   1. the popularity baseline, the teachers and their ID baselines (exp_teacher resumes from its Trainer checkpoints);
#   2. the Fisher of each teacher;
#   3. every main method at seed 0 on both datasets, one unit at a time;
#   4. seeds 1 and 2 (exp_distill reads the finished seed-0 units back);
#   5. exp_weights on Office; 6. the benchmarks; 7. the compression frontier with its depth sweep (2, 4, 6, 10 blocks).
# It takes far longer than one sitting (see the README's budget): run it in the background, and again after a kill:
# every step resumes (finished runs and units are read back), a teacher already trained with the profile's settings is kept
# (not scored again; where its weights are missing, exp_teacher trains and scores it again as a new run), and a stage that finished is skipped (its mark is in .cache/rerun_paper/; name the stage to run it
# again). Pin and build the paper afterwards:
#   python -m lwa.reproduce --profile paper --pin
# Usage: nohup scripts/rerun_paper.sh [STAGE ...] > .cache/rerun.log 2>&1 &   (stages 1-7; default: all, in order)
# Run stage 7 alone on an idle machine: its timings are wall times.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MARKS=.cache/rerun_paper
export TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
say() { echo "$(date -u +%FT%TZ) rerun_paper: $*"; }
repro() { $PY -m lwa.reproduce --profile paper --force --only "$@"; }  # --force: past the committed runs of older code
has_teacher() {  # whether dataset $1 has a finished exp_teacher run trained with the paper profile's settings, weights included
  # (a fresh clone has the run's results but not its weights: exp_teacher then trains and scores a new run, retrained_from it)
  $PY -c "import sys; from lwa.core import get_profile; from lwa.models import teacher_run
try: sys.exit(not (teacher_run(get_profile('paper', {'data.dataset': sys.argv[1]})) / 'teacher' / 'model.safetensors').is_file())
except FileNotFoundError: sys.exit(1)" "$1"
}

stage() {
  case "$1" in
    1) repro exp_popularity
       for ds in scientific office; do  # the faster teacher first
         if has_teacher "$ds"; then say "exp_teacher[$ds]: trained with these settings before, kept"
         else repro "exp_teacher[$ds]"; fi
       done ;;
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

mkdir -p "$MARKS"
for s in "${@:-1 2 3 4 5 6 7}"; do
  for t in $s; do
    if [ $# -eq 0 ] && [ -f "$MARKS/stage-$t" ]; then say "stage $t finished before ($MARKS/stage-$t): skipped"; continue; fi
    say "stage $t"
    stage "$t"
    date -u +%FT%TZ > "$MARKS/stage-$t"
  done
done
say "done: now python -m lwa.reproduce --profile paper --pin"
