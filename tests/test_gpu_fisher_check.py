"""scripts/gpu_fisher_check.py without a GPU: it refuses with a clear message and writes nothing; its core runs on a
tiny config on a CPU."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "gpu_fisher_check.py"


@pytest.fixture(scope="module")
def mod():
    spec = importlib.util.spec_from_file_location("gpu_fisher_check", SCRIPT)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def test_without_cuda_it_refuses_and_writes_nothing(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}  # no GPU, even on a machine with one
    cmd = [sys.executable, str(SCRIPT), "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)  # a busy machine
    assert r.returncode == 1, r.stderr[-2000:]
    assert "gpu_fisher_check: no CUDA device" in r.stderr and "Nothing was written" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_main_refuses_too(mod, tmp_path, monkeypatch):
    monkeypatch.setattr(mod.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="no CUDA device"): mod.main(["--out", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()


def test_the_config_has_smollm2_135m_shape(mod):
    c = mod.smollm2_config()
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads) == (576, 30, 9, 3)
    assert (c.intermediate_size, c.vocab_size, c.head_dim, c.tie_word_embeddings) == (1536, 49152, 64, True)
    assert mod.smollm2_config(num_hidden_layers=2).num_hidden_layers == 2


TINY = dict(vocab_size=300, hidden_size=32, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2,
            head_dim=8)


def test_the_core_runs_on_a_tiny_config_on_cpu(mod):
    cfg = mod.smollm2_config(num_hidden_layers=2, **TINY)
    doc = mod.check(cfg, "cpu", batch_sizes=(4, 2), repeats=2, n_items=40, lengths=(3, 30), pool=24)
    assert doc["complete"] and doc["default_method"] == "loop" and doc["n_params"] > 0
    assert [r["batch"] for r in doc["results"]] == [2, 4]
    for r in doc["results"]:
        assert sorted(r["times_s"]) == ["ghost", "loop"]
        assert all(len(v) == 2 and min(v) > 0 for v in r["times_s"].values())
        med = r["median_s"]
        assert med["ghost"] == pytest.approx(sum(r["times_s"]["ghost"]) / 2)  # the median of two
        assert r["loop_over_ghost"] == pytest.approx(med["loop"] / med["ghost"])
        assert r["agreement"]["agree"] and r["agreement"]["max_rel_diff"] < doc["agree_rtol"]  # float32: one Fisher
        assert 3 <= r["mean_tokens"] <= r["max_tokens"] <= r["padded_len"] <= 30 and r["pad_ratio"] >= 0
    json.dumps(doc, allow_nan=False)  # strict JSON, as main() writes it


def test_the_agreement_check_can_fail(mod):
    import pandas as pd
    a = pd.DataFrame(dict(layer=[0, 0], module=["q", "k"], fisher=[1.0, 2.0]))
    b = a.assign(fisher=[1.0, 2.1])
    r = mod._agreement(a, b)
    assert not r["agree"] and r["at_group"] == "0/k" and r["max_rel_diff"] == pytest.approx(0.1 / 2.1)
    assert mod._agreement(a, a)["agree"]


def test_the_budget_stops_the_timing(mod):
    cfg = mod.smollm2_config(num_hidden_layers=1, **TINY)
    doc = mod.check(cfg, "cpu", batch_sizes=(2, 4), repeats=2, n_items=10, lengths=(3, 8), pool=8, budget_s=0)
    assert not doc["complete"] and len(doc["results"]) == 1
    r = doc["results"][0]
    assert r["times_s"] == {"ghost": [], "loop": []} and r["loop_over_ghost"] is None and "agreement" not in r
    with pytest.raises(ValueError, match="pool: at least the largest batch"):
        mod.check(cfg, "cpu", batch_sizes=(8,), pool=4)
