"""Static checks of the desktop module (``LiverMets.py`` needs Qt, so it is parsed, never imported)
and of the phantom sample data it registers.

Every ``self.ui.<name>`` must be a widget of the .ui; every ``SlicerParameterName`` a field of the
parameter node wrapper (and every field bound); every ``self.logic.<method>`` a method of
``LiverMetsLogic``; every ``rendering.`` / ``snapshots.`` / ``sampleData.`` / ``sequenceHint.`` name the widget
uses must exist.
"""

from __future__ import annotations

import ast
import py_compile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO / "LiverMetsModule"
WIDGET_FILE = MODULE_DIR / "LiverMets.py"
UI_FILE = REPO / "Resources" / "UI" / "LiverMets.ui"
ICON_FILE = REPO / "Resources" / "Icons" / "LiverMets.png"
LIB_DIR = MODULE_DIR / "LiverMetsLib"
# Methods LiverMetsLogic inherits from Slicer's ScriptedLoadableModuleLogic in desktop Slicer.
SLICER_BASE_LOGIC_METHODS = {"getParameterNode"}


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def attributeUses(tree: ast.AST, owner: str, attribute: str | None = None) -> set[str]:
    """Names ``x`` in ``owner.x`` (or ``self.<attribute>.x`` when ``attribute`` is given)."""
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        value = node.value
        if attribute is None and isinstance(value, ast.Name) and value.id == owner:
            names.add(node.attr)
        if (
            attribute is not None
            and isinstance(value, ast.Attribute)
            and value.attr == attribute
            and isinstance(value.value, ast.Name)
            and value.value.id == owner
        ):
            names.add(node.attr)
    return names


def classNode(tree: ast.Module, name: str) -> ast.ClassDef:
    matches = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name]
    assert matches, f"class {name} not found"
    return matches[0]


def moduleNames(path: Path) -> set[str]:
    """Top-level functions, classes and assigned names of a module."""
    names = set()
    for node in parse(path).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def uiWidgets() -> dict[str, ET.Element]:
    return {widget.get("name"): widget for widget in ET.parse(UI_FILE).getroot().iter("widget")}


def boundParameters() -> dict[str, str]:
    """Widget name -> its SlicerParameterName."""
    bound = {}
    for name, widget in uiWidgets().items():
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[name] = prop.find("string").text
    return bound


def test_widget_file_byte_compiles(tmp_path):
    py_compile.compile(str(WIDGET_FILE), cfile=str(tmp_path / "LiverMets.pyc"), doraise=True)


def test_module_has_the_four_slicer_classes():
    tree = parse(WIDGET_FILE)
    classes = {
        node.name: [ast.unparse(base) for base in node.bases]
        for node in tree.body
        if isinstance(node, ast.ClassDef)
    }
    assert classes["LiverMets"] == ["ScriptedLoadableModule"]
    assert classes["LiverMetsWidget"] == ["ScriptedLoadableModuleWidget", "VTKObservationMixin"]
    assert classes["LiverMetsTest"] == ["ScriptedLoadableModuleTest"]
    decorators = [ast.unparse(d) for d in classNode(tree, "LiverMetsParameterNode").decorator_list]
    assert decorators == ["parameterNodeWrapper"]
    testMethods = {
        node.name for node in classNode(tree, "LiverMetsTest").body if isinstance(node, ast.FunctionDef)
    }
    assert "runTest" in testMethods
    source = WIDGET_FILE.read_text(encoding="utf-8")
    assert "CHAOS" in source and "doi:10.1016/j.media.2020.101950" in source  # acknowledgement cites the data
    assert "traceback" not in source  # errors go through tryWithErrorDisplay


def test_ui_is_valid_xml_with_unique_names():
    root = ET.parse(UI_FILE).getroot()
    assert root.tag == "ui" and root.find("class").text == "LiverMets"
    names = [widget.get("name") for widget in root.iter("widget")]
    assert len(names) == len(set(names)), "duplicate widget names in the .ui"
    sections = [w.get("name") for w in root.iter("widget") if w.get("class") == "ctkCollapsibleButton"]
    assert sections == [
        "inputCollapsibleButton",
        "detectCollapsibleButton",
        "reviewCollapsibleButton",
        "planCollapsibleButton",
        "reportCollapsibleButton",
    ]  # the workflow, top to bottom
    declared = {custom.find("class").text for custom in root.iter("customwidget")}
    used = {w.get("class") for w in root.iter("widget")}
    assert {c for c in used if c.startswith(("ctk", "qMRML"))} <= declared


def test_every_ui_name_the_widget_uses_exists():
    used = attributeUses(parse(WIDGET_FILE), "self", "ui")
    missing = used - set(uiWidgets())
    assert not missing, f"LiverMets.py uses self.ui.{sorted(missing)} that the .ui does not define"
    assert len(used) > 20


def test_parameter_names_match_the_wrapper():
    wrapper = classNode(parse(WIDGET_FILE), "LiverMetsParameterNode")
    fields = {node.target.id for node in wrapper.body if isinstance(node, ast.AnnAssign)}
    bound = set(boundParameters().values())
    assert bound - fields == set(), f"SlicerParameterName without a parameter: {sorted(bound - fields)}"
    assert fields - bound == set(), f"parameters no widget shows: {sorted(fields - bound)}"


def test_sequence_choices_are_the_canonical_names():
    from livermets.sequences import SEQUENCES

    for name in ("sequence1ComboBox", "sequence2ComboBox"):
        items = [item.find("property/string").text for item in uiWidgets()[name].findall("item")]
        assert items == list(SEQUENCES)


def test_every_logic_method_the_widget_calls_exists():
    tree = parse(WIDGET_FILE)
    called = attributeUses(tree, "self", "logic") | attributeUses(tree, "logic")
    logicClass = classNode(parse(LIB_DIR / "logic.py"), "LiverMetsLogic")
    defined = {node.name for node in logicClass.body if isinstance(node, ast.FunctionDef)}
    missing = called - defined - SLICER_BASE_LOGIC_METHODS
    assert not missing, f"LiverMets.py calls LiverMetsLogic.{sorted(missing)}, which logic.py does not define"
    assert {"acceptLesion", "rejectLesion", "undo", "addLesionFromMarkup", "jumpTarget",
            "detectLesions", "planResection", "writeReport"} <= called


def test_every_lib_function_the_widget_uses_exists():
    tree = parse(WIDGET_FILE)
    for module in ("rendering", "snapshots", "sampleData", "sequenceHint"):
        used = attributeUses(tree, module)
        missing = used - moduleNames(LIB_DIR / f"{module}.py")
        assert not missing, f"LiverMets.py uses {module}.{sorted(missing)}, which does not exist"


def test_resources_are_where_the_widget_looks():
    import SimpleITK as sitk

    # Source tree: LiverMetsModule/../Resources (installed: beside the module, looked at first).
    assert (MODULE_DIR / ".." / "Resources" / "UI" / "LiverMets.ui").resolve() == UI_FILE
    icon = sitk.ReadImage(str(ICON_FILE))
    assert icon.GetSize() == (128, 128) and icon.GetNumberOfComponentsPerPixel() == 4
    pixels = sitk.GetArrayFromImage(icon)
    opaque = pixels[..., 3] > 200
    yellow = opaque & (pixels[..., 0] > 200) & (pixels[..., 1] > 180) & (pixels[..., 2] < 60)
    assert 0.25 < opaque.mean() < 0.75 and yellow.sum() > 200  # a silhouette with a yellow lesion dot
    assert pixels[0, 0, 3] == 0  # transparent corner


def test_sample_data_registration_is_a_no_op_without_slicer():
    from LiverMetsLib import sampleData

    assert sampleData.registerSampleData() is False  # no SampleData module outside desktop Slicer


def test_phantom_case_is_generated_once_into_the_cache(tmp_path):
    import json

    import SimpleITK as sitk
    from LiverMetsLib import sampleData

    paths = sampleData.phantomCaseFiles(tmp_path, seed=3, variant="small", sequences=("hbp",))
    assert set(paths) == {"hbp", "anatomy", "liver", "labels", "lesions", "couinaud", "legend"}
    assert all(path.exists() for path in paths.values())
    legend = json.loads(paths["legend"].read_text(encoding="utf-8"))
    lesions = sitk.GetArrayFromImage(sitk.ReadImage(str(paths["lesions"])))
    assert lesions.max() == len(legend["lesions"]) and lesions.max() >= 1  # truth matches its legend
    stamp = paths["hbp"].stat().st_mtime_ns
    again = sampleData.phantomCaseFiles(tmp_path, seed=3, variant="small", sequences=("hbp",))
    assert again == paths and paths["hbp"].stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == [sampleData.phantomCaseFolderName(3, "small", ("hbp",))]
    with pytest.raises(ValueError, match="unknown phantom sequence"):
        sampleData.phantomCaseFiles(tmp_path, sequences=("pet",))
    assert np.issubdtype(lesions.dtype, np.integer)
