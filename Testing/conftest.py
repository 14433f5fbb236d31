"""Shared pytest set-up: import paths, the optional real-data folder and BLAS thread counts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODULE_DIR = REPO / "LiverMetsModule"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))

# Real images live beside the checkout (../shared/data); LIVERMETS_DATA overrides.
SHARED_DATA = Path(os.environ.get("LIVERMETS_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder, or skip the test with the reason."""
    if not (SHARED_DATA / "README.md").exists():
        pytest.skip(f"real data folder not found at {SHARED_DATA} (set LIVERMETS_DATA to use it)")
    return SHARED_DATA


@pytest.fixture
def blas_threads():
    """A function giving the set of thread counts of the BLAS libraries numpy uses (threadpoolctl),
    or skip the test when threadpoolctl is missing or sees no BLAS library."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def counts() -> set[int]:
        return {library["num_threads"] for library in threadpoolctl.threadpool_info() if library["user_api"] == "blas"}

    if not counts():
        pytest.skip("numpy here uses no BLAS library that threadpoolctl can see")
    return counts
