"The paper and the book from a tmp results tree of tiny runs: macros and tables, a missing file named, the book built and seen in Chromium."
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import BIN, ROOT
from lwa.book import stage_book
from lwa.manuscript import generate
from lwa.paper import MissingResultError

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NB = dict(timeout=1200, capture_output=True, text=True, cwd=ROOT)


def _pm(env, nb, out, *args):
    r = subprocess.run([str(BIN / "papermill"), str(ROOT / "nbs" / f"{nb}.ipynb"), str(out), *args], env=env, **NB)
    assert r.returncode == 0, f"{nb}: {r.stderr[-3000:]}"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    "Tiny runs of the five experiment notebooks the paper reads, in a tmp results tree (a few minutes on 2 cores)."
    t = tmp_path_factory.mktemp("paper")
    res, fig = t / "res", t / "fig"
    env = dict(os.environ, LWA_CACHE=str(t / "cache"), OMP_NUM_THREADS="1")
    io = ["-p", "out_dir", str(res), "-p", "fig_dir", str(fig)]
    _pm(env, "exp_popularity", t / "pop.ipynb", "-p", "out_dir", str(res))
    _pm(env, "exp_teacher", t / "t.ipynb", *io, "-p", "verbal_users", "40")
    _pm(env, "exp_fisher", t / "f.ipynb", *io, "-p", "n_fisher", "32", "-p", "n_ablation", "40")
    _pm(env, "exp_distill", t / "d.ipynb", *io, "-y", "methods: [nokd, uniform, fisher]")
    _pm(env, "exp_weights", t / "w.ipynb", *io, "-y", "{strategies: [uniform, fisher, fisher_semantic], selections: [fisher_select]}")
    return t, res, fig


def _gen(t, res, fig, out="generated"):
    return generate(t / out, res, fig, profile="tiny", datasets=["synthetic"], benchmarks=False)


def test_generator_writes_macros_and_tables(tree):
    t, res, fig = tree
    P = _gen(t, res, fig)
    out = t / "generated"
    tabs = {f.stem for f in out.glob("tab_*.tex")}
    assert tabs == {"tab_data", "tab_teacher", "tab_fisher", "tab_main", "tab_efficiency", "tab_claims", "tab_strategies", "tab_beta", "tab_provenance"}
    macros = (out / "macros.tex").read_text()
    for name in ("SyntheticTeacherNDCG", "SyntheticHDepthVerdict", "SyntheticFisherNDCG", "SyntheticUniformNDCG", "SyntheticSpeedup",
                 "WeightsBestBeta", "DistillAlpha", "NSeeds"):
        assert f"\\newcommand{{\\{name}}}" in macros, name
    assert re.search(r"\\newcommand\{\\SyntheticFisherVsUniform\}\[3\]\{#[123]\}", macros)  # a selector, fixed by the data
    assert not re.search(r"\\newcommand\{\\[A-Za-z]*\d", macros) and "nan" not in macros.lower()
    main = (out / "tab_main.tex").read_text()
    assert main.count("\\\\") >= 4 and "fisher" in main and "uniform" in main
    assert "ProvCommit" in (out / "provenance.tex").read_text() and {s.experiment for s in P.sources} >= {"exp_distill", "exp_fisher", "exp_teacher"}
    assert not any(s.stale for s in P.sources)  # computed by this lwa version
    if shutil.which("latexmk"):  # every generated table compiles
        doc = ("\\documentclass{article}\\usepackage{booktabs}\\input{macros}\\input{provenance}\\begin{document}"
               + "".join(f"\\input{{{n}}}\n\n" for n in sorted(tabs)) + "\\end{document}\n")
        (out / "all.tex").write_text(doc)
        r = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "all.tex"], cwd=out, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout[-3000:]


def test_a_missing_results_file_stops_the_build_naming_it(tree):
    t, res, fig = tree
    victim = next((res / "exp_distill").iterdir()) / "significance.csv"
    moved = victim.with_suffix(".bak")
    victim.rename(moved)
    try:
        with pytest.raises(MissingResultError, match=r"significance\.csv: missing; it is written by nbs/exp_distill\.ipynb"):
            _gen(t, res, fig, "gen2")
        r = subprocess.run([sys.executable, "-m", "lwa.paper", "--root", str(res), "--figures", str(fig), "--out", str(t / "gen3"),
                            "--profile", "tiny", "--datasets", "synthetic", "--no-benchmarks"], capture_output=True, text=True, cwd=ROOT)
        assert r.returncode != 0 and str(victim) in r.stderr and "nbs/exp_distill.ipynb" in r.stderr
    finally:
        moved.rename(victim)
    figure = next(fig.glob("beta_sensitivity_*.png"))  # a missing figure names its notebook too
    figure.rename(figure.with_suffix(".bak"))
    try:
        with pytest.raises(MissingResultError, match="exp_weights.ipynb"): _gen(t, res, fig, "gen4")
    finally:
        figure.with_suffix(".bak").rename(figure)


_PDF = b"%PDF-1.1\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj 3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 72 72]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def _chromium(url, out=None, dom=False):
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", f"--user-data-dir={out.parent / 'chrome' if out else '/tmp/lwa-chrome'}",
            "--window-size=1280,900", "--virtual-time-budget=8000", "--dump-dom" if dom else f"--screenshot={out}", url]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not CHROMIUM, reason="chromium absent (.ci/run installs it)")
def test_book_builds_offline_and_shows_title_table_image_and_math(tree):
    t, res, fig = tree
    P = _gen(t, res, fig, "gen5")
    book = t / "book"; book.mkdir()
    shutil.copy2(ROOT / "book" / "_config.yml", book / "_config.yml")
    (t / "paper.pdf").write_bytes(_PDF)
    stage_book(P, book, t / "paper.pdf")
    r = subprocess.run([str(BIN / "jupyter-book"), "build", str(book), "-W", "-n", "--keep-going"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]  # -W -n: no warning, no broken internal reference
    html = book / "_build" / "html"
    for page in ("index", "results"):
        shot = t / f"{page}.png"
        _chromium((html / f"{page}.html").as_uri(), shot)
        assert shot.is_file() and shot.stat().st_size > 20_000, page
    results = _chromium((html / "results.html").as_uri(), t / "dom.png", dom=True).stdout
    assert "<h1>Results" in results and "<table" in results and "<img" in results and "lwa: Layerwise Adapter" in results
    assert "fisher" in results and "paper.pdf" in results
    index = _chromium((html / "index.html").as_uri(), t / "dom2.png", dom=True).stdout
    assert "lwa: Layerwise Adapter" in index
    math = _chromium((html / "api" / "06_weighting.html").as_uri(), t / "dom3.png", dom=True).stdout
    assert re.search(r'class="MathJax(_CHTML|_Display)?"', math), "math did not render offline"
    for img in re.findall(r'<img[^>]+src="([^"]+)"', results):  # every image on the results page exists
        assert (html / img).is_file(), img
