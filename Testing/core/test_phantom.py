"""The teaching phantom: shapes, truth consistency, contrasts, determinism, geometry and the command.

Expected values come from analytic geometry (sphere and tube volumes), from the phantom's own
construction (lesion shapes, vessel trunks, breathing shifts) or from the contract in the brief
(label values, contrast directions per sequence). The "small" 3 mm variant keeps this file fast.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import SimpleITK as sitk
from livermets import cli
from livermets.geometry import Geometry
from livermets.labels import PHANTOM_LABEL_VALUES
from livermets.phantom import PHANTOM_SEQUENCES, make_phantom, phantom_geometry, write_phantom
from livermets.phantom.anatomy import Layer
from livermets.phantom.lesions import DIRECTIONS
from livermets.phantom.raster import rasterize
from livermets.phantom.shapes import Capsule, Lesion
from livermets.phantom.vessels import PORTAL_BIFURCATION
from livermets.sequences import lesion_polarity, vessel_polarity

L = PHANTOM_LABEL_VALUES


@pytest.fixture(scope="module")
def ph():
    return make_phantom(0, variant="small")


def _components(mask: np.ndarray) -> np.ndarray:
    image = sitk.ConnectedComponent(sitk.GetImageFromArray(mask.astype(np.uint8)), True)
    return sitk.GetArrayFromImage(image)


def _dilate(mask: np.ndarray) -> np.ndarray:
    image = sitk.BinaryDilate(sitk.GetImageFromArray(mask.astype(np.uint8)), [1, 1, 1])
    return sitk.GetArrayFromImage(image) > 0


def _rotation(axis, angle_deg: float) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.radians(angle_deg)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


# --- rasteriser ------------------------------------------------------------------------------

@pytest.mark.parametrize("direction", [None, _rotation([1, 2, 3], 25.0)])
def test_rasterised_sphere_and_tube_have_their_analytic_volumes(direction):
    grid = Geometry((64, 64, 64), (1.25, 1.25, 1.5), (0.0, 0.0, 0.0),
                    np.eye(3) if direction is None else direction)
    centre = grid.kji_to_ras(np.array([31.5, 31.5, 31.5]))
    sphere = Lesion(centre, 22.0, np.zeros(Lesion.N_COEFFS))
    tube = Capsule(centre + [-25, -10, -20], centre + [20, 15, 25], 6.0, 6.0)
    for shape, analytic_mm3 in [(sphere, 4 / 3 * np.pi * 22.0 ** 3),
                                (tube, np.pi * 36.0 * np.linalg.norm([45, 25, 45]) + 4 / 3 * np.pi * 216.0)]:
        raster = rasterize([Layer(1, shape)], grid)
        volume_mm3 = (raster.material == 1).sum() * grid.voxel_volume_ml * 1000.0
        assert volume_mm3 == pytest.approx(analytic_mm3, rel=0.03)
        # partial volume: the mean occupancy over supersampled voxels is closer still
        occupancy = (raster.material == 1).astype(float)
        occupancy.ravel()[raster.mixed_index] = (raster.sub_material == 1).mean(1)
        assert occupancy.sum() * grid.voxel_volume_ml * 1000.0 == pytest.approx(analytic_mm3, rel=0.015)


# --- anatomy and truth -------------------------------------------------------------------------

def test_liver_is_realistic_and_lesions_sit_inside_it(ph):
    assert 1400 <= ph.legend["liver_volume_ml"] <= 1900
    voxel_ml = ph.geometry.voxel_volume_ml
    assert ph.legend["liver_volume_ml"] == pytest.approx(ph.liver.sum() * voxel_ml, abs=1e-3)
    liver = ph.liver.astype(bool)
    assert np.all(liver[ph.lesions > 0])
    assert np.all(liver[ph.anatomy == L["cyst"]])
    diameters = [lesion["diameter_mm"] for lesion in ph.legend["lesions"]]
    assert 6 <= len(diameters) <= 10 and min(diameters) < 5 and max(diameters) > 20 and max(diameters) <= 40
    for spec in ph.scene.lesions + ph.scene.cysts:   # the shape grown by 1.5 mm is still inside the liver
        surface = spec.shape.surface_points(DIRECTIONS)
        pushed = surface + 1.5 * DIRECTIONS
        assert np.all(ph.scene.liver.inside(*pushed.T))
    # not clipped by the liver or the vessels: voxel volume of lesions >= 15 mm matches the shape
    for entry in ph.legend["lesions"]:
        if entry["diameter_mm"] >= 15:
            assert entry["volume_ml"] == pytest.approx(entry["analytic_volume_ml"], rel=0.10)
    lobes = {"right" if e["couinaud_segment"] in (5, 6, 7, 8) else "left" for e in ph.legend["lesions"]}
    assert lobes == {"left", "right"}
    assert any(e["near_vessel"] for e in ph.legend["lesions"])
    assert any(e["subcapsular"] for e in ph.legend["lesions"])
    assert any(e["rim_enhancing"] for e in ph.legend["lesions"])


def test_vessel_trees_are_connected_and_drain_where_they_should(ph):
    portal = ph.anatomy == L["portal_vein"]
    hepatic = ph.anatomy == L["hepatic_veins"]
    ivc = ph.anatomy == L["ivc"]
    assert _components(portal).max() == 1
    assert _components(hepatic | ivc).max() == 1
    hepatic_parts = _components(hepatic)
    touching = np.unique(hepatic_parts[_dilate(ivc) & hepatic])
    assert set(touching) - {0} == set(range(1, hepatic_parts.max() + 1))
    assert not np.any(portal & _dilate(ivc))
    # the portal vein enters through the hilum: its bifurcation voxel is portal and part of the
    # tree lies outside the liver (main portal and splenic vein), part inside
    k, j, i = np.round(ph.geometry.ras_to_kji(PORTAL_BIFURCATION)).astype(int)
    assert ph.anatomy[k, j, i] == L["portal_vein"]
    inside = ph.liver.astype(bool) & portal
    assert inside.sum() > 0.3 * portal.sum() and (portal & ~ph.liver.astype(bool)).sum() > 0


def test_couinaud_segments_partition_the_liver(ph):
    liver = ph.liver.astype(bool)
    assert np.array_equal(ph.couinaud > 0, liver)
    assert set(np.unique(ph.couinaud[liver])) == set(range(1, 9))
    counts = np.bincount(ph.couinaud[liver], minlength=9)[1:]
    assert counts.min() > 0.01 * liver.sum()
    volumes = ph.legend["couinaud_volumes_ml"]
    expected_ml = counts * ph.geometry.voxel_volume_ml
    assert [volumes[str(n)] for n in range(1, 9)] == pytest.approx(expected_ml, abs=1e-3)
    # the segments follow the vessels: either side of the middle hepatic vein lie segment IV
    # (toward the left) and V/VIII (toward the right)
    trunk = next(s for s in ph.scene.hepatic.segments if s.branch == "middle hepatic vein")
    middle = (trunk.p0 + trunk.p1) / 2 + 0.25 * (trunk.p1 - trunk.p0)
    d = trunk.p1 - trunk.p0
    toward_left = np.array([-d[1], d[0], 0.0]) / np.hypot(d[0], d[1])
    assert ph.scene.planes.segment(*(middle + 6 * toward_left)) == 4
    assert ph.scene.planes.segment(*(middle - 6 * toward_left)) in (5, 8)


def test_legend_matches_the_label_maps(ph):
    legend = ph.legend
    ids = np.unique(ph.lesions[ph.lesions > 0])
    assert list(ids) == [e["id"] for e in legend["lesions"]]
    assert np.array_equal(ph.lesions > 0, ph.anatomy == L["lesion"])
    voxel_ml = ph.geometry.voxel_volume_ml
    for entry in legend["lesions"]:
        mask = ph.lesions == entry["id"]
        assert entry["voxel_count"] == mask.sum() > 0
        assert entry["volume_ml"] == pytest.approx(mask.sum() * voxel_ml, abs=1e-4)
        centroid = ph.geometry.kji_to_ras(np.argwhere(mask).mean(0))
        tolerance = 0.25 * entry["diameter_mm"] + max(ph.geometry.spacing_mm)
        assert np.linalg.norm(centroid - entry["center_ras_mm"]) <= tolerance
        k, j, i = np.round(ph.geometry.ras_to_kji(entry["center_ras_mm"])).astype(int)
        assert ph.lesions[k, j, i] == entry["id"]                       # centre snapped to a lesion voxel
        assert ph.couinaud[k, j, i] == entry["couinaud_segment"]
        largest_mm = entry["diameter_mm"] * 1.6 + 2 * max(ph.geometry.spacing_mm)
        assert entry["longest_axial_diameter_mm"] <= largest_mm
    assert len(legend["cysts"]) == 1
    assert legend["cysts"][0]["voxel_count"] == (ph.anatomy == L["cyst"]).sum()
    assert legend["geometry"]["shape_kji"] == list(ph.geometry.shape)
    assert json.loads(json.dumps(legend)) == legend


def test_result_labels_follow_the_contract(ph):
    labels, anatomy, liver = ph.labels, ph.anatomy, ph.liver.astype(bool)
    assert set(np.unique(labels)) == {0, 1, 2, 3, 4}
    assert np.array_equal(labels == 2, anatomy == L["lesion"])
    assert np.array_equal(labels == 3, anatomy == L["portal_vein"])
    assert np.array_equal(labels == 4, (anatomy == L["hepatic_veins"]) | (anatomy == L["ivc"]))
    assert np.array_equal(labels == 1, liver & ((anatomy == L["liver"]) | (anatomy == L["cyst"])))


def test_contrast_of_each_sequence_agrees_with_the_pipelines_polarity(ph):
    anatomy = ph.anatomy
    core = (anatomy == L["liver"]) & ~_dilate(anatomy != L["liver"])   # parenchyma away from edges
    for sequence in PHANTOM_SEQUENCES:
        image = ph.images[sequence]
        assert image.dtype == np.float32 and image.shape == ph.geometry.shape
        liver = image[core].mean()
        lesion = image[anatomy == L["lesion"]].mean()
        vessel = image[anatomy == L["portal_vein"]].mean()
        assert (lesion < liver) == (lesion_polarity(sequence) == "dark"), sequence
        assert abs(lesion - liver) > 0.1 * liver, sequence
        assert (vessel < liver) == (vessel_polarity(sequence) == "dark"), sequence
        assert abs(vessel - liver) > 0.1 * liver, sequence
    t2 = ph.images["t2"]
    assert t2[anatomy == L["cyst"]].mean() > 1.5 * t2[anatomy == L["lesion"]].mean()
    dwi = ph.images["dwi"]
    assert dwi[anatomy == L["cyst"]].mean() < dwi[anatomy == L["lesion"]].mean()
    ct = ph.images["ct"]
    assert ct[anatomy == L["vertebra"]].mean() > 250 and ct[0, 0, 0] < -900   # bone and air
    assert ct[anatomy == L["fat"]].mean() == pytest.approx(-100, abs=15)
    assert ph.images["arterial"][anatomy == L["aorta"]].mean() > 2 * ph.images["arterial"][core].mean()


def test_noise_has_the_stated_distribution(ph):
    from livermets.phantom.render import NOISE_SIGMA

    air = ph.anatomy == 0
    air[:, 5:-5, 5:-5] = False   # only the outer 15 mm of the field of view: no lungs, no partial volume
    hbp, ct = ph.images["hbp"][air], ph.images["ct"][air]
    # MRI magnitude of zero signal is Rayleigh distributed: mean sigma * sqrt(pi / 2), never negative
    assert hbp.min() >= 0
    assert hbp.mean() == pytest.approx(NOISE_SIGMA["hbp"] * np.sqrt(np.pi / 2), rel=0.05)
    # CT noise is Gaussian around -1000 HU
    assert ct.mean() == pytest.approx(-1000, abs=1.0)
    assert ct.std() == pytest.approx(NOISE_SIGMA["ct"], rel=0.05)


# --- determinism, variants, geometry -----------------------------------------------------------

def _hashes(folder) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    for name, seed in [("a", 3), ("b", 3), ("c", 4)]:
        write_phantom(make_phantom(seed, variant="small", sequences=("ct",)), tmp_path / name)
    a, b, c = (_hashes(tmp_path / n) for n in "abc")
    assert set(a) == {"ct.nii.gz", "truth/anatomy.nii.gz", "truth/liver.nii.gz",
                      "truth/labels.nii.gz", "truth/lesions.nii.gz", "truth/couinaud.nii.gz",
                      "truth/legend.json"}
    assert a == b
    assert all(a[name] != c[name] for name in ("ct.nii.gz", "truth/anatomy.nii.gz", "truth/lesions.nii.gz",
                                               "truth/legend.json"))
    assert not [p for p in (tmp_path / "a").rglob("*tmp*")]


def test_written_files_carry_the_geometry(tmp_path, ph):
    paths = write_phantom(ph, tmp_path)
    labels = sitk.ReadImage(str(paths["labels"]))
    assert Geometry.from_sitk(labels).same_grid(ph.geometry)
    assert labels.GetPixelID() == sitk.sitkUInt8
    assert np.array_equal(sitk.GetArrayFromImage(labels), ph.labels)
    assert sitk.ReadImage(str(paths["lesions"])).GetPixelID() == sitk.sitkUInt16
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(paths["hbp"]))), ph.images["hbp"])
    legend = json.loads(paths["legend"].read_text(encoding="utf-8"))
    assert legend["liver_volume_ml"] == ph.legend["liver_volume_ml"]


def test_thick_variant_has_thick_slices(ph):
    geometry = phantom_geometry("thick")
    assert geometry.spacing_ijk_mm == (1.25, 1.25, 7.5) and geometry.shape == (32, 256, 320)
    thick = make_phantom(0, variant="thick", sequences=("hbp",))
    assert thick.geometry == geometry
    # the same world anatomy on another grid: the liver volume agrees with the 3 mm variant
    assert thick.legend["liver_volume_ml"] == pytest.approx(ph.legend["liver_volume_ml"], rel=0.03)


def test_custom_grid_covers_the_same_field_of_view():
    geometry = phantom_geometry(shape_kji=(40, 64, 80))
    assert geometry.spacing_ijk_mm == (5.0, 5.0, 6.0)
    corners = geometry.kji_to_ras(np.array([[0, 0, 0], [39, 63, 79]]))
    assert np.allclose(np.abs(corners), [[197.5, 157.5, 117.0]] * 2)


def test_oblique_grid_keeps_physical_shapes(ph):
    direction = _rotation([0.3, 1.0, 0.2], 12.0)
    calls = []
    oblique = make_phantom(0, variant="small", sequences=("ct",), direction_lps=direction,
                           progress=lambda fraction, message: calls.append(fraction))
    assert calls[-1] == 1.0 and all(a <= b for a, b in zip(calls, calls[1:]))
    assert np.allclose(oblique.geometry.direction_matrix_lps, direction)
    assert oblique.legend["liver_volume_ml"] == pytest.approx(ph.legend["liver_volume_ml"], rel=0.03)
    big = oblique.legend["lesions"][0]
    assert big["volume_ml"] == pytest.approx(big["analytic_volume_ml"], rel=0.10)
    assert set(np.unique(oblique.couinaud)) == set(range(9))


def test_breathing_shifts_the_organs_but_not_the_reference_phase():
    moved = make_phantom(1, variant="small", sequences=("hbp", "portal_venous"), breathing_mm=9.0)
    shift = np.array(moved.legend["breathing_shift_ras_mm"]["portal_venous"])
    assert moved.legend["breathing_shift_ras_mm"]["hbp"] == [0.0, 0.0, 0.0]
    assert 4.5 <= abs(shift[2]) <= 9.0
    assert moved.anatomy_for("hbp") is moved.anatomy
    def liver_centroid(anatomy):
        return moved.geometry.kji_to_ras(np.argwhere(anatomy == L["liver"]).mean(0))
    measured = liver_centroid(moved.anatomy_for("portal_venous")) - liver_centroid(moved.anatomy)
    assert np.allclose(measured, shift, atol=1.0)
    spine = moved.anatomy == L["vertebra"]
    assert np.array_equal(spine, moved.anatomy_for("portal_venous") == L["vertebra"])   # the spine stays


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="variant"):
        make_phantom(0, variant="huge")
    with pytest.raises(ValueError, match="sequence"):
        make_phantom(0, variant="small", sequences=("t1",))
    with pytest.raises(ValueError, match="breathing"):
        make_phantom(0, variant="small", breathing_mm=-1)
    with pytest.raises(ValueError, match="orthonormal"):
        phantom_geometry(direction_lps=np.diag([1.0, 2.0, 1.0]))


# --- command line --------------------------------------------------------------------------

def test_command_writes_the_phantom(tmp_path, capsys):
    out = tmp_path / "ph"
    code = cli.main(["--quiet", "phantom", "--out", str(out), "--seed", "2", "--variant", "small",
                     "--sequences", "ct,T2", "--no-cyst"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["ct.nii.gz", "t2.nii.gz", "truth"]
    legend = json.loads((out / "truth" / "legend.json").read_text(encoding="utf-8"))
    assert legend["seed"] == 2 and legend["sequences"] == ["ct", "t2"] and legend["cysts"] == []
    printed = capsys.readouterr().out
    assert f"{len(legend['lesions'])} metastases" in printed and str(out) in printed
    assert cli.main(["phantom", "--out", str(tmp_path / "x"), "--sequences", "t1"]) == 2
    assert "t1" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    (tmp_path / "file").write_text("not a folder")
    assert cli.main(["phantom", "--out", str(tmp_path / "file"), "--variant", "small"]) == 2
    assert "output folder" in capsys.readouterr().err
