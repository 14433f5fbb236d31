"""Undo / redo for LiverMets operations: exact snapshots of the study segmentation and lesion table.

Before each operation the logic pushes a snapshot: a deep copy of the node's ``vtkSegmentation``
(every segment's binary labelmap, name, colour, terminology and tags) and of the table's ``vtkTable``.
Undo puts the copies back, so the result is voxel-identical.  Labelmaps are stored cropped to each
segment's extent, which keeps a snapshot small.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Snapshot:
    """The state of one segmentation node (and its lesion table) before an operation."""

    label: str
    segmentationNode: object
    segmentation: object
    tableNode: object
    table: object


def takeSnapshot(label: str, segmentationNode, tableNode=None) -> Snapshot:
    import slicer
    import vtk

    segmentation = slicer.vtkSegmentation()
    segmentation.DeepCopy(segmentationNode.GetSegmentation())
    table = None
    if tableNode is not None:
        table = vtk.vtkTable()
        table.DeepCopy(tableNode.GetTable())
    return Snapshot(label, segmentationNode, segmentation, tableNode, table)


def restoreSnapshot(snapshot: Snapshot) -> None:
    snapshot.segmentationNode.GetSegmentation().DeepCopy(snapshot.segmentation)
    snapshot.segmentationNode.Modified()
    if snapshot.tableNode is not None:
        wasModifying = snapshot.tableNode.StartModify()
        snapshot.tableNode.GetTable().DeepCopy(snapshot.table)
        snapshot.tableNode.EndModify(wasModifying)
        snapshot.tableNode.Modified()


class UndoStack:
    """Bounded undo / redo stacks of :class:`Snapshot` (oldest dropped beyond ``maximumStates``)."""

    def __init__(self, maximumStates: int = 20) -> None:
        if maximumStates < 1:
            raise ValueError("the undo stack needs room for at least one state")
        self.maximumStates = maximumStates
        self._undo: list[Snapshot] = []
        self._redo: list[Snapshot] = []

    def push(self, label: str, segmentationNode, tableNode=None) -> None:
        """Remember the state before an operation called ``label``; clears the redo stack."""
        self._undo.append(takeSnapshot(label, segmentationNode, tableNode))
        del self._undo[:-self.maximumStates]
        self._redo.clear()

    def rollback(self) -> None:
        """Put back the last pushed state and forget it (the operation failed half-way)."""
        if self._undo:
            restoreSnapshot(self._undo.pop())

    def canUndo(self) -> bool:
        return bool(self._undo)

    def canRedo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> str:
        """Restore the state before the last operation; returns its label."""
        if not self._undo:
            raise ValueError("nothing to undo")
        snapshot = self._undo.pop()
        self._redo.append(takeSnapshot(snapshot.label, snapshot.segmentationNode, snapshot.tableNode))
        restoreSnapshot(snapshot)
        return snapshot.label

    def redo(self) -> str:
        """Re-apply the last undone operation; returns its label."""
        if not self._redo:
            raise ValueError("nothing to redo")
        snapshot = self._redo.pop()
        self._undo.append(takeSnapshot(snapshot.label, snapshot.segmentationNode, snapshot.tableNode))
        restoreSnapshot(snapshot)
        return snapshot.label

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
