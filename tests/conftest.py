"Shared fixtures: the checkout, the shared real data (tests that need it skip, saying so, when it is absent)."
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LWA_DATA_DIR") or ROOT.parent / "shared" / "data")
BIN = Path(sys.executable).parent

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"real data absent: {DATA} not found (CI and sessions have ../shared/data)")


@pytest.fixture(scope="session", autouse=True)
def lwa_cache(tmp_path_factory):
    """One LWA_CACHE for the session (never the checkout's .cache): a cached teacher is keyed by its settings and the data's
    checksum, and its training is seeded, so the tiny teacher is fine-tuned once per session, not once per test. Tests of the
    cache itself, and of two independent runs, pass a cache of their own."""
    path, before = tmp_path_factory.mktemp("lwa_cache"), os.environ.get("LWA_CACHE")
    os.environ["LWA_CACHE"] = str(path)
    yield path
    if before is None: os.environ.pop("LWA_CACHE")
    else: os.environ["LWA_CACHE"] = before


@pytest.fixture(scope="session")
def real():
    "The three shared Amazon datasets, loaded once."
    if not DATA.is_dir(): pytest.skip(f"real data absent: {DATA} not found")
    from lwa.data import load_dataset
    return {n: load_dataset(n, DATA) for n in ("office", "scientific", "scientific_lcrec")}
