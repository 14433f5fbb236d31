"""Surface models of liver, vessels and lesions, and their STL / OBJ export (for 3D printing and viewers).

Surfaces are extracted from binary masks with flying edges (Schroeder et al., "Flying edges: a
high-performance scalable isosurface algorithm", IEEE LDAV 2015) at the 0.5 level, mapped from
voxel indices to patient millimetres with the grid's full index-to-world matrix (oblique grids
included), then smoothed with a windowed-sinc filter (Taubin et al., "Optimal surface smoothing as
filter design", ECCV 1996), which barely shrinks the volume. Masks are padded by one voxel, so every
surface is closed. Coordinates are RAS (Slicer) or LPS (DICOM / ITK) millimetres, as chosen.

VTK is imported inside the functions so ``import livermets.models`` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from livermets import __version__
from livermets.errors import InputError, LiverMetsError
from livermets.geometry import Geometry, Volume
from livermets.labels import RESULT_HEPATIC, RESULT_PORTAL, STRUCTURES
from livermets.progress import ProgressCallback, report
from livermets.files import write_atomically

FRAMES = ("RAS", "LPS")
FORMATS = ("stl", "obj")


@dataclass
class StructureMask:
    """One structure to model: a file-safe ``key``, a display ``name``, RGB 0-255 and a [k, j, i] mask."""

    key: str
    name: str
    color_rgb: tuple[int, int, int]
    mask: np.ndarray


def read_label_volume(path: Path) -> Volume:
    """Read a label map (NIfTI / NRRD) as an integer :class:`Volume`; clear error when missing."""
    import SimpleITK as sitk

    if not Path(path).is_file():
        raise InputError(f"{path} is missing; run 'livermets segment' to make a complete result folder")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise InputError(f"cannot read {path}: {error}") from error
    volume = Volume.from_sitk(image)
    return Volume(volume.array.astype(np.int32, copy=False), volume.geometry)


def result_structures(result_dir: Path) -> tuple[Geometry, list[StructureMask]]:
    """Liver, portal veins, hepatic veins + IVC and each lesion of a result folder, in that order.

    Reads ``liver.nii.gz``, ``labels.nii.gz`` and ``lesions.nii.gz`` (instances 1..N); empty
    structures are left out. All three files must share one grid.
    """
    result_dir = Path(result_dir)
    liver = read_label_volume(result_dir / "liver.nii.gz")
    labels = read_label_volume(result_dir / "labels.nii.gz")
    lesions = read_label_volume(result_dir / "lesions.nii.gz")
    for other, name in ((labels, "labels.nii.gz"), (lesions, "lesions.nii.gz")):
        if not liver.geometry.same_grid(other.geometry):
            raise InputError(f"{name} and liver.nii.gz in {result_dir} are on different grids; "
                             "re-run 'livermets segment'")
    hepatic_name = f"{STRUCTURES['hepatic_veins'].name} and IVC"
    structures = [
        StructureMask("liver", STRUCTURES["liver"].name, STRUCTURES["liver"].color_rgb, liver.array > 0),
        StructureMask("portal_vein", STRUCTURES["portal_vein"].name, STRUCTURES["portal_vein"].color_rgb,
                      labels.array == RESULT_PORTAL),
        StructureMask("hepatic_veins", hepatic_name, STRUCTURES["hepatic_veins"].color_rgb,
                      labels.array == RESULT_HEPATIC),
    ]
    for lesion_id in np.unique(lesions.array[lesions.array > 0]):
        structures.append(StructureMask(f"lesion_{int(lesion_id):03d}", f"Lesion {int(lesion_id)}",
                                        STRUCTURES["lesion"].color_rgb, lesions.array == lesion_id))
    return liver.geometry, [s for s in structures if s.mask.any()]


def index_to_world(geometry: Geometry, frame: str) -> np.ndarray:
    """4 x 4 matrix from homogeneous ``(i, j, k, 1)`` to ``frame`` ("RAS" or "LPS") millimetres."""
    if frame not in FRAMES:
        raise ValueError(f"unknown frame {frame!r}; use RAS or LPS")
    return geometry.ijk_to_ras() if frame == "RAS" else geometry.ijk_to_lps()


def mask_surface(mask: np.ndarray, geometry: Geometry, *, frame: str = "RAS",
                 smoothing_iterations: int = 30, pass_band: float = 0.05):
    """Closed, smoothed triangle surface (``vtkPolyData`` with normals) of a [k, j, i] boolean mask.

    Points are in ``frame`` millimetres. Outward normals and counter-clockwise triangles (seen from
    outside) also on left-handed grids. Raises ``ValueError`` for an empty mask.
    """
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkCommonTransforms import vtkTransform
    from vtkmodules.vtkFiltersCore import (vtkFlyingEdges3D, vtkPolyDataNormals, vtkTriangleFilter,
                                           vtkWindowedSincPolyDataFilter)
    from vtkmodules.vtkFiltersGeneral import vtkTransformPolyDataFilter

    mask = np.asarray(mask, dtype=bool)
    if mask.shape != geometry.shape:
        raise ValueError(f"mask shape {mask.shape} does not match the grid {geometry.shape}")
    nonzero = np.nonzero(mask)
    if len(nonzero[0]) == 0:
        raise ValueError("cannot make a surface of an empty mask")
    low = [int(n.min()) for n in nonzero]
    high = [int(n.max()) + 1 for n in nonzero]
    crop = np.pad(mask[low[0]:high[0], low[1]:high[1], low[2]:high[2]], 1).astype(np.uint8)

    image = vtkImageData()
    image.SetDimensions(crop.shape[2], crop.shape[1], crop.shape[0])
    # Index of crop voxel 0 in the full grid, (i, j, k) order; -1 for the padding.
    image.SetOrigin(low[2] - 1, low[1] - 1, low[0] - 1)
    image.GetPointData().SetScalars(numpy_to_vtk(crop.ravel(), deep=True))
    contour = vtkFlyingEdges3D()
    contour.SetInputData(image)
    contour.SetValue(0, 0.5)
    contour.ComputeNormalsOff()
    contour.ComputeGradientsOff()

    matrix = index_to_world(geometry, frame)
    transform = vtkTransform()
    transform.SetMatrix(matrix.ravel().tolist())
    to_world = vtkTransformPolyDataFilter()
    to_world.SetTransform(transform)
    to_world.SetInputConnection(contour.GetOutputPort())

    smoother = vtkWindowedSincPolyDataFilter()
    smoother.SetInputConnection(to_world.GetOutputPort())
    smoother.SetNumberOfIterations(int(smoothing_iterations))
    smoother.SetPassBand(pass_band)
    smoother.BoundarySmoothingOff()
    smoother.FeatureEdgeSmoothingOff()
    smoother.NonManifoldSmoothingOn()
    smoother.NormalizeCoordinatesOn()

    normals = vtkPolyDataNormals()
    normals.SetInputConnection(smoother.GetOutputPort() if smoothing_iterations > 0
                               else to_world.GetOutputPort())
    normals.SplittingOff()
    normals.ConsistencyOn()
    normals.AutoOrientNormalsOn()  # closed surfaces: outward normals, whatever the grid's handedness
    triangles = vtkTriangleFilter()
    triangles.SetInputConnection(normals.GetOutputPort())
    triangles.Update()
    return triangles.GetOutput()


def surface_arrays(polydata) -> tuple[np.ndarray, np.ndarray]:
    """Points (n, 3) in mm and triangles (m, 3) as 0-based point indices."""
    from vtkmodules.util.numpy_support import vtk_to_numpy

    points = vtk_to_numpy(polydata.GetPoints().GetData()).astype(np.float64)
    triangles = vtk_to_numpy(polydata.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    return points, triangles


def _header(name: str, frame: str) -> str:
    return f"LiverMets {__version__} {name}; coordinates {frame} mm"


def write_stl(polydata, path: Path, *, name: str, frame: str) -> None:
    """Binary STL; the 80-byte header says structure, frame and that units are millimetres."""
    points, triangles = surface_arrays(polydata)
    corners = points[triangles]  # (m, 3, 3)
    facet_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    lengths = np.linalg.norm(facet_normals, axis=1, keepdims=True)
    facet_normals = np.divide(facet_normals, lengths, out=np.zeros_like(facet_normals), where=lengths > 0)
    record = np.dtype([("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
    data = np.zeros(len(triangles), dtype=record)
    data["normal"], data["corners"] = facet_normals, corners
    header = _header(name, frame).encode("ascii", "replace")[:80].ljust(80, b" ")
    write_atomically(path, header + np.uint32(len(triangles)).tobytes() + data.tobytes())


def obj_text(surfaces: list[tuple[str, object]], *, frame: str, material_file: Optional[str] = None) -> str:
    """Wavefront OBJ text holding one named object per ``(name, polydata)``, with vertex normals."""
    lines = [f"# {_header('surface models', frame)}"]
    if material_file:
        lines.append(f"mtllib {material_file}")
    offset = 1
    for name, polydata in surfaces:
        from vtkmodules.util.numpy_support import vtk_to_numpy

        points, triangles = surface_arrays(polydata)
        normals = vtk_to_numpy(polydata.GetPointData().GetNormals())
        lines.append(f"o {name}")
        if material_file:
            lines.append(f"usemtl {name}")
        lines.extend(f"v {x:.4f} {y:.4f} {z:.4f}" for x, y, z in points)
        lines.extend(f"vn {x:.4f} {y:.4f} {z:.4f}" for x, y, z in normals)
        lines.extend(f"f {a}//{a} {b}//{b} {c}//{c}" for a, b, c in triangles + offset)
        offset += len(points)
    return "\n".join(lines) + "\n"


def export_models(result_dir: Path, out_dir: Path, *, file_format: str = "stl", frame: str = "RAS",
                  progress: Optional[ProgressCallback] = None) -> list[Path]:
    """Write surface models of every structure in a result folder; returns the written files.

    STL: one binary file per structure (``liver.stl``, ``portal_vein.stl``, ``hepatic_veins.stl``,
    ``lesion_001.stl`` ...). OBJ: one ``models.obj`` with one object per structure and a
    ``models.mtl`` with their colours. Coordinates in ``frame`` ("RAS" or "LPS") millimetres.
    """
    file_format, frame = file_format.lower(), frame.upper()
    if file_format not in FORMATS:
        raise LiverMetsError(f"unknown model format {file_format!r}; use stl or obj")
    if frame not in FRAMES:
        raise LiverMetsError(f"unknown coordinate frame {frame!r}; use RAS or LPS")
    geometry, structures = result_structures(Path(result_dir))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    surfaces = []
    for index, structure in enumerate(structures):
        report(progress, index / (len(structures) + 1), f"surface of {structure.name}")
        surfaces.append((structure, mask_surface(structure.mask, geometry, frame=frame)))
    report(progress, len(structures) / (len(structures) + 1), f"writing {file_format.upper()}")
    if file_format == "stl":
        written = []
        for structure, polydata in surfaces:
            path = out_dir / f"{structure.key}.stl"
            write_stl(polydata, path, name=structure.name, frame=frame)
            written.append(path)
        return written
    materials = "".join(f"newmtl {s.key}\nKd {' '.join(f'{c / 255:.3f}' for c in s.color_rgb)}\n"
                        f"d {0.4 if s.key == 'liver' else 1.0}\n" for s, _ in surfaces)
    mtl_path, obj_path = out_dir / "models.mtl", out_dir / "models.obj"
    write_atomically(mtl_path, materials.encode("ascii"))
    text = obj_text([(s.key, polydata) for s, polydata in surfaces], frame=frame, material_file=mtl_path.name)
    write_atomically(obj_path, text.encode("ascii"))
    return [obj_path, mtl_path]
