"Distillation across modules: the main job on tiny, two processes under accelerate, bad inputs."
import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest

from conftest import BIN, ROOT
from lwa.config import ConfigError, DistillCfg, get_profile
from lwa.data import leave_one_out, synthetic_dataset
from lwa.kd import distill
from lwa.methods import get_method, make_plan
from lwa.models import load_teacher
from lwa.recommender import Prompter, from_lm


def _papermill(nb, out, *params, env=None):
    cmd = [str(BIN / "papermill"), str(ROOT / "nbs" / nb), str(out)] + [x for k, v in params for x in ("-p", k, str(v))]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)


def test_exp_distill_tiny_writes_the_main_table(tmp_path, tiny_res):
    env = dict(os.environ)  # the teacher is the session's exp_teacher run's, in tiny_res
    r = subprocess.run([str(BIN / "papermill"), str(ROOT / "nbs" / "exp_distill.ipynb"), str(tmp_path / "d.ipynb"), "-p", "out_dir", str(tiny_res),
                        "-p", "fig_dir", str(tmp_path / "fig"), "-y", "methods: [nokd, uniform, fisher, fisher_adaptive]", "--log-output"],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "synthetic seed 0 uniform" in r.stderr  # each unit's line reaches papermill's log
    run = next((tiny_res / "exp_distill").iterdir())
    table = pd.read_csv(run / "main_table.csv")
    assert set(table.method) == {"teacher", "nokd", "uniform", "fisher", "fisher_adaptive"}
    assert table["full|ndcg@10"].between(0, 1).all() and (table["full|ndcg@10"] > 0).all()
    n10 = table.set_index("method")["full|ndcg@10"]
    assert n10["teacher"] > n10["nokd"], f"the tiny teacher must beat the student trained alone: {n10.to_dict()}"  # issue 15, item 7
    sig = pd.read_csv(run / "significance.csv")
    assert {"ref", "p_value", "p_holm"} <= set(sig.columns) and (sig.p_holm >= sig.p_value - 1e-12).all()
    m = json.loads((run / "metrics.json").read_text())
    assert m["speed"]["synthetic"]["speedup"] > 1 and 0 < m["speed"]["synthetic"]["param_reduction"] < 1
    assert (run / "main_table.tex").read_text().lstrip().startswith("\\begin{tabular}")
    assert (tmp_path / "fig" / "distill_curves_tiny_synthetic.pdf").is_file()
    assert json.loads((tiny_res / "bench" / "main_job_tiny.json").read_text())["wall_s"] > 0
    units = list((tiny_res / "distill").iterdir())
    assert units and not any((u / "checkpoints").exists() for u in units)  # finished units keep no checkpoints
    # a second run reuses every unit and the teacher: no unit is added or rewritten
    done = {u.name: (u / "DONE").stat().st_mtime_ns for u in units}
    r2 = subprocess.run(r.args, capture_output=True, text=True, cwd=ROOT, env=env)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert {u.name: (u / "DONE").stat().st_mtime_ns for u in (tiny_res / "distill").iterdir()} == done


def test_unknown_method_is_named(tmp_path):
    r = subprocess.run([str(BIN / "papermill"), str(ROOT / "nbs" / "exp_distill.ipynb"), str(tmp_path / "d.ipynb"), "-y", "methods: [uniform, dkd]"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "methods: unknown ['dkd']" in r.stderr + r.stdout


def test_bad_distillation_settings_are_named():
    with pytest.raises(ConfigError, match="DistillCfg.beta: must be >= 0"): get_profile("tiny", {"distill.beta": -1.0})
    with pytest.raises(ConfigError, match="DistillCfg.alpha"): DistillCfg(alpha=1.5)
    with pytest.raises(ConfigError, match="unknown 'kd2'"): get_method("kd2")
    with pytest.raises(ConfigError, match="values must be > 0"): make_plan("fisher", DistillCfg(), [0, 7], 8, fisher=np.r_[np.ones(7), 0.0])
    lm, tok = load_teacher("tiny")
    ds = synthetic_dataset(n_users=60, n_items=30, seed=1); sp = leave_one_out(ds)
    pr = Prompter(tok, ds.items.title.tolist(), 6, 4)
    with pytest.raises(ConfigError, match="deeper than its 8-layer teacher"):
        distill(from_lm(lm, pr.titles), sp.train, pr, "uniform", DistillCfg(), "/nonexistent", k=9)


def test_two_processes_train_like_one(tmp_path):
    "accelerate launches 2 CPU processes (gloo): both see the same loss, and the result equals the 1-process run with the same global batch."
    env = dict(os.environ, OMP_NUM_THREADS="1")
    launch = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
              "--dynamo_backend", "no", str(ROOT / "tests" / "accel_distill.py"), str(tmp_path)]
    r = subprocess.run(launch, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([str(BIN / "python"), str(ROOT / "tests" / "accel_distill.py"), str(tmp_path)], capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b, one = (json.loads((tmp_path / f).read_text()) for f in ("ws2-rank0.json", "ws2-rank1.json", "ws1-rank0.json"))
    assert a["world"] == 2 and one["world"] == 1
    assert a["loss"] == b["loss"] and a["weights"] == b["weights"]  # the replicas stay identical
    assert len(a["train_losses"]) == len(one["train_losses"]) == 4  # the same number of steps of the same global batch
    for w in (1, 2):  # process 0's timed checkpoint after every step (the last one kept), taken by both processes together
        assert [p.name for p in (tmp_path / f"run{w}" / "checkpoints").iterdir()] == ["checkpoint-4"]
    # The two runs sum the same gradients in another order; AdamW divides each gradient by its running size, so for weights
    # whose gradients are near zero that float noise becomes a visible part of a step (seen on one 2-core machine: losses
    # 4e-5 apart in relative terms, weights up to 1.4e-4 apart after 4 steps of lr 3e-3, a step moving a weight by up to 3e-3).
    # A lost half batch changes the mean loss of the first step itself; unsynchronised replicas fail the check above.
    np.testing.assert_allclose(a["train_losses"], one["train_losses"], rtol=2e-4)
    np.testing.assert_allclose(a["loss"], one["loss"], rtol=2e-4)
    for wa, wo in zip(a["weights"], one["weights"]): np.testing.assert_allclose(wa, wo, rtol=0, atol=6e-4)


def test_bench_distill_tiny_writes_its_ratios(tmp_path, tiny_res):
    out = tmp_path / "distill.json"
    r = _papermill("bench_distill.ipynb", tmp_path / "b.ipynb", ("out_file", out), ("repeats", 3),
                   env=dict(os.environ, LWA_RESULTS=str(tiny_res)))  # its teacher: the session's exp_teacher run
    assert r.returncode == 0, r.stderr[-3000:]
    b = json.loads(out.read_text())
    assert set(b["median_s"]) == {"student only (nokd)", "distill, cached teacher", "distill, teacher run every step"}
    assert all(len(v) == 3 and min(v) > 0 for v in b["times_s"].values())
    assert b["ratio_cached_vs_student"] == pytest.approx(b["median_s"]["distill, cached teacher"] / b["median_s"]["student only (nokd)"])
    assert b["target"]["met"] == (b["ratio_cached_vs_student"] <= 1.3)


def test_exp_weights_tiny_writes_strategies_and_the_beta_sweep(tmp_path, tiny_res):
    r = subprocess.run([str(BIN / "papermill"), str(ROOT / "nbs" / "exp_weights.ipynb"), str(tmp_path / "w.ipynb"), "-p", "out_dir", str(tiny_res),
                        "-p", "fig_dir", str(tmp_path / "fig"), "-y", "{strategies: [uniform, fisher_adaptive], selections: [fisher_select]}"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    run = next((tiny_res / "exp_weights").iterdir())
    beta = pd.read_csv(run / "beta.csv")
    assert beta.beta.tolist() == list(get_profile("tiny").distill.betas) and beta["mean"].between(0, 1).all()
    m = json.loads((run / "metrics.json").read_text())
    assert len(m["adaptive_beta"]) == 1 and m["adaptive_beta"][0] in beta.beta.tolist()
    best_valid = beta.beta[beta["valid_ndcg@10"].idxmax()]
    assert m["adaptive_beta"][0] == best_valid  # the adaptive method took the validation-best beta
    assert {"uniform", "fisher_adaptive", "fisher_select"} <= set(pd.read_csv(run / "strategies.csv").method)
    assert (tmp_path / "fig" / "beta_sensitivity_tiny_synthetic.pdf").is_file()
