"""The extension's layout: what CMake installs is what the source tree holds, and the layers stay apart."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO / "LiverMetsModule"


def cmake_list(variable: str) -> set[str]:
    text = (MODULE_DIR / "CMakeLists.txt").read_text(encoding="utf-8")
    match = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    assert match, f"{variable} not set in LiverMetsModule/CMakeLists.txt"
    return set(match.group(1).split())


def shipped_files(patterns: tuple[str, ...]) -> set[str]:
    files = set()
    for package in ("livermets", "LiverMetsLib"):
        for pattern in patterns:
            files |= {str(p.relative_to(MODULE_DIR)) for p in (MODULE_DIR / package).rglob(pattern)
                      if "__pycache__" not in p.parts}
    return files


def test_cmake_lists_every_python_file():
    listed = cmake_list("MODULE_PYTHON_SCRIPTS")
    on_disk = shipped_files(("*.py",)) | {"LiverMets.py"}
    assert on_disk - listed == set(), "add these to MODULE_PYTHON_SCRIPTS"
    assert listed - on_disk == set(), "listed in CMake but missing on disk"


def test_cmake_lists_every_package_resource():
    listed = cmake_list("MODULE_PYTHON_RESOURCES")
    on_disk = shipped_files(("*.json", "*.npz"))
    assert on_disk == listed


def test_cmake_copies_every_top_level_resource():
    listed = cmake_list("MODULE_RESOURCES")
    on_disk = {str(p.relative_to(REPO / "Resources")) for p in (REPO / "Resources").rglob("*")
               if p.is_file() and p.parent.name in ("Icons", "UI")}
    assert on_disk == listed


def imported_top_modules(package: Path) -> set[str]:
    names = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_slicer_or_qt():
    forbidden = {"slicer", "qt", "ctk", "PythonQt", "vtkITK", "sitkUtils", "LiverMetsLib", "scipy", "skimage"}
    assert imported_top_modules(MODULE_DIR / "livermets") & forbidden == set()


def test_glue_never_imports_qt():
    assert imported_top_modules(MODULE_DIR / "LiverMetsLib") & {"qt", "ctk", "PythonQt"} == set()


def test_core_imports_in_a_bare_interpreter():
    """Importing every core module must not pull in slicer, Qt or VTK rendering at import time."""
    code = (
        "import sys, pkgutil, importlib, livermets\n"
        "for m in pkgutil.walk_packages(livermets.__path__, 'livermets.'):\n"
        "    if m.name != 'livermets.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "bad = [n for n in ('slicer', 'qt', 'vtkmodules.vtkRenderingOpenGL2') if n in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=str(MODULE_DIR), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
