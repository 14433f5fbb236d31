"""Fixtures for the LiverMetsLib tests: real MRML from the slicer-core wheel, no Qt.

``headlessSlicer`` (session) builds one scene with the real module logics (see ``headless.py``);
``scene`` hands each test that scene emptied afterwards.  Every test here is skipped, with the reason,
when the ``slicer`` package (pip install slicer-core) is not importable.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

try:
    import slicer  # noqa: F401  (the slicer-core wheel)

    SLICER_IMPORT_ERROR = ""
except ImportError as error:  # pragma: no cover - depends on the environment
    SLICER_IMPORT_ERROR = f"slicer-core is not importable ({error}); pip install slicer-core to run MRML tests"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).resolve().parent == HERE:
            item.add_marker(pytest.mark.slicer)
            if SLICER_IMPORT_ERROR:
                item.add_marker(pytest.mark.skip(reason=SLICER_IMPORT_ERROR))


@pytest.fixture(scope="session")
def headlessSlicer():
    """One headless Slicer (scene + module logics) for the whole session."""
    if SLICER_IMPORT_ERROR:
        pytest.skip(SLICER_IMPORT_ERROR)
    from headless import createHeadlessSlicer

    return createHeadlessSlicer()


@pytest.fixture
def scene(headlessSlicer):
    """The session's scene, emptied after the test."""
    yield headlessSlicer.scene
    headlessSlicer.clear()


@pytest.fixture
def logic(scene, headlessSlicer):
    """A LiverMetsLogic on the test's scene, with LiverMets' terminology loaded."""
    from LiverMetsLib.logic import LiverMetsLogic

    return LiverMetsLogic(scene, terminologiesLogic=headlessSlicer.logic("Terminologies"))
