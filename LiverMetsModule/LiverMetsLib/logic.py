"""``LiverMetsLogic``: the Slicer-side facade of LiverMets (MRML nodes in and out, no Qt).

It takes nodes and plain values, raises ``ValueError`` with a clear message on bad input, reports
progress through a ``(fraction, message)`` callback and makes every editing / review operation
undoable (see ``LiverMetsLib.undo``).  Points are RAS mm, masks ``[k, j, i]`` arrays.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from livermets.geometry import Geometry
from livermets.progress import ProgressCallback, report

from LiverMetsLib import editing, review
from LiverMetsLib import segmentations as seg
from LiverMetsLib.lesionTable import (
    setRecistMarkupsVisible,
    tableRows,
    updateLesionTable,
    updateRecistMarkups,
)
from LiverMetsLib.sequenceHint import SEQUENCE_ATTRIBUTE, rememberSequence
from LiverMetsLib.undo import UndoStack
from LiverMetsLib.volumes import addVolumeNode, arrayFromVolumeNode, geometryFromVolumeNode

try:
    from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic
except ImportError:  # headless slicer-core wheel, or no Slicer at all
    class ScriptedLoadableModuleLogic:
        """The tiny stand-in base used where Slicer's scripted-module classes are absent."""

        def __init__(self, parent=None) -> None:
            self.parent = parent

log = logging.getLogger(__name__)

REFERENCE_TABLE = "LiverMets.lesionTable"
REFERENCE_SOURCE_VOLUME = "LiverMets.sourceVolume"
ATTRIBUTE_WARNINGS = "LiverMets.Warnings"  # JSON list of the detection run's warnings
ATTRIBUTE_ENGINE = "LiverMets.Engine"  # the engine that made the study (builtin, nnunet, ...)


def parseCouinaudSegments(segments) -> list[int]:
    """Sorted unique Couinaud numbers from a sequence or text like ``"5, 6,7 8"``; ValueError otherwise."""
    if isinstance(segments, str):
        segments = segments.replace(",", " ").split()
    try:
        chosen = sorted({int(s) for s in segments or []})
    except (TypeError, ValueError):
        chosen = []
    if not chosen or not set(chosen) <= set(range(1, 9)):
        raise ValueError(f"'{segments}' is not a list of Couinaud segments: give numbers 1 to 8, e.g. 5,6,7,8")
    return chosen


@dataclass(frozen=True)
class StudyNodes:
    """The MRML nodes of one LiverMets study."""

    segmentationNode: object
    tableNode: object
    volumeNode: Optional[object] = None


class LiverMetsLogic(ScriptedLoadableModuleLogic):
    """Put LiverMets results into a scene and review / edit them there."""

    def __init__(self, scene=None, *, terminologiesLogic=None, maximumUndoStates: int = 20) -> None:
        super().__init__()
        if scene is None:
            import slicer

            scene = getattr(slicer, "mrmlScene", None)
        if scene is None:
            raise ValueError("LiverMetsLogic needs an MRML scene")
        self.scene = scene
        self.undoStack = UndoStack(maximumUndoStates)
        self._writing = 0  # > 0 while a LiverMets operation changes voxels (not a user edit)
        # observer tag -> (observed vtkSegmentation, callback): holding the Python wrapper keeps VTK from
        # dropping the observer when the wrapper would otherwise be garbage-collected.
        self._editWatchers: dict = {}
        self._resectionSessions: dict = {}  # segmentation node ID -> PlaneResectionSession
        if terminologiesLogic is not None:
            seg.loadTerminology(terminologiesLogic)

    # --- results into the scene -----------------------------------------------------------------
    def populateScene(self, geometry: Geometry, *, liver: Optional[np.ndarray], lesions=(),
                      portal: Optional[np.ndarray] = None, hepatic: Optional[np.ndarray] = None,
                      ivc: Optional[np.ndarray] = None, couinaud: Optional[np.ndarray] = None,
                      lesionTable: Optional[Sequence[dict]] = None, confidences: Optional[Sequence[float]] = None,
                      image: Optional[np.ndarray] = None, sequence: Optional[str] = None,
                      volumeNode=None, name: str = "LiverMets",
                      progress: Optional[ProgressCallback] = None) -> StudyNodes:
        """One segmentation node (and lesion table) for a study's automatic result.

        ``lesions``: instance labels (0 background, 1..N) or a list of masks, all ``[k, j, i]`` on
        ``geometry``.  ``lesionTable``: optional per-lesion dicts in lesion order, as the core writes
        them; their ``confidence`` (or the detector's ``score``) and ``likely_cyst`` go into the table,
        whose measurements come from ``livermets.measure.lesions.measure_lesions``.  ``image`` adds the source volume, or pass an
        existing ``volumeNode`` (its grid must be ``geometry``'s).
        """
        if not isinstance(geometry, Geometry):
            raise ValueError("populateScene needs a livermets.geometry.Geometry describing the grid")
        started = time.perf_counter()
        report(progress, 0.0, "Creating the LiverMets segmentation")
        if volumeNode is not None and not geometryFromVolumeNode(volumeNode).same_grid(geometry):
            raise ValueError(f"volume '{volumeNode.GetName()}' is not on the result's grid: pass the volume the result was computed on")
        masks = seg.lesionCrops(lesions, geometry.shape)
        if lesionTable is not None and len(lesionTable) != len(masks):
            raise ValueError(f"the lesion table has {len(lesionTable)} rows for {len(masks)} lesions")
        if confidences is None and lesionTable is not None and lesionTable:
            scores = [row.get("confidence", row.get("score")) for row in lesionTable]
            confidences = [float(score) for score in scores] if all(v is not None for v in scores) else None
        likelyCysts = [bool(row.get("likely_cyst")) for row in lesionTable] if lesionTable else None
        for what, mask in (("liver", liver), ("portal vein", portal), ("hepatic veins", hepatic), ("IVC", ivc),
                           ("Couinaud", couinaud), ("image", image)):
            if mask is not None and tuple(np.shape(mask)) != geometry.shape:
                raise ValueError(f"the {what} array has shape {tuple(np.shape(mask))} but the grid is {geometry.shape}")
        created = []
        try:
            nodes = self._addStudyNodes(geometry, created, liver=liver, lesions=masks, portal=portal, hepatic=hepatic,
                                        ivc=ivc, couinaud=couinaud, confidences=confidences, likelyCysts=likelyCysts,
                                        image=image, sequence=sequence, volumeNode=volumeNode, name=name,
                                        progress=progress)
        except Exception:
            for node in reversed(created):  # nothing half-written
                self.scene.RemoveNode(node)
            raise
        report(progress, 1.0, "Done")
        log.info("LiverMets: %d lesions put into the scene in %.2f s", len(masks), time.perf_counter() - started)
        return nodes

    def _addStudyNodes(self, geometry, created, *, liver, lesions, portal, hepatic, ivc, couinaud, confidences,
                       likelyCysts, image, sequence, volumeNode, name, progress) -> StudyNodes:
        if image is not None:
            volumeNode = addVolumeNode(self.scene, image, geometry, f"{name} {sequence or 'image'}")
            created.append(volumeNode)
        segmentationNode = seg.createStudySegmentation(self.scene, geometry, name)
        created.append(segmentationNode)
        report(progress, 0.1, "Adding segments")
        seg.fillStudySegments(segmentationNode, geometry, liver=liver, lesions=lesions, portal=portal,
                              hepatic=hepatic, ivc=ivc, couinaud=couinaud, confidences=confidences,
                              likelyCysts=likelyCysts)
        if volumeNode is not None:
            segmentationNode.SetNodeReferenceID(REFERENCE_SOURCE_VOLUME, volumeNode.GetID())
        if sequence:
            segmentationNode.SetAttribute(SEQUENCE_ATTRIBUTE, sequence)
        report(progress, 0.6, "Measuring lesions")
        tableNode = self.scene.AddNewNodeByClass("vtkMRMLTableNode", f"{name} lesions")
        created.append(tableNode)
        segmentationNode.SetNodeReferenceID(REFERENCE_TABLE, tableNode.GetID())
        updateLesionTable(segmentationNode, tableNode, geometry, couinaudLabels=couinaud)
        updateRecistMarkups(segmentationNode, geometry)
        return StudyNodes(segmentationNode, tableNode, volumeNode)

    def populateFromResult(self, result, *, image: Optional[np.ndarray] = None, sequence: Optional[str] = None,
                           couinaud: Optional[np.ndarray] = None,
                           volumeNode=None, name: str = "LiverMets",
                           progress: Optional[ProgressCallback] = None) -> StudyNodes:
        """:meth:`populateScene` from a ``livermets.segmentation.pipeline.SegmentationResult``.

        Portal vein = result label 3, hepatic veins (with the IVC) = label 4, or a separate ``ivc``
        mask when the result has one.  The detector's scores come from ``result.lesion_table``; the
        lesion table measures every lesion with the core (``measure_lesions``).
        """
        from livermets.labels import RESULT_HEPATIC, RESULT_PORTAL

        labels = np.asarray(result.labels)
        lesions = np.asarray(result.lesions)
        ids = [int(value) for value in np.unique(lesions) if value > 0]
        rowsById = {int(row.get("id", index + 1)): dict(row) for index, row in enumerate(result.lesion_table)}
        return self.populateScene(result.geometry, liver=np.asarray(result.liver) != 0, lesions=lesions,
                                  portal=labels == RESULT_PORTAL, hepatic=labels == RESULT_HEPATIC,
                                  ivc=getattr(result, "ivc", None), couinaud=couinaud,
                                  lesionTable=[rowsById.get(i, {}) for i in ids], image=image, sequence=sequence,
                                  volumeNode=volumeNode, name=name, progress=progress)

    def detectLesions(self, volumeNodes: Sequence, sequences: Optional[Sequence[Optional[str]]] = None, *,
                      segmentVessels: bool = True, name: str = "LiverMets", engine: str = "builtin",
                      progress: Optional[ProgressCallback] = None) -> StudyNodes:
        """Run the core pipeline (``livermets.segmentation.pipeline.segment``) on volume nodes of one
        study and put the result into the scene on the first volume's grid.

        ``sequences``: canonical name per volume (None entries are guessed); ``engine``: the core's
        engine name (:meth:`engineName`), kept in the segmentation's ``LiverMets.Engine``.  Couinaud segments are
        added when the vessels show their landmarks; nearest distances come from
        ``livermets.measure.lesions.measure_lesions``.  ``livermets.progress.Cancelled`` raised by
        ``progress`` stops the run and leaves the scene unchanged.
        """
        from livermets.errors import LiverMetsError
        from livermets.geometry import Volume
        from livermets.measure.couinaud import couinaud_map, landmarks_from_vessels
        from livermets.progress import scaled
        from livermets.segmentation.pipeline import segment

        volumeNodes = [node for node in volumeNodes if node is not None]
        if not volumeNodes:
            raise ValueError("select at least one image volume")
        sequences = list(sequences) if sequences is not None else [None] * len(volumeNodes)
        if len(sequences) != len(volumeNodes):
            raise ValueError(f"{len(sequences)} sequence names given for {len(volumeNodes)} volumes")
        volumes = [Volume(np.array(arrayFromVolumeNode(node)), geometryFromVolumeNode(node)) for node in volumeNodes]
        try:
            result = segment(volumes, [s or None for s in sequences], engine=engine,
                             progress=scaled(progress, 0.0, 0.8))
            couinaud = None
            try:
                landmarks = landmarks_from_vessels(result.labels, result.liver, result.geometry)
                couinaud = couinaud_map(np.asarray(result.liver, dtype=bool), result.geometry, landmarks)
            except LiverMetsError as error:
                result.warnings.append(f"No Couinaud segments: {error}")
        except LiverMetsError as error:
            raise ValueError(str(error)) from error
        if not segmentVessels:
            result.labels = np.where(result.labels >= 3, 1, result.labels).astype(result.labels.dtype)
        nodes = self.populateFromResult(result, couinaud=couinaud,
                                        sequence=result.sequences[0]["sequence"], name=name,
                                        volumeNode=volumeNodes[0], progress=scaled(progress, 0.9, 1.0))
        nodes.segmentationNode.SetAttribute(ATTRIBUTE_WARNINGS, json.dumps(result.warnings))
        nodes.segmentationNode.SetAttribute(ATTRIBUTE_ENGINE, result.engine)
        for node, used in zip(volumeNodes, result.sequences):
            if used.get("source") == "argument":  # a guess is not remembered as a choice
                rememberSequence(node, used["sequence"])
        return nodes

    def planResection(self, segmentationNode, *, couinaudSegments) -> dict:
        """Resect whole Couinaud segments on the current (reviewed) study: the core's plan dict
        (volumes ml, FLR %, lesion margins) plus a one-line ``summary``.  Rejected lesions are ignored.

        ``couinaudSegments``: numbers 1..8, as a sequence or as text such as ``"5,6,7,8"``.
        """
        from livermets.errors import LiverMetsError
        from livermets.planning.plan import make_plan
        from livermets.planning.resection import ResectionModel

        self.checkStudy(segmentationNode)
        chosen = parseCouinaudSegments(couinaudSegments)
        arrays = seg.studyArrays(segmentationNode)
        if arrays["couinaud"] is None:
            raise ValueError("this study has no Couinaud segments: they are needed for a segment resection")
        try:
            model = ResectionModel(arrays["liver"], arrays["lesions"], arrays["labels"], arrays["geometry"],
                                   couinaud=arrays["couinaud"], ivc=arrays["ivc"])
            plan, _resected = make_plan(model, segments=chosen)
        except LiverMetsError as error:
            raise ValueError(str(error)) from error
        plan["summary"] = (f"{plan['name']}: remnant {plan['remnant_volume_ml']:.0f} ml, "
                           f"FLR {plan['flr_pct']:.1f} % of the functional liver")
        return plan

    # --- interactive planning -------------------------------------------------------------------
    def createResectionPlane(self, segmentationNode, *, onUpdate: Optional[Callable[[dict], None]] = None,
                             showRegions: bool = True):
        """A resection plane (markups plane at the Cantlie default) whose plan numbers, "Remnant" /
        "Resected" segments and plan table follow it as it moves; ``onUpdate(plan)`` is called after
        each re-evaluation.  Replaces the study's previous session (its plane, plan table and
        remnant / resected segmentation leave the scene).  Returns the
        ``resectionPlanning.PlaneResectionSession`` (``.planeNode``, ``.plan``, ``.tableNode``)."""
        from livermets.errors import LiverMetsError

        from LiverMetsLib.resectionPlanning import PlaneResectionSession

        self.checkStudy(segmentationNode)
        sessions = self._resectionSessions
        previous = sessions.pop(segmentationNode.GetID(), None)
        if previous is not None:
            previous.close(removeNodes=True)
        try:
            session = PlaneResectionSession(segmentationNode, onUpdate=onUpdate, showRegions=showRegions)
        except LiverMetsError as error:
            raise ValueError(str(error)) from error
        sessions[segmentationNode.GetID()] = session
        return session

    def showMarginsOnLiver(self, segmentationNode):
        """Model of the liver surface coloured by the distance (mm) to the nearest lesion
        (red < 5, yellow 5-10, green >= 10 mm; see ``marginSurface``); returns the model node."""
        from LiverMetsLib.marginSurface import createMarginSurface

        self.checkStudy(segmentationNode)
        return createMarginSurface(segmentationNode)

    def updateRecistMarkups(self, segmentationNode) -> dict:
        """Bring the RECIST line markups in line with the lesions (see ``lesionTable.updateRecistMarkups``)."""
        self.checkStudy(segmentationNode)
        return updateRecistMarkups(segmentationNode)

    def showRecistLines(self, segmentationNode, visible: bool = True) -> int:
        """Show / hide the RECIST long and short axis lines in the slice views; returns how many lines."""
        self.checkStudy(segmentationNode)
        updateRecistMarkups(segmentationNode)
        return setRecistMarkupsVisible(segmentationNode, visible)

    def exportResultFolder(self, segmentationNode, folder: str) -> Path:
        """Write the reviewed study as a core result folder (the files of ``livermets segment``).

        ``liver.nii.gz``, ``labels.nii.gz``, ``lesions.nii.gz`` (rejected lesions left out),
        ``lesions.json``, plus ``ivc.nii.gz`` / ``couinaud.nii.gz`` when the study has them and the
        source image as ``image.nii.gz``: the core's ``measure``, ``plan`` and ``report`` read it.
        """
        from livermets.geometry import Volume
        from livermets.imageio import write_image, write_label
        from livermets.segmentation.pipeline import SegmentationResult, write_result

        self.checkStudy(segmentationNode)
        arrays = seg.studyArrays(segmentationNode)
        geometry = arrays["geometry"]
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        sequence = segmentationNode.GetAttribute(SEQUENCE_ATTRIBUTE) or "unknown"
        entries = {entry.number: entry for entry in review.listLesions(segmentationNode, includeRejected=False)}
        table = [{"id": number, "volume_ml": round(entry.volume_ml, 3),
                  "longest_axial_diameter_mm": round(entry.longAxis_mm, 1), "score": entry.confidence,
                  "status": entry.status, "user_edited": entry.userEdited,
                  **({} if entry.likelyCyst is None else {"likely_cyst": entry.likelyCyst})}
                 for number, entry in sorted(entries.items())]
        sequences = [{"sequence": sequence, "source": "Slicer scene"}]
        volumeNode = self.sourceVolumeNode(segmentationNode)
        if volumeNode is not None:
            write_image(Volume(np.array(arrayFromVolumeNode(volumeNode)), geometryFromVolumeNode(volumeNode)),
                        out / "image.nii.gz")
            sequences[0]["file"] = "image.nii.gz"
        result = SegmentationResult(geometry, arrays["liver"].astype(np.uint8), arrays["labels"], arrays["lesions"],
                                    table, sequences, alignment=[], timings_s={}, engine="reviewed in 3D Slicer")
        write_result(result, out)
        for name, array in (("ivc.nii.gz", arrays["ivc"]), ("couinaud.nii.gz", arrays["couinaud"])):
            if array is not None:
                write_label(array, geometry, out / name)
            elif (out / name).exists():
                (out / name).unlink()  # a file from an earlier export would no longer describe this study
        return out

    def writeReport(self, segmentationNode, outputFolder: str, *, pdf: bool = False,
                    progress: Optional[ProgressCallback] = None) -> str:
        """Measure the reviewed study and write its report (HTML, optional PDF) into ``outputFolder``.

        Returns the path of ``report.html``. The result files it is computed from stay beside it.
        """
        from livermets.errors import LiverMetsError
        from livermets.measure.result_dir import measure_result_dir
        from livermets.progress import scaled
        from livermets.report.build import build_report

        folder = self.exportResultFolder(segmentationNode, outputFolder)
        try:
            measure_result_dir(folder, progress=scaled(progress, 0.0, 0.4))
            files = build_report(folder, folder / "report", pdf=pdf, progress=scaled(progress, 0.4, 1.0))
        except LiverMetsError as error:
            raise ValueError(str(error)) from error
        return str(files.html)

    # --- nodes of a study -----------------------------------------------------------------------
    @staticmethod
    def checkStudy(segmentationNode) -> None:
        if segmentationNode is None or not segmentationNode.IsA("vtkMRMLSegmentationNode"):
            raise ValueError("select a LiverMets segmentation first")
        seg.segmentationGeometry(segmentationNode)

    @staticmethod
    def engineName(modelFolder) -> str:
        """The core engine the module runs: ``builtin``, or ``nnunet:FOLDER`` when a trained
        nnU-Net model folder is chosen (``modelFolder``: a path, empty or None for none)."""
        folder = str(modelFolder or "").strip()
        return "builtin" if folder in ("", ".") else f"nnunet:{folder}"

    @staticmethod
    def missingPackage(engine: str) -> str:
        """The pip package ``engine`` needs that Slicer's Python lacks ("" if none): the module
        offers to install it."""
        from livermets.errors import LiverMetsError
        from livermets.segmentation.engines import missing_package

        try:
            return missing_package(engine)
        except LiverMetsError as error:
            raise ValueError(str(error)) from error

    @staticmethod
    def studyWarnings(segmentationNode) -> list[str]:
        """The warnings of the detection run that made this study (a guessed contrast, veins not
        found, a liver cut by the field of view...); empty if none or not a detected study."""
        text = segmentationNode.GetAttribute(ATTRIBUTE_WARNINGS) if segmentationNode is not None else None
        if not text:
            return []
        try:
            return list(json.loads(text))
        except ValueError:  # scenes saved before the warnings were stored as JSON
            return [text]

    @staticmethod
    def lesionTableNode(segmentationNode):
        return segmentationNode.GetNodeReference(REFERENCE_TABLE)

    @staticmethod
    def sourceVolumeNode(segmentationNode):
        return segmentationNode.GetNodeReference(REFERENCE_SOURCE_VOLUME)

    def updateTable(self, segmentationNode) -> None:
        tableNode = self.lesionTableNode(segmentationNode)
        if tableNode is None:
            tableNode = self.scene.AddNewNodeByClass("vtkMRMLTableNode", f"{segmentationNode.GetName()} lesions")
            segmentationNode.SetNodeReferenceID(REFERENCE_TABLE, tableNode.GetID())
        updateLesionTable(segmentationNode, tableNode)
        updateRecistMarkups(segmentationNode)

    @contextlib.contextmanager
    def _operation(self, label: str, segmentationNode):
        """Snapshot for undo, run, refresh the table; on failure put everything back."""
        self.checkStudy(segmentationNode)
        self.undoStack.push(label, segmentationNode, self.lesionTableNode(segmentationNode))
        started = time.perf_counter()
        self._writing += 1
        try:
            yield
        except Exception:
            self.undoStack.rollback()
            raise
        finally:
            self._writing -= 1
        self.updateTable(segmentationNode)
        log.debug("LiverMets: %s took %.3f s", label, time.perf_counter() - started)

    # --- review ---------------------------------------------------------------------------------
    def listLesions(self, segmentationNode, *, includeRejected: bool = True) -> list:
        self.checkStudy(segmentationNode)
        return review.listLesions(segmentationNode, includeRejected=includeRejected)

    def jumpTarget(self, segmentationNode, segmentId: str) -> review.JumpTarget:
        self.checkStudy(segmentationNode)
        return review.jumpTarget(segmentationNode, segmentId)

    @staticmethod
    def applyJump(target: review.JumpTarget, sliceNodes) -> None:
        review.applyJumpToSliceNodes(target, sliceNodes)

    def setLesionStatus(self, segmentationNode, segmentId: str, status: str) -> None:
        """``status``: "accepted", "rejected" (hidden, restorable), "uncertain" or "candidate" (restore)."""
        with self._operation(f"Mark {status}", segmentationNode):
            review.setStatus(segmentationNode, segmentId, status)

    def acceptLesion(self, segmentationNode, segmentId: str) -> None:
        self.setLesionStatus(segmentationNode, segmentId, review.STATUS_ACCEPTED)

    def rejectLesion(self, segmentationNode, segmentId: str) -> None:
        self.setLesionStatus(segmentationNode, segmentId, review.STATUS_REJECTED)

    def markLesionUncertain(self, segmentationNode, segmentId: str) -> None:
        self.setLesionStatus(segmentationNode, segmentId, review.STATUS_UNCERTAIN)

    def restoreLesion(self, segmentationNode, segmentId: str) -> None:
        self.setLesionStatus(segmentationNode, segmentId, review.STATUS_CANDIDATE)

    def mergeLesions(self, segmentationNode, keepId: str, otherId: str) -> str:
        with self._operation("Merge lesions", segmentationNode):
            return review.mergeLesions(segmentationNode, keepId, otherId)

    def splitLesion(self, segmentationNode, segmentId: str, count: int = 2) -> list[str]:
        with self._operation("Split lesion", segmentationNode):
            return review.splitLesion(segmentationNode, segmentId, count)

    def deleteLesion(self, segmentationNode, segmentId: str) -> None:
        with self._operation("Delete lesion", segmentationNode):
            review.deleteLesion(segmentationNode, segmentId)

    # --- editing --------------------------------------------------------------------------------
    def _sequenceOf(self, segmentationNode, sequence: Optional[str]) -> str:
        sequence = sequence or segmentationNode.GetAttribute(SEQUENCE_ATTRIBUTE)
        if not sequence:
            raise ValueError("say which sequence the volume is (e.g. 'hbp', 't2'): the study does not record it")
        return sequence

    def _volumeOf(self, segmentationNode, volumeNode):
        volumeNode = volumeNode or self.sourceVolumeNode(segmentationNode)
        if volumeNode is None:
            raise ValueError("select the image volume to segment the clicked lesion on")
        return volumeNode

    def addLesionFromPoint(self, segmentationNode, pointRas: Sequence[float], *, volumeNode=None,
                           sequence: Optional[str] = None, includeRas=(), excludeRas=(),
                           maxRadius_mm: float = editing.DEFAULT_MAX_RADIUS_MM) -> str:
        """Click to add: segment the lesion under ``pointRas`` (RAS mm) and add "Lesion n"."""
        with self._operation("Add lesion", segmentationNode):
            return editing.addLesionFromPoint(
                segmentationNode, self._volumeOf(segmentationNode, volumeNode), pointRas,
                sequence=self._sequenceOf(segmentationNode, sequence), includeRas=includeRas,
                excludeRas=excludeRas, maxRadius_mm=maxRadius_mm)

    def addLesionFromMarkup(self, segmentationNode, markupsNode, pointIndex: int = -1, **options) -> str:
        """Click to add from a markups control point (default: the last one placed)."""
        count = markupsNode.GetNumberOfControlPoints() if markupsNode is not None else 0
        if count == 0:
            raise ValueError("place a point on the lesion first")
        index = pointIndex % count
        pointRas = [0.0, 0.0, 0.0]
        markupsNode.GetNthControlPointPositionWorld(index, pointRas)
        return self.addLesionFromPoint(segmentationNode, pointRas, **options)

    def refineLesion(self, segmentationNode, segmentId: str, *, includeRas=(), excludeRas=(), volumeNode=None) -> str:
        """Add include / exclude points (RAS mm) to a clicked lesion and segment it again."""
        with self._operation("Refine lesion", segmentationNode):
            return editing.refineLesion(segmentationNode, segmentId, self._volumeOf(segmentationNode, volumeNode),
                                        includeRas=includeRas, excludeRas=excludeRas)

    def growLesion(self, segmentationNode, segmentId: str, margin_mm: float) -> str:
        """Grow (> 0) or shrink (< 0) a segment by ``margin_mm`` millimetres."""
        with self._operation("Grow lesion" if margin_mm > 0 else "Shrink lesion", segmentationNode):
            return editing.growLesion(segmentationNode, segmentId, margin_mm)

    def watchSegmentEdits(self, segmentationNode, onEdited: Optional[Callable[[str], None]] = None) -> int:
        """Follow voxel edits made outside LiverMets (Segment Editor): each edited segment is tagged
        as a user edit, the lesion table is refreshed and ``onEdited(segmentId)`` is called.
        Returns the observer tag for :meth:`stopWatchingSegmentEdits`."""
        import slicer
        import vtk

        self.checkStudy(segmentationNode)
        segmentation = segmentationNode.GetSegmentation()

        @vtk.calldata_type(vtk.VTK_STRING)
        def onVoxelsModified(caller, event, segmentId) -> None:
            if self._writing or segmentation.GetSegment(segmentId) is None:
                return
            segmentation.GetSegment(segmentId).SetTag(seg.TAG_USER_EDITED, "1")
            self.updateTable(segmentationNode)
            if onEdited is not None:
                onEdited(segmentId)

        observerTag = segmentation.AddObserver(slicer.vtkSegmentation.SourceRepresentationModified, onVoxelsModified)
        self._editWatchers[observerTag] = (segmentation, onVoxelsModified)
        return observerTag

    def stopWatchingSegmentEdits(self, segmentationNode, observerTag: int) -> None:
        segmentation, _callback = self._editWatchers.pop(observerTag, (segmentationNode.GetSegmentation(), None))
        segmentation.RemoveObserver(observerTag)

    def editedSegmentIds(self, segmentationNode) -> list[str]:
        self.checkStudy(segmentationNode)
        return editing.editedSegmentIds(segmentationNode)

    def rerunAutomatic(self, segmentationNode, *, liver, lesions=(), portal=None, hepatic=None, ivc=None,
                       couinaud=None, confidences=None, overwrite: bool = False) -> editing.RerunResult:
        """Bring a new automatic result in, keeping user edits unless ``overwrite`` (see editing.rerunAutomatic)."""
        with self._operation("Re-run segmentation", segmentationNode):
            return editing.rerunAutomatic(segmentationNode, liver=liver, lesions=lesions, portal=portal,
                                          hepatic=hepatic, ivc=ivc, couinaud=couinaud, confidences=confidences,
                                          overwrite=overwrite)

    # --- undo -----------------------------------------------------------------------------------
    def canUndo(self) -> bool:
        return self.undoStack.canUndo()

    def canRedo(self) -> bool:
        return self.undoStack.canRedo()

    def undo(self) -> str:
        """Undo the last LiverMets operation; returns its name."""
        label = self.undoStack.undo()
        self._refreshRecistMarkups()
        return label

    def redo(self) -> str:
        label = self.undoStack.redo()
        self._refreshRecistMarkups()
        return label

    def _refreshRecistMarkups(self) -> None:
        """RECIST lines of every study in the scene (after undo / redo restored voxels)."""
        nodes = self.scene.GetNodesByClass("vtkMRMLSegmentationNode")
        for index in range(nodes.GetNumberOfItems()):
            node = nodes.GetItemAsObject(index)
            if node.GetAttribute(seg.ATTRIBUTE_GEOMETRY) and self.lesionTableNode(node) is not None:
                updateRecistMarkups(node)

    # --- tables and files -----------------------------------------------------------------------
    @staticmethod
    def tableRows(tableNode) -> list[dict]:
        return tableRows(tableNode)

    def writeSceneBundle(self, path: str) -> None:
        """Save the scene as a Medical Reality Bundle (.mrb), written to a temporary name first."""
        if not str(path).lower().endswith(".mrb"):
            raise ValueError(f"'{path}' does not end in .mrb: a scene bundle needs the .mrb extension")
        temporary = f"{path}.partial.mrb"
        if not self.scene.WriteToMRB(temporary):
            if os.path.exists(temporary):
                os.remove(temporary)
            raise RuntimeError(f"Slicer could not write the scene to {path}")
        os.replace(temporary, path)
