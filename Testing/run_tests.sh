#!/usr/bin/env bash
# Creates .venv with the core, the test tools and slicer-core, then runs every test suite.
# System packages needed first (Debian/Ubuntu): libosmesa6 (offscreen rendering), poppler-utils (PDF pages).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test,slicer,dicom]"
export VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow
.venv/bin/python -m pytest "$@"
