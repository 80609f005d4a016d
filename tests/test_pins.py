"Pinned runs: a partial run made after the manifest leaves the paper's numbers as they were; unpinned, they change."
import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT
from lwa.manuscript import generate
from lwa.paper import MissingResultError, pin_digest

SKIP = shutil.ignore_patterns("notebooks", "scratch", "tiny-*", "*.safetensors", "checkpoints")


@pytest.fixture
def results(tmp_path):
    "A copy of the committed results (run folders, benchmarks and the manifest; no executed notebooks)."
    res = tmp_path / "results"
    shutil.copytree(ROOT / "results", res, ignore=SKIP)
    assert (res / "runs-paper.json").is_file(), "the committed manifest results/runs-paper.json is there"
    return res


def _partial_run(res):
    "What a one-method partial exp_distill run leaves: a newer finished run of the same name, with other numbers."
    runs = json.loads((res / "runs-paper.json").read_text())["runs"]
    pinned = next(e["path"] for e in runs if e["path"].startswith("exp_distill/"))
    new = res / "exp_distill" / (pinned.split("/")[1].rsplit("-", 1)[0] + "-ffffffff")
    shutil.copytree(res / pinned, new)
    t = pd.read_csv(new / "main_table.csv")
    t = t[t.method.isin(["uniform", "fisher", "teacher"])].copy()
    t["full|ndcg@10"] *= 2
    t.to_csv(new / "main_table.csv", index=False)
    (new / "DONE").write_text("later\n")
    return new


def _macros(out, res):
    generate(out, res, ROOT / "figures")
    return (out / "macros.tex").read_text()


def test_a_partial_run_never_changes_the_paper(results, tmp_path):
    before = _macros(tmp_path / "g0", results)
    _partial_run(results)
    assert _macros(tmp_path / "g1", results) == before  # the manifest pins the full run
    (results / "runs-paper.json").unlink()  # unpinned, the paper reads the newest (partial) run: the test can fail
    try:
        after = _macros(tmp_path / "g2", results)
    except (KeyError, IndexError, ValueError, MissingResultError):  # the partial table lacks methods the paper needs
        after = None
    assert after != before


def test_a_pinned_benchmark_rewritten_in_place_stops_the_build(results, tmp_path):
    f = results / "bench" / "fisher.json"
    d = json.loads(f.read_text())
    d["note"] = "rewritten by a later benchmark run"
    f.write_text(json.dumps(d))
    with pytest.raises(MissingResultError, match=r"fisher\.json: changed since runs-paper\.json pinned it"):
        generate(tmp_path / "g", results, ROOT / "figures")


def test_every_pin_of_the_committed_manifest_matches_its_files():
    for e in json.loads((ROOT / "results" / "runs-paper.json").read_text())["runs"]:
        assert pin_digest(ROOT / "results" / e["path"]) == e["sha256"], e["path"]


def test_pin_writes_the_newest_finished_runs(results):
    (results / "runs-paper.json").unlink()
    cmd = [sys.executable, "-m", "lwa.reproduce", "--profile", "paper", "--root", str(results), "--pin"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    paths = [e["path"] for e in json.loads((results / "runs-paper.json").read_text())["runs"]]
    assert len(paths) == 10 and "bench/fisher.json" in paths and all((results / p).exists() for p in paths)
    assert not any("frontier" in p for p in paths)  # not measured: the optional frontier is left out, not an error
