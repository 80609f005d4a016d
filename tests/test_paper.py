"The paper and the book from a tmp results tree of tiny runs: macros and tables, a missing file named, the book built and seen in Chromium."
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import BIN, ROOT, copy_teacher_tree
from lwa.book import stage_book
from lwa.manuscript import generate
from lwa.paper import MissingResultError

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NB = dict(timeout=1200, capture_output=True, text=True, cwd=ROOT)


def _pm(env, nb, out, *args):
    r = subprocess.run([str(BIN / "papermill"), str(ROOT / "nbs" / f"{nb}.ipynb"), str(out), *args], env=env, **NB)
    assert r.returncode == 0, f"{nb}: {r.stderr[-3000:]}"


@pytest.fixture(scope="module")
def tree(tmp_path_factory, teacher_tree):
    "Tiny runs of the five experiment notebooks the paper reads, in a tmp results tree (a few minutes on 2 cores)."
    t = tmp_path_factory.mktemp("paper")
    res, fig = copy_teacher_tree(teacher_tree, t)  # exp_teacher's run: the session's
    env = dict(os.environ, LWA_CACHE=str(t / "cache"), OMP_NUM_THREADS="1")
    io = ["-p", "out_dir", str(res), "-p", "fig_dir", str(fig)]
    _pm(env, "exp_popularity", t / "pop.ipynb", "-p", "out_dir", str(res))
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


# ---- issue 18, item 10: the committed paper is readable (these read the committed results; no run is made) ----
SECTIONS = ROOT / "paper" / "sections"
SHRINKS = ("\\scriptsize", "\\tiny", "\\resizebox", "\\scalebox")  # below acmart's \footnotesize (7 pt), or shrunk


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    "The paper generated from the committed results and figures, into a tmp folder: the `Paper` and its generated/."
    out = tmp_path_factory.mktemp("committed") / "generated"
    return generate(out, ROOT / "results", ROOT / "figures"), out


def _floats(gen):
    "(file, environment, body) of every table and figure of the paper's sections and of the report's generated body."
    texts = {f.name: f.read_text() for f in sorted(SECTIONS.glob("*.tex"))}
    texts["report_body.tex"] = (gen / "report_body.tex").read_text()
    float_re = r"\\begin\{((?:table|figure)\*?)\}(.*?)\\end\{\1\}"
    return [(name, env, body) for name, text in texts.items() for env, body in re.findall(float_re, text, re.S)]


def _tables(gen) -> list:
    "(where, room, setup, table) of every table: in a float of the sections, or in the report (wide there when it must be)."
    from lwa.figures import COLUMN_PT, TEXT_PT
    out = []
    for name, env, body in _floats(gen):
        assert not any(s in body for s in SHRINKS), f"{name}: a float below 7 pt ({[s for s in SHRINKS if s in body]})"
        placed = re.search(r"^(.*)\\input\{generated/(tab_\w+)\}", body, re.M) if env.startswith("table") else None
        if placed:
            out.append((f"{name}:{placed[2]}", TEXT_PT if env.endswith("*") else COLUMN_PT, *placed.groups()))
    report = (gen / "report_body.tex").read_text()
    assert not any(s in report for s in SHRINKS), "the report shrinks a table or sets it below 7 pt"
    boxed = re.findall(r"\\sbox\{\\lwatable\}\{(.*)\\input\{generated/(tab_\w+)\}\}", report)
    return out + [(f"report_body.tex:{tab}", TEXT_PT, setup, tab) for setup, tab in boxed]


def test_every_table_is_set_at_7pt_or_more_and_fits_where_it_is_placed(committed):
    "Each table is set at \\footnotesize (7 pt) or larger, never shrunk, and (as LaTeX measures it) fits its column or page."
    P, gen = committed
    setups = [s for s in _tables(gen) if (gen / f"{s[3]}.tex").is_file() or s[3] != "tab_frontier"]  # frontier: optional
    assert len(setups) >= 2 * 9, "the paper's tables and the report's"
    for where, _, setup, _ in setups:
        assert not re.search(r"\\(scriptsize|tiny)\b", setup), f"{where}: below 7 pt"
    if not shutil.which("pdflatex"):
        pytest.skip("pdflatex absent: the sizes are checked, the widths are not")
    doc = ["\\documentclass[sigconf,nonacm]{acmart}\\settopmatter{printacmref=false}\\usepackage{booktabs}",
           "\\input{generated/macros}\\input{generated/provenance}\\newlength\\tw\\begin{document}",
           "\\title{t}\\author{a}\\affiliation{\\institution{i}\\country{}}\\maketitle"]
    doc += [f"\\settowidth\\tw{{{setup}\\input{{generated/{tab}}}}}\\typeout{{WIDTH {i} \\the\\tw}}"
            for i, (_, _, setup, tab) in enumerate(setups)]
    (gen.parent / "widths.tex").write_text("\n".join(doc + ["\\end{document}\n"]))
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "widths.tex"], cwd=gen.parent,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:]
    widths = {int(i): float(w) for i, w in re.findall(r"^WIDTH (\d+) ([\d.]+)pt$", r.stdout, re.M)}
    assert len(widths) == len(setups)
    for i, (where, room, _, _) in enumerate(setups):
        assert widths[i] <= room + 0.1, f"{where}: {widths[i]:.1f} pt wide where {room:.1f} pt fit"


def test_every_figure_prints_its_text_at_7pt_or_more(committed):
    "Each figure is placed no wider than it was drawn for its column or page, and none of its text prints below 7 pt."
    from lwa.figures import COLUMN_PT, MIN_PT, TEXT_PT, pdf_width, printed_pt
    P, gen = committed
    names = {macro: name for macro, (name, _) in P.figures.items()}
    placed = [(where, env, opts, macro) for where, env, body in _floats(gen) if env.startswith("figure")
              for opts, macro in re.findall(r"\\includegraphics(?:\[([^\]]*)\])?\{\\(\w+)\}", body)]
    assert len(placed) >= 5 + len(P.figures)  # the paper's five and each in the report
    for where, env, opts, macro in placed:
        if macro not in names:  # the frontier's figures, placed only where bench_frontier measured it
            unmeasured = macro.endswith("FrontierFig") and P.macros[macro[:-11] + "IfFrontier"] == "#2"
            assert unmeasured, f"{where}: \\{macro} is no figure"
            continue
        pdf = P.fig_dir / f"{names[macro]}.pdf"
        room = TEXT_PT if env.endswith("*") else COLUMN_PT
        scaled = re.fullmatch(r"width=([\d.]*)\\(columnwidth|linewidth|textwidth)", opts)
        assert not opts or scaled, f"{where}: \\{macro} placed with [{opts}]"
        unit = TEXT_PT if scaled and scaled[2] == "textwidth" else room
        width = float(scaled[1] or 1) * unit if scaled else pdf_width(pdf) * 72.27 / 72  # TeX points
        assert width <= room + 0.5, f"{where}: \\{macro} is {width:.0f} pt wide in a {room:.0f}-pt {env}"
        smallest = printed_pt(pdf, width)
        assert smallest >= MIN_PT - 1e-6, f"{where}: \\{macro} prints text at {smallest:.1f} pt"


def test_the_committed_figures_are_what_the_code_draws_from_the_pinned_runs(committed, tmp_path):
    "`python -m lwa.paper figures` would change no committed figure: each draws the same text at the same sizes."
    from lwa.figures import pdf_text
    P = generate(tmp_path / "generated", ROOT / "results", tmp_path / "figures", draw=True)
    names = sorted({name for name, _ in P.figures.values()})
    assert names == sorted({name for name, _ in committed[0].figures.values()})
    for name in names:
        assert pdf_text(tmp_path / "figures" / f"{name}.pdf") == pdf_text(ROOT / "figures" / f"{name}.pdf"), \
            f"figures/{name}.pdf is not what the code draws: run .venv/bin/python -m lwa.paper figures"


def test_the_baselines_the_text_describes_are_rows_of_the_main_table(committed):
    "Every method the Baselines paragraph describes is in the main table (the paper's sweep, lwa.methods.MAIN_METHODS)."
    from lwa.methods import MAIN_METHODS
    P, _ = committed
    text = (SECTIONS / "method.tex").read_text()
    baselines = re.search(r"\\subsection\{Baselines\}(.*?)(?=\\(?:sub)?section\{|\Z)", text, re.S)[1]
    named = {m.replace("\\_", "_") for m in re.findall(r"\\method\{([^}]*)\}", baselines)}
    assert {"nokd", "uniform", "tinybert"} <= named, "the paragraph was found"
    shown = set(P.main_table.method) & set(MAIN_METHODS)
    assert named <= shown, f"described among the baselines, not in the main table: {sorted(named - shown)}"
