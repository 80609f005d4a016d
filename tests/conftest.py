"Shared fixtures: the checkout, the shared real data (tests that need it skip, saying so, when it is absent)."
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LWA_DATA_DIR") or ROOT.parent / "shared" / "data")
BIN = Path(sys.executable).parent

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"real data absent: {DATA} not found (CI and sessions have ../shared/data)")


@pytest.fixture(scope="session")
def real():
    "The three shared Amazon datasets, loaded once."
    if not DATA.is_dir(): pytest.skip(f"real data absent: {DATA} not found")
    from lwa.data import load_dataset
    return {n: load_dataset(n, DATA) for n in ("office", "scientific", "scientific_lcrec")}
