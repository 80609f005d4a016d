"The frontier benchmark on tiny under papermill, a unit's student trained again when its weights are gone, and `lwa recommend` as a user runs it."
import ast
import json
import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from conftest import BIN, ROOT, copy_teacher_tree
from lwa.config import EXP_PARAMS, _type_ok

NB = ROOT / "nbs" / "bench_frontier.ipynb"


def _papermill(tmp, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [str(BIN / "papermill"), str(NB), str(tmp / "out.ipynb"), "-p", "out_dir", str(tmp / "res"), "-p", "out_file",
           str(tmp / "frontier.json"), "-p", "fig_dir", str(tmp / "fig"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=1800)


@pytest.fixture(scope="module")
def bench(tmp_path_factory, teacher_tree):
    tmp = tmp_path_factory.mktemp("frontier")
    copy_teacher_tree(teacher_tree, tmp)  # tmp/res holds the session's exp_teacher run: its teacher
    r = _papermill(tmp, "-y", "methods: [uniform]", "-p", "time_users", "4", "-p", "repeats", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp, json.loads((tmp / "frontier.json").read_text())


def test_every_variant_is_measured_on_the_same_users(bench):
    tmp, doc = bench
    assert doc["profile"] == "tiny" and doc["synthetic"] is True and doc["reference"] == "teacher fp32"
    rows = pd.DataFrame(doc["rows"])
    want = {f"teacher {p}" for p in ("fp32", "bf16", "int8_weight", "int8_dynamic")}
    want |= {f"uniform 2-block seed 0 {p}{t}" for p in ("fp32", "bf16", "int8_weight", "int8_dynamic") for t in ("", " trimmed")}
    assert set(rows.variant) == want
    assert (rows.ms_b1 > 0).all() and (rows.ms_b16 > 0).all() and (rows.disk_mb > 0).all()
    assert (rows.ci_low <= rows.ndcg10).all() and (rows.ndcg10 <= rows.ci_high).all()
    per = pd.read_csv(tmp / "frontier.csv")
    assert len(per) == doc["n_test_users"] and set(per.columns) == want | {"user"}
    np.testing.assert_allclose(rows.set_index("variant").ndcg10[list(want)], per[list(want)].mean(), rtol=1e-9)
    r = rows.set_index("variant")
    assert r.loc["uniform 2-block seed 0 fp32 trimmed", "diff_vs_fp32"] == 0  # trimming changes no score
    assert r.loc["uniform 2-block seed 0 fp32 trimmed", "params"] < r.loc["uniform 2-block seed 0 fp32", "params"]
    assert r.loc["teacher bf16", "disk_mb"] < 0.6 * r.loc["teacher fp32", "disk_mb"]
    assert set(doc["headline"]) == {"b1", "b16"} and doc["versions"]["torchao"]
    assert (tmp / "fig" / "frontier_tiny_synthetic.pdf").is_file()
    nb = json.loads((tmp / "out.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in nb["cells"]), "papermill found the parameters cell"


def test_the_paper_shows_the_measured_frontier(bench, tmp_path):
    "The paper's frontier part on the real tiny frontier: its table of the front, its sentences, its figure drawn the same again."
    from lwa.figures import TEXT_PT, pdf_text, printed_pt
    from lwa.frontier_paper import part_frontier
    from lwa.paper import Paper
    tmp, doc = bench
    (tmp_path / "res" / "bench").mkdir(parents=True)
    shutil.copy(tmp / "frontier.json", tmp_path / "res" / "bench" / "frontier-tiny-synthetic.json")
    P = Paper(tmp_path / "res", tmp / "fig", "tiny", ("synthetic",))
    part_frontier(P)
    assert P.macros["IfFrontier"] == "#1" and P.figures["SyntheticFrontierFig"][0] == "frontier_tiny_synthetic"
    rows, t = P.tables["frontier"].rows, pd.DataFrame(doc["rows"])
    front = set(t[t.pareto_b1 | t.pareto_b16].variant) | {"teacher fp32"}
    assert rows[0][0].plain == "teacher fp32" and {r[0].plain.removesuffix(" ↓") for r in rows} == front
    assert f"({doc['n_test_users']:,} test users, {len(t)} variants)" in P.macros["FrontierText"]
    assert "the original project's claim" in P.macros["FrontierClaims"] and P.macros["FrontierMissing"] == ""
    drawn = Paper(tmp_path / "res", tmp_path / "fig", "tiny", ("synthetic",), drawing=True)
    part_frontier(drawn)  # as `python -m lwa.paper figures` draws it, from the results file alone
    pdf = tmp_path / "fig" / "frontier_tiny_synthetic.pdf"
    assert pdf_text(pdf) == pdf_text(tmp / "fig" / "frontier_tiny_synthetic.pdf") and printed_pt(pdf, TEXT_PT) >= 7


def test_a_unit_without_weights_is_trained_again_to_the_same_student(bench):
    import torch
    from lwa.config import get_profile
    from lwa.distill import sweep_data
    from lwa.frontier import unit_student
    tmp, _ = bench
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the notebook trained it (OMP_NUM_THREADS=1): a unit is the same bytes at the same thread count
    try:
        D = sweep_data(get_profile("tiny"), "synthetic", fisher=False, root=tmp / "res")
        unit = next((tmp / "res" / "distill").glob("tiny-synthetic-uniform-seed0-*"))
        first, met, f = unit_student(D, "uniform", 0, root=tmp / "res")
        assert f == unit / "student" and not met["retrained"]
        shutil.rmtree(unit / "student")  # as a unit finished before students were kept
        again, met2, f2 = unit_student(D, "uniform", 0, root=tmp / "res", scratch=tmp / "scratch")
    finally:
        torch.set_num_threads(threads)
    assert met2["retrained"] and f2.is_relative_to(tmp / "scratch") and met2["run_id"] == met["run_id"]
    assert met2["summary"]["test|full|ndcg@10"] == met["summary"]["test|full|ndcg@10"]
    for (n, a), (_, b) in zip(first.state_dict().items(), again.state_dict().items()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-6, err_msg=n)


def test_a_wrong_parameter_type_fails_first_and_writes_nothing(tmp_path):
    r = _papermill(tmp_path, "-p", "repeats", "five")
    assert r.returncode != 0 and "parameter 'repeats' must be int, got 'five'" in r.stdout + r.stderr
    assert not (tmp_path / "res").exists() and not (tmp_path / "frontier.json").exists() and not (tmp_path / "cache").exists()


def test_every_parameter_has_a_checked_type():
    cells = [c for c in json.loads(NB.read_text())["cells"] if c["cell_type"] == "code"]
    (src,) = ["".join(c["source"]) for c in cells if "parameters" in c["metadata"].get("tags", [])]
    params = {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(src).body}
    types = EXP_PARAMS["bench_frontier"]
    assert set(params) == set(types) and all(_type_ok(v, types[k]) for k, v in params.items())


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    "A tiny recommender saved with its catalogue, as `lwa recommend` reads it."
    from lwa.compress import save_recommender
    from lwa.data import synthetic_dataset
    from lwa.models import load_teacher
    from lwa.recommender import Prompter, from_lm
    syn = synthetic_dataset(n_users=20, n_items=30, seed=0)
    lm, tok = load_teacher("tiny")
    pr = Prompter(tok, syn.items.title.tolist(), 6, 4)
    return save_recommender(from_lm(lm, pr.titles), pr, syn.items, tmp_path_factory.mktemp("rec") / "rec"), syn.items


def _lwa(*args):
    return subprocess.run([str(BIN / "lwa"), *args], capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))


def test_lwa_recommend_prints_the_top_k_without_the_history(saved):
    folder, items = saved
    ids = items.item_id.tolist()
    r = _lwa("recommend", str(folder), "--history", ids[4], items.title[9], "--k", "5", "--json")
    assert r.returncode == 0, r.stderr
    top = json.loads(r.stdout)
    assert [t["rank"] for t in top] == [1, 2, 3, 4, 5] and not {ids[4], ids[9]} & {t["item_id"] for t in top}
    assert all(a["score"] >= b["score"] for a, b in zip(top, top[1:]))
    from lwa.recommender import LlmRecommender
    api = LlmRecommender.from_pretrained(folder).recommend([[ids[4], ids[9]]], k=5)
    assert api.item_id.tolist() == [t["item_id"] for t in top]  # a title and its id name the same item


def test_lwa_recommend_names_an_unknown_item(saved):
    folder, items = saved
    r = _lwa("recommend", str(folder), "--history", items.item_id[0], "NOT-AN-ITEM")
    assert r.returncode == 2 and "'NOT-AN-ITEM' is no item id or title" in r.stderr and not r.stdout
