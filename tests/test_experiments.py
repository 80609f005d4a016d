"End to end: the experiment notebooks under papermill, the results folder, provenance, skipping and bad parameters."
import json
import subprocess

import pytest

from conftest import BIN, ROOT

PROVENANCE = {"git", "packages", "python", "host", "seed", "data_checksum", "started_at", "finished_at", "wall_time_s", "run_id"}


def _papermill(tmp_path, out, *params):
    cmd = [str(BIN / "papermill"), str(ROOT / "nbs" / "exp_popularity.ipynb"), str(tmp_path / out), "-p", "out_dir", str(tmp_path / "results"), *params]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pop")
    r = _papermill(tmp, "out.ipynb")
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp


def test_tiny_run_writes_a_complete_results_folder(tiny_run):
    (run,) = (tiny_run / "results" / "exp_popularity").iterdir()
    assert sorted(p.name for p in run.iterdir()) == ["DONE", "config.json", "metrics.json", "per_user.csv", "provenance.json", "stats.csv", "summary.csv"]
    m = json.loads((run / "metrics.json").read_text()); prov = json.loads((run / "provenance.json").read_text())
    assert m["synthetic"] is True and m["dataset"] == "synthetic"
    assert 0 < m["full"]["ndcg@10"]["mean"] < 1 and m["full"]["ndcg@10"]["ci_low"] <= m["full"]["ndcg@10"]["mean"] <= m["full"]["ndcg@10"]["ci_high"]
    assert PROVENANCE <= set(prov) and len(prov["data_checksum"]) == 64 and prov["packages"]["torch"].startswith("2.13")
    nb = json.loads((tiny_run / "out.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in nb["cells"]), "papermill found the parameters cell"


def test_a_finished_run_is_skipped_not_overwritten(tiny_run):
    (run,) = (tiny_run / "results" / "exp_popularity").iterdir()
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    r = _papermill(tiny_run, "again.ipynb")
    assert r.returncode == 0, r.stderr[-3000:]
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before
    assert "finished earlier" in (tiny_run / "again.ipynb").read_text()


def test_same_seed_gives_identical_metrics(tiny_run, tmp_path):
    r = _papermill(tmp_path, "out.ipynb")
    assert r.returncode == 0, r.stderr[-3000:]
    (a,) = (tiny_run / "results" / "exp_popularity").iterdir(); (b,) = (tmp_path / "results" / "exp_popularity").iterdir()
    assert (a / "metrics.json").read_text() == (b / "metrics.json").read_text()
    assert (a / "per_user.csv").read_bytes() == (b / "per_user.csv").read_bytes()


def test_wrong_parameter_type_fails_clearly(tmp_path):
    r = _papermill(tmp_path, "bad.ipynb", "-p", "max_eval_users", "many")
    assert r.returncode != 0
    assert "parameter 'max_eval_users' must be int | None, got 'many'" in (tmp_path / "bad.ipynb").read_text()  # lwa.core.check_params
    assert not (tmp_path / "results" / "exp_popularity").exists(), "no partial results left behind"
