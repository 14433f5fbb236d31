"""Volumes and binary masks between numpy ``[k, j, i]`` arrays and MRML, with exact geometry.

Slicer keeps a volume's placement in its IJKToRAS matrix (RAS mm); ``livermets.geometry.Geometry``
keeps ITK's LPS origin and direction and converts with ``ijk_to_ras()`` / ``from_ijk_to_ras()``,
so oblique grids survive the round trip.  Segment labelmaps are ``vtkOrientedImageData`` whose
image-to-world matrix is the same IJKToRAS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
import vtk
from livermets.geometry import Geometry
from vtk.util import numpy_support


def vtkMatrixFromArray(matrix: np.ndarray) -> vtk.vtkMatrix4x4:
    """A ``vtkMatrix4x4`` holding the 4 x 4 numpy ``matrix``."""
    result = vtk.vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            result.SetElement(row, column, float(matrix[row, column]))
    return result


def arrayFromVtkMatrix(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[matrix.GetElement(row, column) for column in range(4)] for row in range(4)])


def geometryFromVolumeNode(volumeNode) -> Geometry:
    """The grid of a scalar/labelmap volume node (shape ``(k, j, i)``, IJKToRAS), as a Geometry."""
    if volumeNode is None or volumeNode.GetImageData() is None:
        raise ValueError("the volume node has no image data: load or create the volume first")
    if volumeNode.GetParentTransformNode() is not None:
        raise ValueError(f"volume '{volumeNode.GetName()}' is under a transform: harden the transform first")
    ni, nj, nk = volumeNode.GetImageData().GetDimensions()
    ijkToRas = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(ijkToRas)
    return Geometry.from_ijk_to_ras((nk, nj, ni), arrayFromVtkMatrix(ijkToRas))


def addVolumeNode(scene, array: np.ndarray, geometry: Geometry, name: str, *,
                  className: str = "vtkMRMLScalarVolumeNode"):
    """Add a volume node holding a copy of ``array`` (``[k, j, i]``) placed by ``geometry``."""
    array = np.asarray(array)
    if tuple(array.shape) != geometry.shape:
        raise ValueError(f"array shape {array.shape} does not match the geometry {geometry.shape}")
    volumeNode = scene.AddNewNodeByClass(className, name)
    imageData = vtk.vtkImageData()
    imageData.SetDimensions(geometry.shape[2], geometry.shape[1], geometry.shape[0])
    vtkArray = numpy_support.numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True)
    vtkArray.SetName("ImageScalars")
    imageData.GetPointData().SetScalars(vtkArray)
    volumeNode.SetIJKToRASMatrix(vtkMatrixFromArray(geometry.ijk_to_ras()))
    volumeNode.SetAndObserveImageData(imageData)
    volumeNode.CreateDefaultDisplayNodes()
    return volumeNode


def arrayFromVolumeNode(volumeNode) -> np.ndarray:
    """The voxels of ``volumeNode`` as a ``[k, j, i]`` array view (changes need ``Modified()``)."""
    imageData = volumeNode.GetImageData()
    ni, nj, nk = imageData.GetDimensions()
    return numpy_support.vtk_to_numpy(imageData.GetPointData().GetScalars()).reshape(nk, nj, ni)


def maskBoundingBox(mask: np.ndarray) -> Optional[tuple[slice, slice, slice]]:
    """Smallest ``[k, j, i]`` box holding every nonzero voxel, or None when the mask is empty."""
    if not mask.any():
        return None
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        present = np.flatnonzero(mask.any(axis=other))
        box.append(slice(int(present[0]), int(present[-1]) + 1))
    return tuple(box)


def orientedImageFromMask(mask: np.ndarray, geometry: Geometry, *, offsetKji: Optional[Sequence[int]] = None):
    """A ``vtkOrientedImageData`` (uint8 0/1) of ``mask`` on the grid ``geometry``.

    ``mask`` is the full grid, or with ``offsetKji`` a crop whose ``[0, 0, 0]`` voxel is grid index
    ``offsetKji`` (the image extent then covers just the crop, which keeps segment storage and undo
    snapshots small).
    """
    import slicer

    mask = np.asarray(mask)
    offset = [0, 0, 0] if offsetKji is None else [int(o) for o in offsetKji]
    if offsetKji is None and tuple(mask.shape) != geometry.shape:
        raise ValueError(f"mask shape {mask.shape} does not match the geometry {geometry.shape}")
    image = slicer.vtkOrientedImageData()
    image.SetImageToWorldMatrix(vtkMatrixFromArray(geometry.ijk_to_ras()))
    image.SetExtent(offset[2], offset[2] + mask.shape[2] - 1, offset[1], offset[1] + mask.shape[1] - 1,
                    offset[0], offset[0] + mask.shape[0] - 1)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    if mask.size:
        numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = (mask != 0).astype(np.uint8).ravel()
    return image


def referenceImage(geometry: Geometry):
    """An empty-scalar ``vtkOrientedImageData`` describing the full grid of ``geometry``."""
    import slicer

    image = slicer.vtkOrientedImageData()
    image.SetImageToWorldMatrix(vtkMatrixFromArray(geometry.ijk_to_ras()))
    image.SetExtent(0, geometry.shape[2] - 1, 0, geometry.shape[1] - 1, 0, geometry.shape[0] - 1)
    return image


def maskFromOrientedImage(image, geometry: Geometry, *, labelValue: Optional[int] = None) -> np.ndarray:
    """Boolean ``[k, j, i]`` mask on ``geometry`` of the voxels of ``image`` that are nonzero
    (or equal ``labelValue``).  Same-grid images are copied by extent; others are resampled
    (nearest neighbour) with Slicer's ``vtkOrientedImageDataResample``."""
    import slicer

    result = np.zeros(geometry.shape, dtype=bool)
    extent = image.GetExtent()
    if extent[1] < extent[0] or extent[3] < extent[2] or extent[5] < extent[4] or image.GetPointData().GetScalars() is None:
        return result
    imageToWorld = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(imageToWorld)
    if not np.allclose(arrayFromVtkMatrix(imageToWorld), geometry.ijk_to_ras(), atol=1e-6):
        resampled = slicer.vtkOrientedImageData()
        slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
            image, referenceImage(geometry), resampled, False, False)
        image, extent = resampled, resampled.GetExtent()
    size = (extent[5] - extent[4] + 1, extent[3] - extent[2] + 1, extent[1] - extent[0] + 1)
    voxels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(size)
    selected = voxels != 0 if labelValue is None else voxels == labelValue
    # Clip the image extent to the grid (an edited labelmap may reach beyond it).
    lo = [max(0, extent[4]), max(0, extent[2]), max(0, extent[0])]
    hi = [min(geometry.shape[0], extent[5] + 1), min(geometry.shape[1], extent[3] + 1),
          min(geometry.shape[2], extent[1] + 1)]
    if any(h <= l for l, h in zip(lo, hi)):
        return result
    source = tuple(slice(l - e, h - e) for l, h, e in zip(lo, hi, (extent[4], extent[2], extent[0])))
    result[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = selected[source]
    return result
