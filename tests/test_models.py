"Teacher loading, students and the recommender, across lwa.models, lwa.recommender and lwa.metrics."
import inspect
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from conftest import BIN, ROOT, copy_teacher_tree
from lwa.config import ConfigError, TrainCfg
from lwa.data import leave_one_out, synthetic_dataset
from lwa.models import CheckpointError, block_params, load_teacher, make_student, param_counts, resolve_teacher
from lwa.recommender import Prompter, from_lm, score_items, student_of, train_recommender


@pytest.fixture(scope="module")
def tiny():
    lm, tok = load_teacher("tiny")
    ds = synthetic_dataset(n_users=80, n_items=40, seed=3)
    return lm, tok, ds, Prompter(tok, ds.items.title.tolist(), 8, 5)


def test_safe_loading_defaults():
    assert inspect.signature(load_teacher).parameters["trust_remote_code"].default is False
    r = resolve_teacher("llama3-8b", "bfloat16", "auto")
    assert (r["kind"], r["source"], r["dtype"], r["device_map"]) == ("hub", "meta-llama/Meta-Llama-3-8B-Instruct", torch.bfloat16, "auto")
    with pytest.raises(ConfigError, match="no preset"): resolve_teacher("not-a-model")


def test_corrupted_checkpoint_is_named(tiny, tmp_path):
    lm, tok, *_ = tiny
    lm.save_pretrained(tmp_path); tok.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match=str(tmp_path)): load_teacher(str(tmp_path))


def test_student_with_every_layer_is_the_teacher_and_counts_add_up(tiny):
    lm, tok, ds, pr = tiny
    rec = from_lm(lm, pr.titles); sp = leave_one_out(ds)
    np.testing.assert_allclose(score_items(student_of(rec, 8), sp.test, pr), score_items(rec, sp.test, pr), atol=1e-5)
    c = lm.config
    for k in (1, 3, 8):
        assert param_counts(make_student(lm, k))["total"] == c.vocab_size * c.hidden_size + k * block_params(c) + c.hidden_size
    with pytest.raises(ConfigError, match="deeper than its 8-layer teacher"): student_of(rec, 12)
    with pytest.raises(ConfigError, match=r"indices must be in \[0, 8\)"): make_student(lm, strategy=[0, 9])


def test_training_resumes_from_its_checkpoint(tiny, tmp_path):
    lm, tok, ds, pr = tiny
    sp = leave_one_out(ds); cfg = TrainCfg(epochs=2.0, batch_size=16, lr=3e-3)
    a, log_a = train_recommender(from_lm(lm, pr.titles), sp.train, pr, cfg, tmp_path / "a", save_steps=5)
    b, log_b = train_recommender(from_lm(lm, pr.titles), sp.train, pr, cfg, tmp_path / "a", save_steps=5)  # finds the last checkpoint
    assert log_b[-1]["step"] == log_a[-1]["step"] and len([r for r in log_b if "loss" in r]) <= len([r for r in log_a if "loss" in r])
    np.testing.assert_allclose(score_items(a, sp.test, pr), score_items(b, sp.test, pr), atol=1e-5)


def test_exp_teacher_then_exp_fisher_on_tiny(tmp_path, teacher_tree):
    copy_teacher_tree(teacher_tree, tmp_path)  # exp_teacher under papermill: the session's run
    (run,) = (tmp_path / "res" / "exp_teacher").iterdir()
    m = json.loads((run / "metrics.json").read_text())
    systems = {k.split("|")[0] for k in m["summary"]}
    assert {"popularity", "ID baseline", "item head, untuned", "teacher (fine-tuned)", "verbalizer (zero-shot)"} <= systems
    assert m["synthetic"] is True and (run / "teacher" / "model.safetensors").is_file() and (run / "DONE").is_file()
    (bench,) = (tmp_path / "res" / "bench").glob("throughput-*.json")
    b = json.loads(bench.read_text())
    assert b["student_layers"] == 6 and b["speedup"] > 0 and "git" in b["provenance"]
    assert (tmp_path / "fig" / "teacher_tiny_synthetic.pdf").is_file() and (tmp_path / "fig" / "teacher_tiny_synthetic.png").is_file()
    # exp_fisher finds that teacher by profile, dataset and seed
    cmd = [str(BIN / "papermill"), str(ROOT / "nbs" / "exp_fisher.ipynb"), str(tmp_path / "fisher.ipynb"), "-p", "out_dir", str(tmp_path / "res"),
           "-p", "fig_dir", str(tmp_path / "fig"), "-p", "n_fisher", "32", "-p", "n_ablation", "40"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    (frun,) = (tmp_path / "res" / "exp_fisher").iterdir()
    fm = json.loads((frun / "metrics.json").read_text())
    assert fm["n_layers"] == 8 and len(fm["importance"]["fisher (empirical)"]) == 8 and len(fm["hypotheses"]) == 2
    assert all(v["verdict"] in ("supported", "contradicted", "not established") for v in fm["hypotheses"].values())
    assert (frun / "fisher_empirical.json").is_file() and (tmp_path / "fig" / "fisher_heatmap_tiny_synthetic.pdf").is_file()
    # run again (as `lwa.reproduce --force` does), it reads the finished run back: the same tables, nothing computed or rewritten
    done = (frun / "DONE").stat().st_mtime_ns
    cmd[2] = str(tmp_path / "again.ipynb")
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    first, again = (_shown(json.loads((tmp_path / f).read_text())) for f in ("fisher.ipynb", "again.ipynb"))
    assert len(first) == 4 and first == again, "the read-back tables differ from the computed ones"
    printed = [json.dumps([c.get("outputs") for c in json.loads((tmp_path / f).read_text())["cells"]]) for f in ("fisher.ipynb", "again.ipynb")]
    assert "read back from" not in printed[0] and "read back from" in printed[1]
    assert (frun / "DONE").stat().st_mtime_ns == done


def _shown(nb):
    "What exp_fisher shows of its results (not its progress bars): the module heatmap, the measures, their agreement, the hypotheses."
    keys = ("heat.round", "\ntable\n", "agree.round", "answers.items()")
    return {s: [o.get("data", {}).get("text/plain") or o["text"] for o in c.get("outputs", []) if o.get("name") != "stderr"]
            for c in nb["cells"] if c["cell_type"] == "code" for s in ["".join(c["source"]) + "\n"] if any(k in s for k in keys)}


def test_exp_fisher_without_a_teacher_run_says_what_to_run(tmp_path):
    cmd = [str(BIN / "papermill"), str(ROOT / "nbs" / "exp_fisher.ipynb"), str(tmp_path / "f.ipynb"), "-p", "out_dir", str(tmp_path / "res")]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode != 0 and "run nbs/exp_teacher.ipynb first" in (tmp_path / "f.ipynb").read_text()


def test_a_teacher_trained_again_exactly_gets_its_weights_back(tmp_path):
    "exp_teacher on tiny (a small budget), its weights deleted as on a fresh clone, then again: the same training, so no copy stays."
    res = tmp_path / "res"
    cmd = [str(BIN / "papermill"), str(ROOT / "nbs" / "exp_teacher.ipynb"), str(tmp_path / "t.ipynb"), "-p", "out_dir", str(res),
           "-p", "fig_dir", str(tmp_path / "fig"), "-p", "max_train_examples", "64", "-p", "verbal_users", "8"]
    env = dict(os.environ, OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = (res / "exp_teacher").iterdir()
    weights = run / "teacher" / "model.safetensors"
    first = weights.read_bytes()
    shutil.rmtree(run / "teacher")
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "its weights are moved there, and the copy is deleted" in (tmp_path / "t.ipynb").read_text()
    assert [p.name for p in (res / "exp_teacher").iterdir()] == [run.name] and weights.read_bytes() == first
