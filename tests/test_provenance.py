"Provenance audit: every committed result file belongs to a finished run (or benchmark) with its provenance fields, and the book's provenance page names the source run of every number the paper prints."
import json
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

RUN_FILES = {"DONE", "config.json", "metrics.json", "provenance.json"}
FIELDS = {"git", "packages", "python", "platform", "host", "cpu_count", "seed", "data_checksum", "started_at", "finished_at", "wall_time_s"}


def _tracked() -> list:
    "The result files git tracks (the committed ones: local tiny runs are ignored), as paths relative to the checkout."
    r = subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True)
    if r.returncode: pytest.skip(f"not a git checkout: {r.stderr.strip()}")
    return [Path(p) for p in r.stdout.split()]


def _strict(path: Path):
    "Parse JSON rejecting NaN and infinity (strict JSON has neither)."
    def bad(c): raise ValueError(f"{path}: {c} is not strict JSON")
    return json.loads((ROOT / path).read_text(), parse_constant=bad)


def _check_provenance(prov: dict, where: str, timed: bool = True):
    "`timed`: the start and the wall time must be recorded (run folders always record them; some committed benchmark files, written before the benchmark notebooks recorded their start, do not)."
    missing = FIELDS - set(prov)
    assert not missing, f"{where}: provenance lacks {sorted(missing)}"
    assert prov["git"].get("commit") and len(prov["git"]["commit"]) == 40 and isinstance(prov["git"].get("dirty"), bool), f"{where}: git commit/dirty"
    assert prov["packages"].get("lwa") and prov["packages"].get("torch") and prov["packages"].get("transformers"), f"{where}: package versions"
    assert prov["finished_at"], f"{where}: no finish time"
    if timed or prov["started_at"] is not None:
        assert prov["started_at"] <= prov["finished_at"] and prov["wall_time_s"] >= 0, f"{where}: times"


def test_every_committed_result_file_has_its_provenance():
    files = _tracked()
    assert len(files) > 100, "the committed results are there"
    runs, other = {}, []
    for f in files:
        parts = f.parts
        if parts[1] in ("bench", "notebooks") or len(parts) < 4: other.append(f)
        else: runs.setdefault(Path(*parts[:3]), set()).add(parts[3])  # results/<experiment>/<run_id>/<file>
    for run, names in runs.items():
        assert RUN_FILES <= names, f"{run}: a committed run folder lacks {sorted(RUN_FILES - names)} (a half-written run must not be committed)"
        prov = _strict(run / "provenance.json")
        _check_provenance(prov, str(run))
        assert prov["run_id"] == run.name, f"{run}: provenance run_id {prov['run_id']!r}"
        assert _strict(run / "config.json"), f"{run}: empty config"
        m = _strict(run / "metrics.json")
        assert m.get("run_id", run.name) == run.name, f"{run}: metrics name another run"
        for csv in (n for n in names if n.endswith(".csv")):
            assert (ROOT / run / csv).read_text().count("\n") >= 2, f"{run}/{csv}: no rows"
    for f in other:
        if len(f.parts) == 2 and f.name.startswith("runs-"):  # a manifest (lwa.paper.pinned_run): each pin is committed
            pins = [Path("results") / e["path"] for e in _strict(f)["runs"]]
            committed = all(p in files or any(q.parent == p for q in files) for p in pins)
            assert pins and committed, f"{f}: pins a result that is not committed"
            continue
        if f.parts[1] == "bench":
            assert f.suffix == ".json", f"{f}: a benchmark writes JSON"
            _check_provenance(_strict(f)["provenance"], str(f), timed=False)
        else:
            assert f.suffix == ".ipynb", f"{f}: results/notebooks/ holds executed notebooks"
            nb = json.loads((ROOT / f).read_text())
            pm = nb["metadata"].get("papermill") or {}
            assert "parameters" in pm and pm.get("exception") in (None, False), f"{f}: not a successful papermill run"
            assert not any(o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", [])), f"{f}: has an error output"
    assert {r.parts[1] for r in runs} >= {"distill", "exp_distill", "exp_fisher", "exp_popularity", "exp_teacher", "exp_weights"}


def test_the_provenance_page_names_the_source_of_every_number(tmp_path):
    "The committed paper's generator: every macro, table and figure is listed under a part, with that part's runs, on the book's provenance page."
    import re
    from lwa.book import provenance_page
    from lwa.manuscript import generate
    P = generate(tmp_path / "generated", ROOT / "results", ROOT / "figures")
    page = provenance_page(P)
    macros = set(re.findall(r"\\newcommand\{\\([A-Za-z]+)\}", (tmp_path / "generated" / "macros.tex").read_text()))
    listed = set(re.findall(r"`\\([A-Za-z]+)`", page))
    assert macros and macros <= listed, f"macros without a source on the provenance page: {sorted(macros - listed)[:10]}"
    for part, (ms, tables, figs) in P.feeds.items():
        runs = [s for s in P.sources if part in s.parts]
        assert runs or part in P.unmeasured, f"part {part!r} wrote {len(ms)} macros from no run"
        section = page.split(f"### {part}\n", 1)[1].split("\n### ", 1)[0]
        for f in P.unmeasured.get(part, []): assert f"not measured: `{f}`" in section or f"`{f}`" in section, (part, f)
        for s in runs: assert s.path.name in section, f"{part}: {s.path.name} not listed"
        for t in tables: assert f"`tab_{t}`" in section
    for s in P.sources:
        assert s.path.name in page and s.commit != "unknown", s.path
        assert not s.stale or "STALE" in page, f"{s.run_id} was computed at lwa {s.lwa_version} and the page does not say so"


def test_the_readme_headline_table_is_the_committed_results(tmp_path):
    "The README's generated table holds exactly what `lwa.manuscript.readme_table` makes of the committed results (python -m lwa.paper readme)."
    from lwa.manuscript import README_MARKS, generate, readme_table
    P = generate(tmp_path / "generated", ROOT / "results", ROOT / "figures")
    text = (ROOT / "README.md").read_text()
    a, b = README_MARKS
    assert a in text and b in text, "README.md lost the headline markers"
    assert text.split(a)[1].split(b)[0].strip() == readme_table(P).strip(), "README.md's table is out of date: run .venv/bin/python -m lwa.paper readme"


def test_the_readme_make_targets_exist():
    "Every `make X` the README tells a user to run is a target of the Makefile."
    import re
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    used = set(re.findall(r"\bmake ([a-z][a-z-]*)", (ROOT / "README.md").read_text()))
    assert used and used <= targets, f"README names make targets the Makefile lacks: {sorted(used - targets)}"
