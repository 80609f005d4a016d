"""The README's worked example of a new distillation method runs as written: it registers the method, trains it beside the references on the
tiny profile, and tests it against them; the units land in the cache's scratch folder, keyed by the method's code."""
import json
import re
import shutil
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"```python\n(# worked example: a new distillation method.*?)```", text, re.S)
    assert m, "README.md lost its worked example of a new distillation method"
    return m.group(1)


def test_readme_new_method_example(capsys, tiny_res, monkeypatch):
    monkeypatch.setenv("LWA_RESULTS", str(tiny_res))  # the teacher of the session's exp_teacher run, as after `make reproduce`
    from lwa.methods import METHODS
    from lwa.models import cache_dir
    units = cache_dir() / "try" / "distill"
    for d in units.glob("tiny-*-cosine_kd-*"): shutil.rmtree(d)  # the example's own units train again; the references may be reused
    scope = {}
    try:
        exec(compile(readme_example(), "README.md (worked example)", "exec"), scope)
        summary, tests = scope["summary"], scope["tests"]
        assert set(summary.method) == {"cosine_kd", "nokd", "uniform"}
        assert set(tests.ref) == {"nokd", "uniform"} and (tests.method == "cosine_kd").all()
        assert tests.p_value.between(0, 1).all()
        done = [d for d in units.glob("tiny-*-cosine_kd-seed0-*") if (d / "DONE").is_file()]
        assert len(done) == 1, f"expected one finished cosine_kd unit under {units}, found {done}"
        conf = json.loads((done[0] / "config.json").read_text())
        assert conf.get("method_code"), "a registered method's unit must be keyed by its code"
        log = json.loads((done[0] / "train_log.json").read_text())
        assert any("loss_cosine" in r for r in log), "the method's own term was not trained"
        assert "cosine_kd" in capsys.readouterr().out
    finally:
        METHODS.pop("cosine_kd", None)
