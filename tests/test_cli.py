"The `lwa` console script, as a user runs it."
import json
import subprocess
import sys

from conftest import BIN, DATA, ROOT, needs_data


def lwa(*args):
    return subprocess.run([str(BIN / "lwa"), *args], capture_output=True, text=True, timeout=120)


def test_profiles_and_resolved_profile():
    r = lwa("profiles"); assert r.returncode == 0 and {"tiny", "paper", "gpu"} <= {l.split()[0] for l in r.stdout.splitlines()}
    r = lwa("profile", "paper", "--set", "data.dataset=scientific", "--set", "seeds=[4]")
    cfg = json.loads(r.stdout)
    assert cfg["data"]["dataset"] == "scientific" and cfg["seeds"] == [4] and cfg["model"]["teacher"] == "smollm2-135m"


def test_bad_input_exits_2_with_the_field_named():
    r = lwa("profile", "tiny", "--set", "train.epochs=-1")
    assert r.returncode == 2 and "TrainCfg.epochs: must be > 0" in r.stderr and not r.stdout
    r = lwa("stats", "books")
    assert r.returncode == 2 and "unknown dataset 'books'" in r.stderr


def test_stats_of_synthetic_data_are_labelled():
    r = lwa("stats", "synthetic", "--json")
    (row,) = json.loads(r.stdout)
    assert r.returncode == 0 and row["synthetic"] is True and row["users"] == 300


@needs_data
def test_stats_of_real_data():
    (row,) = json.loads(lwa("stats", "office", "--data-dir", str(DATA), "--json").stdout)
    assert (row["users"], row["items"], row["interactions"]) == (4905, 2420, 53258)


def test_reproduce_names_bad_profiles_and_steps(tmp_path):
    "python -m lwa.reproduce: an unknown profile or step is named with the choices, before anything runs."
    r = subprocess.run([sys.executable, "-m", "lwa.reproduce", "--profile", "huge", "--root", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "unknown profile 'huge'" in r.stderr
    r = subprocess.run([sys.executable, "-m", "lwa.reproduce", "--only", "exp_teachr", "--root", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "only: unknown steps ['exp_teachr']" in r.stderr and "exp_teacher[synthetic]" in r.stderr
    assert not any(tmp_path.iterdir()), "nothing written"


def test_the_rerun_script_names_only_steps_of_the_paper_plan_and_refuses_an_unknown_stage():
    "scripts/rerun_paper.sh: every notebook its stages pass to `lwa.reproduce --only` is a step of the paper's plan."
    import re
    from lwa.reproduce import plan
    text = (ROOT / "scripts" / "rerun_paper.sh").read_text()
    named = {re.sub(r"\[.*", "", n.strip('"')) for line in re.findall(r"\brepro ([^;\n]+)", text) for n in line.split()}
    assert named >= {"exp_teacher", "exp_fisher", "exp_distill", "exp_weights"}
    assert named <= {s.notebook for s in plan("paper", root=ROOT / "results") if s.notebook}
    script = str(ROOT / "scripts" / "rerun_paper.sh")
    r = subprocess.run(["bash", script, "9"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and "no stage 9" in r.stderr
