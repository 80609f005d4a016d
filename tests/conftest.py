"Shared fixtures: the checkout, the shared real data (tests that need it skip, saying so, when it is absent)."
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LWA_DATA_DIR") or ROOT.parent / "shared" / "data")
BIN = Path(sys.executable).parent

# jupyter_client picks a kernel's free ports and the kernel binds them a moment later, so papermill runs started together can
# pick the same port: the loser's kernel dies before it runs a cell (nteract/papermill#511; it failed one CI run, stop 29).
KERNEL_LOST_RACE = ("Address already in use", "Kernel died before replying to kernel_info", "Kernel didn't respond in")


def run_papermill(cmd, **kw):
    "`subprocess.run` of a papermill command (output captured as text), started once more if its kernel lost the port race."
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode and any(s in r.stdout + r.stderr for s in KERNEL_LOST_RACE):
        r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return r


needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"real data absent: {DATA} not found (CI and sessions have ../shared/data)")


@pytest.fixture(scope="session", autouse=True)
def lwa_cache(tmp_path_factory):
    """One LWA_CACHE for the session (never the checkout's .cache): a cached teacher is keyed by its settings and the data's
    checksum, and its training is seeded, so a tiny teacher is fine-tuned at most once per session, not once per test (the
    sweeps' tests find the session's exp_teacher run instead: `tiny_res`). Tests of the cache itself, and of two independent
    runs, pass a cache of their own."""
    path, before = tmp_path_factory.mktemp("lwa_cache"), os.environ.get("LWA_CACHE")
    os.environ["LWA_CACHE"] = str(path)
    yield path
    if before is None: os.environ.pop("LWA_CACHE")
    else: os.environ["LWA_CACHE"] = before


@pytest.fixture(scope="session")
def teacher_tree(tmp_path_factory):
    """`exp_teacher` on tiny under papermill, once per session and on one thread (as `make verify` re-trains it): a folder
    with `res/` (the run, the throughput benchmark) and `fig/`. Tests add to a copy of it (`copy_teacher_tree`), never to it."""
    t = tmp_path_factory.mktemp("teacher")
    env = dict(os.environ, OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    cmd = [str(BIN / "papermill"), str(ROOT / "nbs" / "exp_teacher.ipynb"), str(t / "t.ipynb"),
           "-p", "out_dir", str(t / "res"), "-p", "fig_dir", str(t / "fig"), "-p", "verbal_users", "40"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    return t


def copy_teacher_tree(tree, dest):
    "The session's tiny `exp_teacher` results and figures copied into `dest/res` and `dest/fig`: (res, fig)."
    for d in ("res", "fig"): shutil.copytree(tree / d, dest / d, dirs_exist_ok=True)
    return dest / "res", dest / "fig"


@pytest.fixture
def tiny_res(teacher_tree, tmp_path):
    """A results folder holding (a copy of) the session's tiny `exp_teacher` run: a notebook given it as `out_dir`, or code
    run with it as `LWA_RESULTS`, distils from that teacher, as after `make reproduce`, and fine-tunes no teacher of its own."""
    return copy_teacher_tree(teacher_tree, tmp_path / "tree")[0]


@pytest.fixture(scope="session")
def real():
    "The three shared Amazon datasets, loaded once."
    if not DATA.is_dir(): pytest.skip(f"real data absent: {DATA} not found")
    from lwa.data import load_dataset
    return {n: load_dataset(n, DATA) for n in ("office", "scientific", "scientific_lcrec")}
