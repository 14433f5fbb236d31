"""Slicer side of surgical planning: lesion measurements in the table, RECIST line markups, the
interactive resection plane, the remnant / resected segments and the margin-coloured liver surface.

Expected values: the core's own functions run on the same arrays (``measure_lesions``, ``make_plan``,
``PlaneResection.resected_region``: the glue must hand them the study unchanged), analytic truth of
the synthetic balls (diameters 2 r, distance between concentric-ish spheres) and the arrays themselves
(Couinaud fractions counted with numpy).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from synthetic import ellipsoid, obliqueGeometry, study


@pytest.fixture(scope="module")
def phantom():
    from livermets.phantom import make_phantom

    return make_phantom(0, variant="small", sequences=["hbp"])


def phantomStudy(logic, phantom):
    anatomy = np.asarray(phantom.anatomy)
    ivc = anatomy == 5
    return logic.populateScene(
        phantom.geometry,
        liver=phantom.liver,
        lesions=phantom.lesions,
        portal=phantom.labels == 3,
        hepatic=(phantom.labels == 4) & ~ivc,
        ivc=ivc,
        couinaud=phantom.couinaud,
    )


def syntheticStudy(logic):
    geometry = obliqueGeometry()
    truth = study(geometry)
    nodes = logic.populateScene(
        geometry,
        liver=truth["liver"],
        lesions=truth["lesions"],
        portal=truth["portal"],
        hepatic=truth["hepatic"],
        ivc=truth["ivc"],
        couinaud=truth["couinaud"],
    )
    return geometry, truth, nodes


def coreMeasurements(truth, geometry):
    from livermets.labels import RESULT_HEPATIC, RESULT_LESION, RESULT_LIVER, RESULT_PORTAL
    from livermets.measure.lesions import measure_lesions

    liver = truth["liver"] | (truth["lesions"] > 0)
    labels = np.where(liver, RESULT_LIVER, 0).astype(np.uint8)
    labels[truth["portal"]] = RESULT_PORTAL
    labels[truth["hepatic"] | truth["ivc"]] = RESULT_HEPATIC
    labels[truth["lesions"] > 0] = RESULT_LESION
    return measure_lesions(
        truth["lesions"], labels, geometry, couinaud=truth["couinaud"], liver=liver, ivc=truth["ivc"]
    )


# --- 1. lesion table -------------------------------------------------------------------------------
def test_lesion_table_has_the_core_measurements(scene, logic):
    geometry, truth, nodes = syntheticStudy(logic)
    table = logic.tableRows(nodes.tableNode)
    expected = coreMeasurements(truth, geometry)
    assert len(table) == len(expected) == 2
    for row, core, radius_mm in zip(table, expected, (6.0, 4.5)):
        mask = truth["lesions"] == core["id"]
        assert float(row["Long axis (mm)"]) == pytest.approx(core["recist_long_mm"], abs=0.01)
        assert float(row["Short axis (mm)"]) == pytest.approx(core["recist_short_mm"], abs=0.01)
        assert float(row["Max 3D diameter (mm)"]) == pytest.approx(core["max_diameter_3d_mm"], abs=0.01)
        # Analytic: a digital ball of radius r spans 2 r within one (largest) voxel.
        assert abs(float(row["Max 3D diameter (mm)"]) - 2 * radius_mm) <= max(geometry.spacing_mm)
        # Couinaud fractions counted straight from the arrays.
        values, counts = np.unique(truth["couinaud"][mask], return_counts=True)
        order = np.argsort(-counts, kind="stable")
        fractions = ", ".join(f"{values[i]}: {100 * counts[i] / counts.sum():.0f} %" for i in order)
        assert row["Couinaud fractions"] == fractions
        for structure in ("portal", "hepatic", "ivc", "capsule"):
            assert float(row[f"Distance to {structure} (mm)"]) == pytest.approx(
                core["nearest"][structure], abs=0.01
            )
        assert row["Vessel contact"] == (", ".join(core["vessel_contact"]) or "none")


def test_only_the_changed_lesion_is_measured_again(scene, logic):
    from LiverMetsLib import lesionTable
    from LiverMetsLib import segmentations as seg

    geometry, truth, nodes = syntheticStudy(logic)
    node = nodes.segmentationNode
    assert lesionTable.measureChangedLesions(node) == []  # all cached after populate
    nk, nj, ni = geometry.shape
    bigger = ellipsoid(geometry, (nk // 2, nj // 2 - 6, ni // 2 - 5), 7.5) & truth["liver"]
    seg.setSegmentMask(node, "lesion_1", bigger)
    assert lesionTable.measureChangedLesions(node) == ["lesion_1"]
    started = time.perf_counter()
    logic.updateTable(node)  # table + RECIST markups, nothing left to measure
    print(f"\nFIGURE table_and_markups_update_cached_s={time.perf_counter() - started:.3f}")
    started = time.perf_counter()
    logic.growLesion(node, "lesion_2", 1.5)  # a whole operation: edit, measure one lesion, table, markups
    print(f"FIGURE grow_lesion_operation_s={time.perf_counter() - started:.3f}")
    edited = dict(truth, lesions=np.where(bigger, 1, np.where(seg.segmentMask(node, "lesion_2"), 2, 0)))
    expected = coreMeasurements(edited, geometry)
    for row, core in zip(logic.tableRows(nodes.tableNode), expected):
        assert float(row["Long axis (mm)"]) == pytest.approx(core["recist_long_mm"], abs=0.01)
        assert float(row["Max 3D diameter (mm)"]) == pytest.approx(core["max_diameter_3d_mm"], abs=0.01)
        assert float(row["Distance to portal (mm)"]) == pytest.approx(core["nearest"]["portal"], abs=0.01)
    assert float(logic.tableRows(nodes.tableNode)[0]["Max 3D diameter (mm)"]) > 2 * 6.0 + 1.0


# --- 2. RECIST markups -----------------------------------------------------------------------------
def recistLengths(node):
    from LiverMetsLib.lesionTable import recistMarkupNodes

    return {key: line.GetLineLengthWorld() for key, line in recistMarkupNodes(node).items()}


def test_recist_markups_follow_the_lesions(scene, logic):
    from LiverMetsLib.lesionTable import recistMarkupNodes

    geometry, truth, nodes = syntheticStudy(logic)
    node = nodes.segmentationNode
    lines = recistMarkupNodes(node)
    assert sorted(lines) == [
        ("lesion_1", "long"),
        ("lesion_1", "short"),
        ("lesion_2", "long"),
        ("lesion_2", "short"),
    ]
    for core in coreMeasurements(truth, geometry):
        long, short = lines[(f"lesion_{core['id']}", "long")], lines[(f"lesion_{core['id']}", "short")]
        assert long.GetName() == f"Lesion {core['id']} RECIST long"
        assert short.GetName() == f"Lesion {core['id']} RECIST short"
        assert long.GetLineLengthWorld() == pytest.approx(core["recist_long_mm"], abs=0.1)
        assert short.GetLineLengthWorld() == pytest.approx(core["recist_short_mm"], abs=0.1)
        start = [0.0] * 3
        long.GetNthControlPointPositionWorld(0, start)
        np.testing.assert_allclose(start, core["recist"]["long"]["start_ras_mm"], atol=0.01)
    before = recistLengths(node)
    logic.growLesion(node, "lesion_1", 2.0)
    after = recistLengths(node)
    assert after[("lesion_1", "long")] > before[("lesion_1", "long")] + 2.0
    assert after[("lesion_2", "long")] == before[("lesion_2", "long")]
    table = {row["Segment ID"]: row for row in logic.tableRows(nodes.tableNode)}
    assert after[("lesion_1", "long")] == pytest.approx(float(table["lesion_1"]["Long axis (mm)"]), abs=0.1)
    logic.rejectLesion(node, "lesion_2")
    assert sorted(recistMarkupNodes(node)) == [("lesion_1", "long"), ("lesion_1", "short")]
    logic.undo()  # the rejection undone: its lines come back
    assert ("lesion_2", "long") in recistMarkupNodes(node)
    logic.deleteLesion(node, "lesion_1")
    assert sorted(recistMarkupNodes(node)) == [("lesion_2", "long"), ("lesion_2", "short")]
    assert scene.GetNodesByClass("vtkMRMLMarkupsLineNode").GetNumberOfItems() == 2  # nothing left behind


def test_merged_lesions_get_one_pair_of_lines(scene, logic):
    from LiverMetsLib.lesionTable import recistMarkupNodes

    _, _, nodes = syntheticStudy(logic)
    kept = logic.mergeLesions(nodes.segmentationNode, "lesion_1", "lesion_2")
    lines = recistMarkupNodes(nodes.segmentationNode)
    assert sorted(lines) == [(kept, "long"), (kept, "short")]
    row = logic.tableRows(nodes.tableNode)[0]
    assert lines[(kept, "long")].GetLineLengthWorld() == pytest.approx(float(row["Long axis (mm)"]), abs=0.1)


# --- 3. and 4. interactive plane, remnant / resected segments ---------------------------------------
def test_plane_numbers_follow_the_markup(scene, logic, phantom):
    from livermets.planning.plan import make_plan
    from livermets.planning.resection import PlaneResection, ResectionModel
    from LiverMetsLib import resectionPlanning
    from LiverMetsLib import segmentations as seg

    nodes = phantomStudy(logic, phantom)
    seen = []
    session = logic.createResectionPlane(nodes.segmentationNode, onUpdate=seen.append)
    assert len(seen) == 1 and session.planeNode.IsA("vtkMRMLMarkupsPlaneNode")
    # Expected: the core on the phantom's own arrays (not on what the glue read back).
    ivc = np.asarray(phantom.anatomy) == 5
    model = ResectionModel(
        phantom.liver, phantom.lesions, phantom.labels, phantom.geometry, couinaud=phantom.couinaud, ivc=ivc
    )
    # Default (Cantlie) plane: through the IVC, normal toward the right liver: about 30-45 % FLR (left liver).
    point, normal = resectionPlanning.planeOfNode(session.planeNode)
    np.testing.assert_allclose(point, phantom.geometry.kji_to_ras(np.argwhere(ivc).mean(axis=0)), atol=1e-6)
    assert normal[0] > 0.7
    assert 25.0 < session.plan["flr_pct"] < 50.0
    timings = []
    for newPoint, newNormal in (
        (point + [10.0, 0.0, 0.0], normal),
        (point, [0.8, 0.0, 0.6]),
        (point + [-20.0, 5.0, 0.0], [1.0, 0.2, 0.0]),
    ):
        session.planeNode.SetOriginWorld([float(v) for v in newPoint])
        session.planeNode.SetNormalWorld([float(v) for v in newNormal])
        timings.append(session.lastUpdateSeconds)
        unit = np.asarray(newNormal) / np.linalg.norm(newNormal)
        expected, resected = make_plan(model, plane=[*newPoint, *unit])
        plan = seen[-1]
        assert plan is session.plan
        for key in ("resected_volume_ml", "remnant_volume_ml", "total_functional_volume_ml", "flr_pct"):
            assert plan[key] == pytest.approx(expected[key], abs=1e-6), key
        assert plan["lesions"] == expected["lesions"]
        assert plan["vessels_cut"] == expected["vessels_cut"]
        # The numbers are in the plan table and on the plane node too.
        rows = {row["Quantity"]: row["Value"] for row in logic.tableRows(session.tableNode)}
        assert float(rows["FLR (%)"]) == pytest.approx(expected["flr_pct"], abs=0.01)
        assert float(rows["Resected volume (ml)"]) == pytest.approx(expected["resected_volume_ml"], abs=0.01)
        # 4. Remnant / resected segments hold exactly the core's regions.
        np.testing.assert_array_equal(seg.segmentMask(session.regionsNode, "resected"), resected)
        np.testing.assert_array_equal(
            seg.segmentMask(session.regionsNode, "remnant"), phantom.liver & ~resected
        )
        np.testing.assert_array_equal(resected, PlaneResection(model).resected_region(newPoint, unit))
    assert len(seen) >= 4
    print(
        f"\nFIGURE plan_update_s max={max(timings):.4f} mean={np.mean(timings):.4f} "
        f"(grid {phantom.geometry.shape}, with table and remnant/resected segments)"
    )
    assert max(timings) <= 0.5
    display = session.regionsNode.GetDisplayNode()
    remnantRgb = session.regionsNode.GetSegmentation().GetSegment("remnant").GetColor()
    resectedRgb = session.regionsNode.GetSegmentation().GetSegment("resected").GetColor()
    assert np.linalg.norm(np.subtract(remnantRgb, resectedRgb)) > 0.3
    assert display.GetSegmentOpacity3D("resected") < display.GetSegmentOpacity3D("remnant")
    # A second session replaces the first: the old plane no longer drives anything and its nodes are gone.
    oldPlane, oldCount = session.planeNode, len(seen)
    logic.createResectionPlane(nodes.segmentationNode)
    oldPlane.SetOriginWorld([0.0, 0.0, 0.0])
    assert len(seen) == oldCount
    assert oldPlane.GetScene() is None and session.regionsNode.GetScene() is None
    assert scene.GetNodesByClass("vtkMRMLMarkupsPlaneNode").GetNumberOfItems() == 1
    assert scene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems() == 2  # study + new regions


def test_plane_lesion_margins_flag_r1(scene, logic):
    geometry, truth, nodes = syntheticStudy(logic)
    session = logic.createResectionPlane(nodes.segmentationNode, showRegions=False)
    assert session.regionsNode is None
    # A plane through lesion 1's centre transects it; 0.5 mm beyond its surface is R1 on the remnant side.
    centre = geometry.kji_to_ras(np.argwhere(truth["lesions"] == 1).mean(axis=0))
    session.planeNode.SetNormalWorld([1.0, 0.0, 0.0])
    session.planeNode.SetOriginWorld([float(v) for v in centre])
    assert session.plan["lesions"][0]["status"] == "transected"
    edgeRas = geometry.kji_to_ras(np.argwhere(truth["lesions"] == 1))[:, 0].max()
    session.planeNode.SetOriginWorld([float(edgeRas) + 1.5, float(centre[1]), float(centre[2])])
    first = session.plan["lesions"][0]
    assert (
        first["status"] == "remnant"
        and first["margin_mm"] < 1.5
        and first["r1"] == (first["margin_mm"] < 1.0)
    )
    assert (
        "L1 remnant" in session.plan["summary"]
        and f"FLR {session.plan['flr_pct']:.1f} %" in session.plan["summary"]
    )


def test_plane_needs_a_liver(scene, logic):
    geometry = obliqueGeometry()
    nodes = logic.populateScene(geometry, liver=np.zeros(geometry.shape, bool), lesions=())
    with pytest.raises(ValueError, match="liver mask is empty"):
        logic.createResectionPlane(nodes.segmentationNode)
    with pytest.raises(ValueError, match="select a LiverMets segmentation"):
        logic.createResectionPlane(None)


# --- 5. margin surface -----------------------------------------------------------------------------
MARGIN_GEOMETRY_SHAPE = (44, 48, 48)


def test_margin_surface_distance_matches_the_analytic_gap(scene, logic):
    from LiverMetsLib import marginSurface
    from vtk.util import numpy_support

    geometry = obliqueGeometry(shape=MARGIN_GEOMETRY_SHAPE)
    centreKji = np.array([22, 24, 24])
    liverRadius, lesionRadius, offsetMm = 17.0, 4.0, 8.0
    lesionKji = centreKji + [0, 0, int(offsetMm / geometry.spacing_mm[2])]  # 8 mm along i (2 mm voxels)
    liver = ellipsoid(geometry, centreKji, liverRadius)
    lesions = ellipsoid(geometry, lesionKji, lesionRadius).astype(np.uint8)
    nodes = logic.populateScene(geometry, liver=liver, lesions=lesions)
    model = logic.showMarginsOnLiver(nodes.segmentationNode)
    distances = numpy_support.vtk_to_numpy(
        model.GetPolyData().GetPointData().GetArray(marginSurface.DISTANCE_ARRAY)
    )
    points = numpy_support.vtk_to_numpy(model.GetPolyData().GetPoints().GetData())
    centreRas, lesionRas = geometry.kji_to_ras(centreKji), geometry.kji_to_ras(lesionKji)
    direction = (lesionRas - centreRas) / np.linalg.norm(lesionRas - centreRas)
    # Analytic: the liver surface point on the ray through the lesion is R - d - r from the lesion.
    analytic = liverRadius - offsetMm - lesionRadius
    nearest = int(np.argmin(np.linalg.norm(points - (centreRas + liverRadius * direction), axis=1)))
    assert abs(distances[nearest] - analytic) <= max(geometry.spacing_mm)
    assert abs(distances.min() - analytic) <= max(geometry.spacing_mm)
    # The far side: R + d - r.
    far = int(np.argmin(np.linalg.norm(points - (centreRas - liverRadius * direction), axis=1)))
    assert abs(distances[far] - (liverRadius + offsetMm - lesionRadius)) <= max(geometry.spacing_mm)
    display = model.GetDisplayNode()
    assert display.GetActiveScalarName() == marginSurface.DISTANCE_ARRAY and display.GetScalarVisibility()
    colours = display.GetColorNode()
    assert colours.GetNumberOfColors() == 3 and tuple(display.GetScalarRange()) == (0.0, 15.0)
    assert colours.GetColorName(0) == "< 5 mm"
    # Again: the same model node is refreshed, not a second one added.
    assert logic.showMarginsOnLiver(nodes.segmentationNode) is model


def test_trilinear_sampling_is_exact_on_a_linear_field():
    from LiverMetsLib.marginSurface import sampleTrilinear

    kk, jj, ii = np.meshgrid(np.arange(4), np.arange(5), np.arange(6), indexing="ij")
    field = 2.0 * kk - 3.0 * jj + 0.5 * ii
    points = np.array([[0.5, 1.25, 4.75], [3.0, 4.0, 5.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(
        sampleTrilinear(field, points), 2 * points[:, 0] - 3 * points[:, 1] + 0.5 * points[:, 2]
    )


def test_margins_need_a_lesion(scene, logic):
    geometry = obliqueGeometry()
    truth = study(geometry)
    nodes = logic.populateScene(geometry, liver=truth["liver"], lesions=())
    with pytest.raises(ValueError, match="no lesions"):
        logic.showMarginsOnLiver(nodes.segmentationNode)


def test_planning_picture_shows_margin_bands(scene, logic, phantom, headlessSlicer, tmp_path):
    """The phantom's margin surface in the 3D view shows all three bands (red, yellow, green pixels)."""
    from LiverMetsLib import rendering, snapshots

    nodes = phantomStudy(logic, phantom)
    rendering.applyStructureDisplay(nodes.segmentationNode)
    rendering.setStructureVisibility(nodes.segmentationNode, "liver", False)
    logic.showMarginsOnLiver(nodes.segmentationNode)
    path = snapshots.snapshot3D(
        nodes.segmentationNode,
        tmp_path / "margins.png",
        sizePixels=(400, 400),
        cameraPreset="posterior",
        applicationLogic=headlessSlicer.applicationLogic,
    )
    pixels = snapshots.readPngPixels(path).astype(int)
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    yellow = (pixels[..., 0] > 150) & (pixels[..., 1] > 130) & (pixels[..., 2] < 80)
    green = (pixels[..., 1] > 100) & (pixels[..., 0] < 80) & (pixels[..., 2] < 100)
    assert red.sum() > 10 and yellow.sum() > 50 and green.sum() > 5000


def test_recist_lines_are_hidden_until_asked_for(scene, logic):
    from LiverMetsLib.lesionTable import recistMarkupNodes

    _, _, nodes = syntheticStudy(logic)
    node = nodes.segmentationNode
    assert not any(line.GetDisplayNode().GetVisibility() for line in recistMarkupNodes(node).values())
    assert logic.showRecistLines(node, True) == 4
    assert all(line.GetDisplayNode().GetVisibility() for line in recistMarkupNodes(node).values())
    assert not any(line.GetDisplayNode().GetVisibility3D() for line in recistMarkupNodes(node).values())
    logic.splitLesion(node, "lesion_1", 2)  # lines made after the choice follow it
    lines = recistMarkupNodes(node)
    assert len(lines) == 2 * len(logic.listLesions(node)) and all(
        l.GetDisplayNode().GetVisibility() for l in lines.values()
    )
    assert logic.showRecistLines(node, False) == len(lines)
    assert not any(line.GetDisplayNode().GetVisibility() for line in recistMarkupNodes(node).values())
