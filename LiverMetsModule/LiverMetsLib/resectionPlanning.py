"""Interactive plane resection in the scene: a markups plane whose numbers follow it.

:class:`PlaneResectionSession` builds the core's ``ResectionModel`` / ``PlaneResection`` once from the
reviewed study (rejected lesions left out), creates (or adopts) a ``vtkMRMLMarkupsPlaneNode`` and, on
every ``PointModifiedEvent`` of the plane (dragging its origin or turning its normal), re-evaluates the
plan: resected / remnant functional volume (ml), FLR (%), lesion margins (mm) and R1 flags.  The numbers
go into a ``vtkMRMLTableNode`` ("Quantity", "Value"), into the plane node's ``ATTRIBUTE_PLAN`` (the plan
as JSON) and to an optional callback (for the widget's label).  The "Remnant" and "Resected" liver parts
are shown as two segments of a separate segmentation node on the study grid.

The resected side is the side the plane's normal points to (as in ``livermets.planning``).  Points and
normals are RAS mm.  Default plane: :func:`defaultCantliePlane`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Optional

import numpy as np
from livermets.planning.flr import flr_summary
from livermets.planning.resection import PlaneResection, ResectionModel

from LiverMetsLib import segmentations as seg
from LiverMetsLib.lesionTable import ATTRIBUTE_SEGMENTATION

ATTRIBUTE_PLAN = "LiverMets.Plan"
ATTRIBUTE_ROLE_PLANE = "resectionPlane"
ROLE_REGIONS = "resectionRegions"
REMNANT_RGB = (0.35, 0.75, 0.35)  # green: the liver that stays
RESECTED_RGB = (0.75, 0.35, 0.35)  # grey-red, see-through: the liver that goes
RESECTED_OPACITY_3D = 0.35
REMNANT_OPACITY_3D = 0.8
RIGHT_SEGMENTS = (5, 6, 7, 8)
LEFT_SEGMENTS = (2, 3, 4)


def defaultCantliePlane(arrays: dict) -> tuple[np.ndarray, np.ndarray]:
    """A teaching default for the plane: ``(point_ras_mm, unit normal_ras)``.

    Cantlie's line (the plane of the middle hepatic vein) separates the right liver (segments 5-8)
    from the left (2-4) and passes through the IVC.  With a Couinaud map the normal is the direction
    from the centroid of segments 2-4 to that of 5-8 (so the right liver is the resected side, a right
    hepatectomy); without one it is the patient's right (+R).  The point is the IVC centroid when the
    study has an IVC, else halfway between the two lobe centroids, else the liver centroid.
    ``arrays`` is :func:`LiverMetsLib.segmentations.studyArrays` output.
    """
    geometry, liver, couinaud = arrays["geometry"], arrays["liver"], arrays["couinaud"]
    normal = np.array([1.0, 0.0, 0.0])
    point = geometry.kji_to_ras(np.argwhere(liver).mean(axis=0))
    if couinaud is not None:
        right, left = np.isin(couinaud, RIGHT_SEGMENTS) & liver, np.isin(couinaud, LEFT_SEGMENTS) & liver
        if right.any() and left.any():
            rightRas = geometry.kji_to_ras(np.argwhere(right).mean(axis=0))
            leftRas = geometry.kji_to_ras(np.argwhere(left).mean(axis=0))
            if np.linalg.norm(rightRas - leftRas) > 0:
                normal = (rightRas - leftRas) / np.linalg.norm(rightRas - leftRas)
                point = 0.5 * (rightRas + leftRas)
    ivc = arrays.get("ivc")
    if ivc is not None and ivc.any():
        point = geometry.kji_to_ras(np.argwhere(ivc).mean(axis=0))
    return np.asarray(point, dtype=float), np.asarray(normal, dtype=float)


def planeOfNode(planeNode) -> tuple[np.ndarray, np.ndarray]:
    """``(origin, unit normal)`` of a markups plane node, world RAS mm."""
    origin, normal = [0.0] * 3, [0.0] * 3
    planeNode.GetOriginWorld(origin)
    planeNode.GetNormalWorld(normal)
    return np.array(origin), np.array(normal) / np.linalg.norm(normal)


def planSummaryText(plan: dict) -> str:
    """One line for the widget: volumes, FLR and the margins (R1 flagged)."""
    margins = []
    for lesion in plan["lesions"]:
        margin = (
            "transected"
            if lesion["status"] == "transected"
            else (f"{lesion['margin_mm']:.1f} mm" if lesion["margin_mm"] is not None else "n/a")
        )
        margins.append(f"L{lesion['id']} {lesion['status']} {margin}{' R1' if lesion['r1'] else ''}")
    return (
        f"Resected {plan['resected_volume_ml']:.0f} ml, remnant {plan['remnant_volume_ml']:.0f} ml, "
        f"FLR {plan['flr_pct']:.1f} %" + (f"; {'; '.join(margins)}" if margins else "")
    )


def planRows(plan: dict) -> list[tuple[str, str]]:
    """The plan as ``(quantity, value)`` rows for the plan table."""
    rows = [
        ("Resected volume (ml)", f"{plan['resected_volume_ml']:.2f}"),
        ("Remnant volume (ml)", f"{plan['remnant_volume_ml']:.2f}"),
        ("Total functional volume (ml)", f"{plan['total_functional_volume_ml']:.2f}"),
        ("FLR (%)", f"{plan['flr_pct']:.2f}"),
    ]
    for lesion in plan["lesions"]:
        margin = "nan" if lesion["margin_mm"] is None else f"{lesion['margin_mm']:.2f}"
        rows.append((f"Lesion {lesion['id']} margin (mm)", margin))
        rows.append((f"Lesion {lesion['id']} side", lesion["status"] + (" (R1)" if lesion["r1"] else "")))
    for site in plan["vessels_cut"]:
        rows.append((f"Cut {site['vessel']} vessel (mm)", f"{site['diameter_mm']:.1f}"))
    return rows


class PlaneResectionSession:
    """A plane resection following a markups plane node.

    Parameters
    ----------
    segmentationNode : vtkMRMLSegmentationNode
        A LiverMets study (liver, lesions, vessels, optional Couinaud segments).
    planeNode : vtkMRMLMarkupsPlaneNode, optional
        Adopted as is; default: a new "Resection plane" at :func:`defaultCantliePlane`.
    onUpdate : callable(plan dict), optional
        Called after every re-evaluation (the widget updates its label).
    showRegions : bool
        Keep the "Remnant" / "Resected" segments (segmentation "<study> resection") up to date.
    """

    def __init__(
        self,
        segmentationNode,
        planeNode=None,
        *,
        onUpdate: Optional[Callable[[dict], None]] = None,
        showRegions: bool = True,
    ) -> None:
        import slicer

        self.segmentationNode = segmentationNode
        self.scene = segmentationNode.GetScene()
        arrays = seg.studyArrays(segmentationNode)
        self.geometry = arrays["geometry"]
        self.model = ResectionModel(
            arrays["liver"],
            arrays["lesions"],
            arrays["labels"],
            self.geometry,
            couinaud=arrays["couinaud"],
            ivc=arrays["ivc"],
        )
        self.planner = PlaneResection(self.model)
        self._liverKji = np.argwhere(arrays["liver"])
        self._liverRas = self.geometry.kji_to_ras(self._liverKji)
        self.liver = arrays["liver"]
        self.onUpdate = onUpdate
        self.plan: dict = {}
        self.lastUpdateSeconds = 0.0
        self.regionsNode = self._createRegionsNode() if showRegions else None
        self.tableNode = self.scene.AddNewNodeByClass(
            "vtkMRMLTableNode", f"{segmentationNode.GetName()} plan"
        )
        for name in ("Quantity", "Value"):
            column = self.tableNode.AddColumn()
            column.SetName(name)
        if planeNode is None:
            planeNode = self._createPlaneNode(*defaultCantliePlane(arrays))
        self.planeNode = planeNode
        self._observerTag = planeNode.AddObserver(
            slicer.vtkMRMLMarkupsNode.PointModifiedEvent, self._onPlaneModified
        )
        self.update()
        if self.regionsNode is not None:
            self.regionsNode.CreateClosedSurfaceRepresentation()  # kept up to date by Slicer from now on

    # --- nodes ----------------------------------------------------------------------------------
    def _createPlaneNode(self, pointRas: np.ndarray, normalRas: np.ndarray):
        planeNode = self.scene.AddNewNodeByClass("vtkMRMLMarkupsPlaneNode", "Resection plane")
        planeNode.SetAttribute(seg.ATTRIBUTE_ROLE, ATTRIBUTE_ROLE_PLANE)
        planeNode.SetAttribute(ATTRIBUTE_SEGMENTATION, self.segmentationNode.GetID())
        extentRas = np.ptp(self._liverRas, axis=0) if len(self._liverRas) else np.ones(3)
        planeNode.SetSizeMode(planeNode.SizeModeAbsolute)
        planeNode.SetSizeWorld(*(2 * [1.2 * float(np.linalg.norm(extentRas))]))
        planeNode.SetOriginWorld([float(v) for v in pointRas])
        planeNode.SetNormalWorld([float(v) for v in normalRas])
        planeNode.CreateDefaultDisplayNodes()
        planeNode.GetDisplayNode().SetOpacity(0.3)
        return planeNode

    def _createRegionsNode(self):
        import slicer

        node = seg.createStudySegmentation(
            self.scene, self.geometry, f"{self.segmentationNode.GetName()} resection"
        )
        node.SetAttribute(seg.ATTRIBUTE_ROLE, ROLE_REGIONS)  # not a study: no lesions, no table
        segmentation = node.GetSegmentation()
        for segmentId, name, rgb in (
            ("remnant", "Remnant", REMNANT_RGB),
            ("resected", "Resected", RESECTED_RGB),
        ):
            segmentation.AddEmptySegment(segmentId, name, list(rgb))
        display = node.GetDisplayNode()
        display.SetSegmentOpacity3D("remnant", REMNANT_OPACITY_3D)
        display.SetSegmentOpacity3D("resected", RESECTED_OPACITY_3D)
        display.SetPreferredDisplayRepresentationName3D(
            slicer.vtkSegmentationConverter.GetSegmentationClosedSurfaceRepresentationName()
        )
        return node

    # --- evaluation -----------------------------------------------------------------------------
    def _onPlaneModified(self, caller, event) -> None:
        self.update()

    def resectedMask(self, pointRas, normalRas) -> np.ndarray:
        """Liver voxels (``[k, j, i]``, study grid) strictly on the normal's side of the plane, from
        liver voxel coordinates computed once (same rule as ``PlaneResection.resected_region``)."""
        normal = np.asarray(normalRas, dtype=float)
        normal = normal / np.linalg.norm(normal)
        beyond = (self._liverRas @ normal - float(np.asarray(pointRas, dtype=float) @ normal)) > 0
        mask = np.zeros(self.geometry.shape, dtype=bool)
        mask[tuple(self._liverKji[beyond].T)] = True
        return mask

    def update(self) -> dict:
        """Re-evaluate the plan for the plane's current origin and normal; returns the plan dict
        (the core's ``PlaneResection.update`` keys plus ``flr_summary``, a one-line ``summary`` and
        ``seconds``)."""
        started = time.perf_counter()
        pointRas, normalRas = planeOfNode(self.planeNode)
        plan = self.planner.update(pointRas, normalRas)
        plan.update(flr_summary(plan["remnant_volume_ml"], plan["total_functional_volume_ml"]))
        plan["kind"], plan["name"] = "plane", "plane resection"
        plan["summary"] = planSummaryText(plan)
        self._writeTable(plan)
        if self.regionsNode is not None:
            resected = self.resectedMask(pointRas, normalRas)
            seg.setSegmentMask(self.regionsNode, "resected", resected, self.geometry)
            seg.setSegmentMask(self.regionsNode, "remnant", self.liver & ~resected, self.geometry)
        self.lastUpdateSeconds = time.perf_counter() - started
        plan["seconds"] = round(self.lastUpdateSeconds, 4)
        self.planeNode.SetAttribute(ATTRIBUTE_PLAN, json.dumps(plan))
        self.plan = plan
        if self.onUpdate is not None:
            self.onUpdate(plan)
        return plan

    def _writeTable(self, plan: dict) -> None:
        rows = planRows(plan)
        wasModifying = self.tableNode.StartModify()
        table = self.tableNode.GetTable()
        table.SetNumberOfRows(0)
        for quantity, value in rows:
            index = self.tableNode.AddEmptyRow()
            self.tableNode.SetCellText(index, 0, quantity)
            self.tableNode.SetCellText(index, 1, value)
        self.tableNode.EndModify(wasModifying)

    def close(self, *, removeNodes: bool = False) -> None:
        """Stop following the plane; with ``removeNodes`` also take the plane, the plan table and the
        remnant / resected segmentation out of the scene."""
        if self._observerTag is not None:
            self.planeNode.RemoveObserver(self._observerTag)
            self._observerTag = None
        if removeNodes:
            for node in (self.planeNode, self.tableNode, self.regionsNode):
                if node is not None and node.GetScene() is not None:
                    self.scene.RemoveNode(node)
