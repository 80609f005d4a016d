"Re-aggregation: units found under any bootstrap setting, runs rebuilt from per-user files, new n_boot trains nothing."
import json
import os
import shutil
import subprocess
import types

import numpy as np
import pandas as pd
import pytest

from conftest import BIN, ROOT
from lwa.aggregate import aggregate_of, reaggregate
from lwa.config import Profile, get_profile
from lwa.metrics import holm_floor

RES = ROOT / "results"
MAIN = "paper-office+scientific-dc965657"  # the committed main run (B = 1000, bootstrap over users)
TEACHER = "paper-office-smollm2-135m-seed0-b5e4b99e"


def _frames_equal(a, b, f):
    pd.testing.assert_frame_equal(pd.read_csv(a / f), pd.read_csv(b / f), check_exact=False, rtol=0, atol=1e-12)


def test_committed_units_are_found_whatever_the_bootstrap_settings(tmp_path):
    "Every committed unit is where `unit_run` looks under any eval.n_boot, ci and test: changing them trains nothing."
    from lwa.distill import unit_run
    units = [p for p in sorted((RES / "distill").iterdir()) if (p / "DONE").is_file()]
    for p in units:  # the keys only: config.json and DONE, so that a wrong key cannot write into the committed results
        (tmp_path / "distill" / p.name).mkdir(parents=True)
        for f in ("config.json", "DONE"): shutil.copy2(p / f, tmp_path / "distill" / p.name / f)
    n = 0
    for p in units:
        c = json.loads((p / "config.json").read_text())
        if "method" not in c: continue  # the teacher's reference units
        ds = types.SimpleNamespace(name=c["profile"]["data"]["dataset"], checksum=lambda c=c: c["data"])
        for over in ({"eval.n_boot": 20000}, {"eval.n_boot": 1000, "eval.ci": 0.9, "eval.test": "users"}):
            cfg = Profile.from_dict(c["profile"]).replace(over)
            test, valid = range(c["n_test"]), range(c["n_valid"])
            r = unit_run(cfg, ds, c["method"], c["seed"], test, valid, c["fisher"], c["beta"], c["teacher"], tmp_path)
            assert r.done and r.path.name == p.name, (p.name, over, r.path.name)
        n += 1
    assert n >= 75  # the 78 committed method units
    assert sorted(q.name for q in (tmp_path / "distill").iterdir()) == [p.name for p in units]  # no unit was started


def test_reaggregation_rebuilds_the_committed_tables_from_per_user_files(tmp_path):
    "With the main run's own settings (B = 1000, users only), its tables come back from the units' files."
    agg = reaggregate("exp_distill", MAIN, RES, out=tmp_path, n_boot=1000, test="users")
    src = RES / "exp_distill" / MAIN
    old, new = pd.read_csv(src / "significance.csv"), pd.read_csv(agg / "significance.csv")
    m = old.merge(new, on=["dataset", "method", "ref"], suffixes=("", "_new"))
    assert len(m) == len(old) == len(new)
    for c in ("mean_diff", "ci_low", "ci_high", "p_value"):
        np.testing.assert_allclose(m[c + "_new"], m[c], rtol=0, atol=1e-12)
    _frames_equal(src, agg, "main_table.csv")
    assert json.loads((agg / "config.json").read_text())["source_run"] == MAIN
    speed = [json.loads((d / "metrics.json").read_text())["speed"] for d in (agg, src)]
    assert speed[0] == speed[1]
    assert [p.name for p in tmp_path.iterdir()] == ["aggregate"]  # nothing trained, nothing else written


def test_the_committed_aggregates_are_what_the_code_gives(tmp_path):
    "The paper's main, weights and teacher tables: committed re-aggregations reproduced, seed-aware, fine for Holm."
    for exp, run in (("exp_distill", MAIN), ("exp_weights", "paper-office-5880c64a"), ("exp_teacher", TEACHER)):
        committed = aggregate_of(exp, RES / exp / run, RES)
        assert committed is not None, f"{exp}/{run} has no committed re-aggregation"
        new = reaggregate(exp, run, RES, out=tmp_path, fig_dir=tmp_path)
        assert new.name == committed.name  # the same settings, so the same run id
        for f in ("main_table.csv", "significance.csv", "strategies.csv", "beta.csv", "summary.csv"):
            if (committed / f).is_file(): _frames_equal(committed, new, f)
        ev = json.loads((committed / "config.json").read_text())["profile"]["eval"]
        assert ev["test"] == "hierarchical" and ev["n_boot"] >= 20000
    sig = pd.read_csv(aggregate_of("exp_distill", RES / "exp_distill" / MAIN, RES) / "significance.csv")
    assert {"mean_diff", "ci_low", "ci_high", "p_value", "p_holm", "p_users", "p_wilcoxon"} <= set(sig.columns)
    assert (sig.test == "seeds+users").all() and (sig.n_seeds == 3).all() and "teacher" not in set(sig.method)
    assert (sig.groupby("dataset").family_size.max() == 15).all() and holm_floor(20000, 15) < 0.005
    teacher = json.loads((aggregate_of("exp_teacher", RES / "exp_teacher" / TEACHER, RES) / "metrics.json").read_text())
    pairs = teacher["paired_vs_teacher"].values()
    assert all(v["p_value"] >= 2 / 20001 and v["test"] == "users (1 seed)" for v in pairs)  # add-one: no p of 0


def test_a_new_n_boot_trains_nothing_and_the_notebook_agrees_with_its_reaggregation(tmp_path, tiny_res, monkeypatch):
    "Tiny: exp_distill's tables equal its re-aggregation; a sweep with another n_boot, ci, test finds every unit."
    import lwa.distill as LD
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = tiny_res  # the session's exp_teacher run: its teacher
    cmd = [str(BIN / "papermill"), str(ROOT / "nbs" / "exp_distill.ipynb"), str(tmp_path / "d.ipynb"),
           "-p", "out_dir", str(res), "-p", "fig_dir", str(tmp_path / "fig"),
           "-y", "{methods: [nokd, uniform, fisher_adaptive], seeds: [0, 1]}"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    run = next((res / "exp_distill").iterdir())
    same = reaggregate("exp_distill", run, res)  # tiny's settings, as the notebook used them
    for f in ("main_table.csv", "significance.csv"): _frames_equal(run, same, f)
    units, done = sorted(p.name for p in (res / "distill").iterdir()), (run / "DONE").stat().st_mtime_ns
    monkeypatch.setattr(LD, "distill", lambda *a, **k: pytest.fail("a changed n_boot must not train a unit"))
    cfg = get_profile("tiny", {"eval.n_boot": 2000, "eval.ci": 0.9, "eval.test": "users", "seeds": [0, 1]})
    D = LD.sweep_data(cfg, "synthetic", fisher=True, root=res)
    for m in ("nokd", "uniform", "fisher_adaptive"):
        for s in (0, 1): D.run(m, s, root=res)
    assert sorted(p.name for p in (res / "distill").iterdir()) == units
    other = reaggregate("exp_distill", run, res, n_boot=2000, ci=0.9, test="users")
    assert other != same and (run / "DONE").stat().st_mtime_ns == done
    sig = pd.read_csv(other / "significance.csv")
    assert (sig.test == "users").all() and len(sig) == len(pd.read_csv(same / "significance.csv"))
