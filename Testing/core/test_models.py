"""Surface models: closed surfaces with the right volume, outward normals, RAS vs LPS, STL / OBJ files.

Expected values are analytic: a ball of radius r has volume 4/3 pi r^3 and its centre where the
grid puts it; RAS and LPS differ by the sign of x and y.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from livermets.cli import main
from livermets.errors import InputError, LiverMetsError
from livermets.geometry import Geometry, Volume
from livermets.models import export_models, mask_surface, surface_arrays, write_stl

vtk_io = pytest.importorskip("vtkmodules.vtkIOGeometry")
from vtkmodules.vtkFiltersCore import vtkMassProperties  # noqa: E402

ROTATED_30_DEG = (math.cos(math.pi / 6), -math.sin(math.pi / 6), 0.0,
                  math.sin(math.pi / 6), math.cos(math.pi / 6), 0.0, 0.0, 0.0, 1.0)
LEFT_HANDED = (0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)


def ball(geometry: Geometry, center_kji, radius_mm: float) -> np.ndarray:
    grid = np.indices(geometry.shape).astype(float)
    squared = sum(((grid[axis] - center_kji[axis]) * geometry.spacing_mm[axis]) ** 2 for axis in range(3))
    return squared <= radius_mm ** 2


def read_stl(path: Path):
    reader = vtk_io.vtkSTLReader()
    reader.SetFileName(str(path))
    reader.Update()
    return reader.GetOutput()


@pytest.mark.parametrize("spacing_ijk_mm, direction, radius_mm", [
    ((1.0, 1.0, 1.0), None, 10.0),
    ((0.8, 0.8, 2.5), None, 12.0),
    ((0.9, 1.1, 2.0), ROTATED_30_DEG, 11.0),
    ((1.0, 1.0, 1.5), LEFT_HANDED, 10.0),
])
def test_ball_stl_volume_centre_and_outward_normals(tmp_path, spacing_ijk_mm, direction, radius_mm):
    shape = (int(2 * radius_mm / spacing_ijk_mm[2]) + 8, int(2 * radius_mm / spacing_ijk_mm[1]) + 8,
             int(2 * radius_mm / spacing_ijk_mm[0]) + 8)
    geometry = Geometry(shape, spacing_ijk_mm, (-20.0, 35.0, 140.0), direction or (1, 0, 0, 0, 1, 0, 0, 0, 1))
    center_kji = (np.array(shape) - 1) / 2.0
    surface = mask_surface(ball(geometry, center_kji, radius_mm), geometry, frame="RAS")
    write_stl(surface, tmp_path / "ball.stl", name="ball", frame="RAS")

    surface = read_stl(tmp_path / "ball.stl")
    mass = vtkMassProperties()
    mass.SetInputData(surface)
    mass.Update()
    assert mass.GetVolume() == pytest.approx(4.0 / 3.0 * math.pi * radius_mm ** 3, rel=0.02)

    points, triangles = surface_arrays(surface)
    center_ras = geometry.kji_to_ras(center_kji)
    assert np.allclose(points.mean(axis=0), center_ras, atol=0.5)
    assert np.allclose(np.linalg.norm(points - center_ras, axis=1), radius_mm, atol=0.15 * radius_mm)
    corners = points[triangles]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    outward = np.einsum("ij,ij->i", normals, corners.mean(axis=1) - center_ras)
    assert np.all(outward > 0), "every triangle must wind counter-clockwise seen from outside"


def test_separate_pieces_all_face_outward():
    """Vessel masks fall apart into pieces: each must face out, on a left-handed grid too."""
    geometry = Geometry((30, 30, 60), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), LEFT_HANDED)
    centers_kji = [(15.0, 15.0, 15.0), (15.0, 15.0, 45.0)]
    mask = ball(geometry, centers_kji[0], 8.0) | ball(geometry, centers_kji[1], 8.0)
    points, triangles = surface_arrays(mask_surface(mask, geometry))
    corners = points[triangles]
    middles = corners.mean(axis=1)
    centers_ras = geometry.kji_to_ras(np.array(centers_kji))
    nearest = np.argmin(np.linalg.norm(middles[:, None] - centers_ras[None], axis=2), axis=1)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    assert set(nearest.tolist()) == {0, 1}
    assert np.all(np.einsum("ij,ij->i", normals, middles - centers_ras[nearest]) > 0)


def test_stl_header_states_frame_and_millimetres(tmp_path):
    geometry = Geometry((20, 20, 20), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    write_stl(mask_surface(ball(geometry, (10, 10, 10), 6.0), geometry, frame="LPS"), tmp_path / "b.stl",
              name="Lesion 3", frame="LPS")
    header = (tmp_path / "b.stl").read_bytes()[:80].decode("ascii")
    assert "Lesion 3" in header and "LPS mm" in header
    assert not header.startswith("solid")  # a binary STL must not look like an ASCII one


def test_ras_and_lps_differ_by_the_sign_of_x_and_y():
    geometry = Geometry((24, 30, 28), (1.2, 0.9, 2.0), (12.0, -40.0, 7.0), ROTATED_30_DEG)
    mask = ball(geometry, (11.0, 14.0, 13.0), 9.0)
    ras, ras_triangles = surface_arrays(mask_surface(mask, geometry, frame="RAS"))
    lps, lps_triangles = surface_arrays(mask_surface(mask, geometry, frame="LPS"))
    assert np.array_equal(ras_triangles, lps_triangles)
    assert np.allclose(lps, ras * np.array([-1.0, -1.0, 1.0]), atol=1e-4)
    assert np.abs(ras[:, :2]).max() > 1.0  # the flip is not trivially true at the origin


def test_empty_mask_and_wrong_shape_are_refused():
    geometry = Geometry((5, 5, 5), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="empty"):
        mask_surface(np.zeros((5, 5, 5), bool), geometry)
    with pytest.raises(ValueError, match="shape"):
        mask_surface(np.ones((4, 5, 5), bool), geometry)


def write_result_folder(folder: Path) -> Geometry:
    """Ellipsoid liver holding two balls (lesions 1, 2), a portal tube (3) and a hepatic tube (4)."""
    geometry = Geometry((30, 50, 60), (1.5, 1.5, 2.0), (-45.0, -37.5, -30.0))
    grid = np.indices(geometry.shape).astype(float)
    sk, sj, si = geometry.spacing_mm
    liver = (((grid[0] - 15) * sk / 25) ** 2 + ((grid[1] - 25) * sj / 30) ** 2
             + ((grid[2] - 30) * si / 38) ** 2) <= 1
    labels = liver.astype(np.uint8)
    labels[liver & (((grid[0] - 15) * sk) ** 2 + ((grid[1] - 15) * sj) ** 2 <= 9)] = 3
    labels[liver & (((grid[0] - 15) * sk) ** 2 + ((grid[2] - 12) * si) ** 2 <= 9)] = 4
    lesions = np.zeros(geometry.shape, np.uint8)
    lesions[ball(geometry, (15, 30, 36), 7.0)] = 1
    lesions[ball(geometry, (10, 32, 20), 5.0)] = 2
    labels[lesions > 0] = 2
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in (("liver", liver.astype(np.uint8)), ("labels", labels), ("lesions", lesions)):
        sitk.WriteImage(Volume(array, geometry).to_sitk(), str(folder / f"{name}.nii.gz"))
    (folder / "lesions.json").write_text(json.dumps({"lesions": []}))
    return geometry


def obj_objects(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Parse our OBJ: object name -> (points, 0-based triangles)."""
    objects, points, name, faces = {}, [], None, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("o "):
            if name:
                objects[name] = faces
            name, faces = line[2:], []
        elif line.startswith("v "):
            points.append([float(v) for v in line.split()[1:]])
        elif line.startswith("f "):
            faces.append([int(token.split("//")[0]) - 1 for token in line.split()[1:]])
    objects[name] = faces
    points = np.array(points)
    return {key: (points, np.array(value)) for key, value in objects.items()}


def signed_volume_mm3(points: np.ndarray, triangles: np.ndarray) -> float:
    corners = points[triangles]
    return float(np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum() / 6.0)


def test_export_stl_and_obj_of_a_result_folder(tmp_path):
    geometry = write_result_folder(tmp_path / "result")
    stl_files = export_models(tmp_path / "result", tmp_path / "stl", file_format="stl", frame="RAS")
    assert [p.name for p in stl_files] == ["liver.stl", "portal_vein.stl", "hepatic_veins.stl",
                                           "lesion_001.stl", "lesion_002.stl"]
    lesions = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "result" / "lesions.nii.gz")))
    mass = vtkMassProperties()
    mass.SetInputData(read_stl(tmp_path / "stl" / "lesion_001.stl"))
    mass.Update()
    assert np.count_nonzero(lesions == 1) > 0
    assert mass.GetVolume() == pytest.approx(4.0 / 3.0 * math.pi * 7.0 ** 3, rel=0.03)

    obj_path, mtl_path = export_models(tmp_path / "result", tmp_path / "obj", file_format="obj", frame="LPS")
    objects = obj_objects(obj_path)
    assert list(objects) == ["liver", "portal_vein", "hepatic_veins", "lesion_001", "lesion_002"]
    assert obj_path.read_text(encoding="utf-8").startswith("# LiverMets") and "LPS mm" in obj_path.read_text(encoding="utf-8").splitlines()[0]
    assert "newmtl lesion_002" in mtl_path.read_text(encoding="utf-8")
    points, triangles = objects["lesion_002"]
    lesion_ras = geometry.kji_to_ras(np.array([10.0, 32.0, 20.0]))
    assert np.allclose(points[np.unique(triangles)].mean(axis=0), lesion_ras * [-1, -1, 1], atol=0.5)
    # 2 mm voxels for a 5 mm radius: voxelisation alone changes the volume by a few percent
    assert signed_volume_mm3(points, triangles) == pytest.approx(4.0 / 3.0 * math.pi * 5.0 ** 3, rel=0.06)


def test_export_refuses_bad_requests(tmp_path):
    write_result_folder(tmp_path / "result")
    with pytest.raises(LiverMetsError, match="format"):
        export_models(tmp_path / "result", tmp_path / "out", file_format="ply")
    with pytest.raises(LiverMetsError, match="frame"):
        export_models(tmp_path / "result", tmp_path / "out", frame="XYZ")
    (tmp_path / "result" / "labels.nii.gz").unlink()
    with pytest.raises(InputError, match="labels.nii.gz"):
        export_models(tmp_path / "result", tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.stl")) if (tmp_path / "out").exists() else True


def test_command_line_writes_models(tmp_path, capsys):
    write_result_folder(tmp_path / "result")
    code = main(["--quiet", "export-models", str(tmp_path / "result"), "--out", str(tmp_path / "m"),
                 "--format", "obj", "--frame", "lps"])
    assert code == 0
    assert (tmp_path / "m" / "models.obj").read_text(encoding="utf-8").splitlines()[0].endswith("LPS mm")
    assert main(["--quiet", "export-models", str(tmp_path / "missing"), "--out", str(tmp_path / "m")]) == 2
    assert "does not exist" in capsys.readouterr().err
