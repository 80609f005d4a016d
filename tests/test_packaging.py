"The project's own files agree with each other: pins, nbdev settings, notebook conventions."
import ast
import configparser
import json
import re

import lwa
from conftest import ROOT


def _settings():
    c = configparser.ConfigParser(delimiters=["="]); c.read(ROOT / "settings.ini")
    return c["DEFAULT"]


def _env_pins():
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "- pip:")
    return [l.strip()[2:] for l in lines[start + 1:] if l.strip().startswith("- ")]


def test_environment_yml_matches_settings_ini():
    s = _settings()
    assert sorted(_env_pins()) == sorted(s["requirements"].split() + s["dev_requirements"].split())


def test_every_requirement_is_pinned_and_nbdev_is_2():
    reqs = _settings()["requirements"].split()
    unpinned = [r for r in reqs if "==" not in r]
    assert not unpinned, f"pin these in settings.ini: {unpinned}"
    nbdev = next(r for r in reqs if r.startswith("nbdev=="))
    assert nbdev.split("==")[1].startswith("2."), "nbdev 3 rejects settings.ini; keep nbdev 2"
    for pkg in ("jupyterlab", "papermill", "torch", "transformers", "matplotlib", "pandas", "jupyter-book"):
        assert any(r.split("==")[0] == pkg for r in reqs), f"{pkg} is a design-card dependency"


def test_nbdev_settings_keep_the_parameters_tag():
    s = _settings()
    assert s["allowed_cell_metadata_keys"].strip() == "tags"
    assert {"notest", "slow"} <= set(s["tst_flags"].split())
    assert lwa.__version__ == s["version"]


def _code_cells(path):
    return [("".join(c["source"]), c.get("metadata", {})) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def test_experiment_notebooks_have_one_literal_parameters_cell_and_no_definitions():
    nbs = sorted((ROOT / "nbs").glob("exp_*.ipynb"))
    assert nbs, "no experiment notebooks found"
    for nb in nbs:
        cells = _code_cells(nb)
        params = [src for src, md in cells if "parameters" in md.get("tags", [])]
        assert len(params) == 1, f"{nb.name}: needs exactly one cell tagged 'parameters'"
        for stmt in ast.parse(params[0]).body:  # each statement `name = <a Python literal>` (numbers, strings, lists, dicts, ...)
            code = ast.unparse(stmt)
            assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name), \
                f"{nb.name}: a parameter must be `name = literal`, got {code!r}"
            try: ast.literal_eval(stmt.value)
            except ValueError: raise AssertionError(f"{nb.name}: non-literal parameter {code!r}") from None
        for src, _ in cells:
            assert not re.search(r"^\s*(def|class) ", src, re.M), f"{nb.name}: experiment notebooks only call lwa; move definitions into a library notebook"


def test_library_notebooks_follow_the_skeleton():
    for nb in sorted((ROOT / "nbs").glob("[0-9]*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# "), f"{nb.name}: starts with an H1 title"
        assert "#| default_exp" in "".join(cells[1]["source"]), f"{nb.name}: second cell is #| default_exp"
        assert all(c.get("execution_count") is None for c in cells if c["cell_type"] == "code"), f"{nb.name}: run nbdev_clean"


def test_no_copy_of_the_shared_data_is_committed():
    names = {"Office_Products.inter.json", "Scientific.item.json", "Scientific.train.inter", "Scientific.text"}
    found = [p for p in ROOT.rglob("*") if p.name in names and ".venv" not in p.parts]
    assert not found, f"the shared data must be read from ../shared/data, not copied: {found}"
