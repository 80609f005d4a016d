"The Fisher benchmark notebook under papermill on the tiny profile: every path and batch measured or skipped with a reason, and the ratios from the medians."
import json
import subprocess

import pytest

from conftest import BIN, ROOT

PATHS, BATCHES = ["plain", "ghost", "vmap", "loop", "default"], [8, 16, 32]


def _papermill(tmp_path, name, *params):
    out = tmp_path / f"{name}.json"
    cmd = [str(BIN / "papermill"), str(ROOT / "nbs" / "bench_fisher.ipynb"), str(tmp_path / f"{name}.ipynb"), "-p", "out_file", str(out), *params]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(out.read_text()), json.loads((tmp_path / f"{name}.ipynb").read_text())


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return _papermill(tmp_path_factory.mktemp("bench"), "tiny", "-p", "repeats", "2", "-p", "loop_repeats", "1")


def test_every_path_and_batch_is_measured(bench):
    doc, nb = bench
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in nb["cells"]), "papermill found the parameters cell"
    assert doc["profile"] == "tiny" and doc["synthetic"] is True
    rows = {(r["path"], r["batch"]): r for r in doc["results"]}
    assert sorted(rows) == sorted((p, b) for p in PATHS for b in BATCHES)
    for (p, b), r in rows.items():
        if r["status"] == "skipped":  # allowed, but only with its reason and estimate
            assert r["reason"] and r["estimate_bytes"] >= 0 and "median_s" not in r; continue
        slow = p in doc["settings"]["loop_repeats_for"]  # the loop, and the default where it runs the loop
        assert r["status"] == "measured" and len(r["times_s"]) == r["n_repeats"] == (1 if slow else 2)
        assert all(t > 0 for t in r["times_s"]) and r["median_s"] > 0 and r["s_per_example"] == pytest.approx(r["median_s"] / b)
        assert len(r["cpu_s"]) == r["n_repeats"] and r["median_cpu_s"] > 0
        assert r["peak_mem_mb"] >= 0 and 0 < r["mean_tokens"] <= r["max_tokens"] <= r["padded_len"]
    assert doc["settings"]["loop_repeats"] == 1 and doc["settings"]["repeats"] == 2
    assert doc["settings"]["default_method"] == "loop"  # on a CPU
    assert doc["settings"]["loop_repeats_for"] == ["default", "loop"]
    assert sorted(doc["warmup"]) == sorted(PATHS) and all(w["batch"] == 8 and w["wall_s"] > 0 for w in doc["warmup"].values())
    assert [(r["batch"], r["round"]) for r in doc["rounds"]] == [(b, i) for b in BATCHES for i in range(2)]
    assert all(r["wall_s"] > 0 and r["own_cpu_s"] > 0 and r["others_cores"] >= 0 and r["steal_cores"] >= 0 for r in doc["rounds"])


def test_the_batches_are_cut_by_length(bench):
    doc, _ = bench
    assert doc["settings"]["n_pool"] == 256 and [b["batch"] for b in doc["batches"]] == BATCHES
    for b in doc["batches"]:
        assert 0 <= b["pad_ratio"] and b["min_tokens"] <= b["mean_tokens"] <= b["max_tokens"] == b["padded_len"]
        assert b["pool_pad_ratio_length"] <= b["pool_pad_ratio_drawn"]  # sorted batches pad no more than drawn ones


def test_ratios_come_from_the_stored_medians(bench):
    doc, _ = bench
    med = {(r["path"], r["batch"]): r.get("median_s") for r in doc["results"]}
    gp = doc["ratios"]["ghost_over_plain"]
    assert [r["batch"] for r in gp] == BATCHES
    for r in gp:
        assert r["ratio"] == pytest.approx(med[("ghost", r["batch"])] / med[("plain", r["batch"])]) and r["met"] == (r["ratio"] <= 1.5) and r["cpu_ratio"] > 0
    for name, den in (("default_over_loop", "loop"), ("default_over_ghost", "ghost")):
        d = doc["ratios"][name]
        assert d["batch"] == 32 and d["ratio"] == pytest.approx(med[("default", 32)] / med[(den, 32)])
        assert d["met"] == (d["ratio"] <= 1.05) and d["target"] == "<= 1.05"
    lg = doc["ratios"]["loop_over_ghost"]
    assert lg["batch"] == 32 and lg["ratio"] == pytest.approx(med[("loop", 32)] / med[("ghost", 32)]) and lg["met"] == (lg["ratio"] >= 10)


def test_methods_agree_and_the_machine_is_recorded(bench):
    doc, _ = bench
    assert len(doc["agreement"]) == 3 * len(BATCHES)
    assert all(a["reference"] == "loop" and a["max_rel_diff"] < 1e-3 for a in doc["agreement"])
    assert all(a["max_rel_diff"] == 0 for a in doc["agreement"] if a["method"] == "default")  # it is the loop here
    m, prov = doc["machine"], doc["provenance"]
    assert m["torch_threads"] >= 1 and len(m["loadavg_start"]) == len(m["loadavg_end"]) == 3 and m["device_name"]
    assert len(prov["data_checksum"]) == 64 and prov["seed"] == 0 and prov["wall_time_s"] > 0


def test_over_the_memory_limit_is_skipped_with_a_reason_not_timed(tmp_path):
    doc, _ = _papermill(tmp_path, "skip", "-y", "{batch_sizes: [8], methods: [plain, vmap]}", "-p", "max_mem_frac", "1e-6")
    assert [(r["path"], r["status"]) for r in doc["results"]] == [("plain", "skipped"), ("vmap", "skipped")]
    for r in doc["results"]:
        assert "exceeds max_mem_frac" in r["reason"] and "median_s" not in r and "times_s" not in r and r["held_bytes"] + r["estimate_bytes"] > r["limit_bytes"]
    (g,) = doc["ratios"]["ghost_over_plain"]
    assert g["ratio"] is None and g["met"] is None and "not measured" in g["reason"]
    assert doc["ratios"]["loop_over_ghost"]["ratio"] is None and doc["ratios"]["default_over_loop"]["ratio"] is None
