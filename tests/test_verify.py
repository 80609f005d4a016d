"make verify on tiny: a unit re-made in scratch is byte-identical, a changed one is caught, a lost teacher re-trained."
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT, copy_teacher_tree

RUN = dict(capture_output=True, text=True, cwd=ROOT, timeout=1800)


@pytest.fixture(scope="module")
def tree(tmp_path_factory, teacher_tree):
    "A results folder with a tiny teacher run (the session's) and one distillation unit, as `make reproduce` leaves them."
    t = tmp_path_factory.mktemp("verify")
    res, _ = copy_teacher_tree(teacher_tree, t)
    env = dict(os.environ, LWA_CACHE=str(t / "cache"), OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    unit = ["--profile", "tiny", "--dataset", "synthetic", "--method", "uniform", "--seed", "0", "--root", str(res)]
    r = subprocess.run([sys.executable, "-m", "lwa.distill", *unit], env=env, **RUN)
    assert r.returncode == 0, r.stderr[-3000:]
    return t, res, env


def _verify(t, res, env, scratch, *args):
    cmd = [sys.executable, "-m", "lwa.reproduce", "--profile", "tiny", "--root", str(res)]
    cmd += ["--scratch", str(t / scratch)]
    cmd += list(args)
    return subprocess.run(cmd, env=env, **RUN)


def test_a_changed_unit_is_caught(tree):
    t, res, env = tree
    unit = next((res / "distill").glob("tiny-synthetic-uniform-seed0-*"))
    per = unit / "per_user.csv"
    saved = per.read_bytes()
    df = pd.read_csv(per)
    df.iloc[0, 1] += 0.5
    df.to_csv(per, index=False)
    try:
        r = _verify(t, res, env, "s1", "--units", str(unit))
    finally:
        per.write_bytes(saved)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "differs: 1 of" in r.stdout and "NOT identical" in r.stdout


def test_verify_retrains_a_missing_teacher_and_finds_the_units_identical(tree):
    t, res, env = tree
    teacher = next((res / "exp_teacher").glob("tiny-*")) / "teacher"
    shutil.rmtree(teacher)  # as on a fresh clone: fine-tuned weights are not committed
    r = _verify(t, res, env, "s2", "--verify", "2", "--seed", "1")  # seed 1 takes the distillation unit first
    out = r.stdout
    assert r.returncode == 0, out + r.stderr[-3000:]
    assert "chosen with --seed 1" in out and "re-training it with nbs/exp_teacher.ipynb" in out
    table = out.split("verify: re-made in")[0].splitlines()[-4:]  # the last table: header, the teacher, both units
    rows = [l.strip() for l in table if l.strip().startswith(("(its teacher)", "distill/", "exp_teacher/"))]
    assert len(rows) == 3 and all(l.split()[-3:-1] == ["identical", "identical"] for l in rows), "\n".join(table)
    assert "every unit is identical" in out
