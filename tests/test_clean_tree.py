"A user's `make run` (the tiny main job) writes only files git ignores, so `git status` stays clean (issue 18, item 8)."
import json
import subprocess

import pytest

from conftest import ROOT

WRITES = ["results/notebooks/exp_distill-tiny.ipynb",  # the executed notebook (Makefile NB_OUT)
          "results/distill/tiny-synthetic-uniform-seed0-0123abcd/per_user.csv",
          "results/exp_distill/tiny-synthetic-0123abcd/metrics.json",
          "results/exp_teacher/tiny-synthetic-tiny-seed0-0123abcd/teacher/model.safetensors",
          "results/bench/main_job_tiny.json",
          "figures/distill_curves_tiny_synthetic.png",
          ".cache/lwa/teachers/tiny-synthetic-tiny-seed0-0123abcd/model.safetensors",
          "results/runs-tiny.json", "results/reproduce-tiny.json"]


def test_what_the_tiny_main_job_writes_is_ignored():
    r = subprocess.run(["git", "check-ignore", "--no-index", *WRITES], cwd=ROOT, capture_output=True, text=True)
    if r.returncode not in (0, 1):
        pytest.skip(f"not a git checkout: {r.stderr.strip()}")
    assert sorted(r.stdout.split()) == sorted(WRITES), f"tracked by git: {sorted(set(WRITES) - set(r.stdout.split()))}"


def test_the_committed_timing_of_the_main_job_is_where_a_run_does_not_write():
    ref = ROOT / "results" / "bench" / "reference" / "main_job_tiny.json"
    d = json.loads(ref.read_text())
    assert d["notebook"] == "exp_distill" and d["profile"] == "tiny" and d["wall_s"] > 0
    readme = (ROOT / "README.md").read_text()
    assert f"{d['wall_s'] / 60:.1f} min" in readme and "results/bench/reference/main_job_tiny.json" in readme  # quoted
