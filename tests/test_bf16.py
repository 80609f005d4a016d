"exp_bf16 on tiny under papermill: the teacher's own test users scored in fp32 and in bf16, the paired test, the teacher runs of one setting."
import json
import os
import subprocess

import pandas as pd

from conftest import BIN, ROOT


def _run(tiny_res, out):
    cmd = [str(BIN / "papermill"), str(ROOT / "nbs" / "exp_bf16.ipynb"), str(out), "-p", "out_dir", str(tiny_res)]
    env = dict(os.environ, OMP_NUM_THREADS="1")  # as the session's exp_teacher run scored its users
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)


def test_exp_bf16_scores_the_teachers_users_both_ways_and_tests_the_difference(tmp_path, tiny_res):
    r = _run(tiny_res, tmp_path / "b.ipynb")
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = (tiny_res / "exp_bf16").iterdir()
    m = json.loads((run / "metrics.json").read_text())
    trun = tiny_res / "exp_teacher" / m["teacher_run"]
    teacher = json.loads((trun / "metrics.json").read_text())
    flag = json.loads((trun / "config.json").read_text())["profile"]["train"]["bf16"]
    prec = "bf16" if (json.loads((trun / "provenance.json").read_text())["cpu_bf16"] if flag is None else flag) else "fp32"
    assert m["n_test_users"] == teacher["n_test_users"] and m["stored_recomputed"][prec] == 1.0  # the same users, the same scores
    assert m["summary"][f"{prec}|full|ndcg@10"]["mean"] == teacher["summary"]["teacher (fine-tuned)|full|ndcg@10"]["mean"]
    p = m["bf16_vs_fp32"]
    assert p["ci_low"] <= p["mean_diff"] <= p["ci_high"] and 0 <= p["p_value"] <= 1
    assert m["equal"] == (-m["margin"] <= p["ci_low"] and p["ci_high"] <= m["margin"])
    assert m["max_abs_score_diff"] > 0 and 0 <= m["top10_identical"] <= m["top10_overlap"] <= 1  # bf16 rounds the scores
    assert [t["run"] for t in m["trained"]] == [m["teacher_run"]] and m["trained"][0]["trained_bf16"] in ("on", "off")
    per = pd.read_csv(run / "per_user.csv")
    assert len(per) == m["n_test_users"] and {"fp32|full|ndcg@10", "bf16|full|ndcg@10", "top10_overlap"} <= set(per.columns)
    assert abs(per["bf16|full|ndcg@10"].mean() - m["summary"]["bf16|full|ndcg@10"]["mean"]) < 1e-9


def test_without_the_teachers_weights_it_says_what_to_run(tmp_path, tiny_res):
    for w in (tiny_res / "exp_teacher").glob("*/teacher/model.safetensors"): w.unlink()
    r = _run(tiny_res, tmp_path / "b.ipynb")
    assert r.returncode != 0 and "run nbs/exp_teacher.ipynb" in r.stderr and not (tiny_res / "exp_bf16").exists()
