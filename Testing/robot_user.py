"""Robot user: how many clicks does click-to-add need per lesion?

The robot drives the same ``LiverMetsLogic`` calls as the module (``addLesionFromPoint``, then
``refineLesion``) on a headless slicer-core scene.  First click at the lesion's deepest interior
point; then, while Dice < 0.85, one click where the current mask is most wrong: an include point at
the deepest point of the largest missed region, or an exclude point at the deepest point of the
largest false region (whichever is deeper, mm).  Cases: LiverMets phantoms (hepatobiliary phase,
lesions dark) and CHAOS T2-SPIR MRI (Kavur et al., Med Image Anal 2021;69:101950) with bright
irregular blobs inserted inside the manual liver label.

    python Testing/robot_user.py [--phantoms 2] [--chaos 3] [--data ../shared/data] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "LiverMetsModule"), str(HERE / "slicer")]

TARGET_DICE = 0.85
MAX_CLICKS = 8
MIN_LESION_DIAMETER_MM = 8.0  # smaller findings are not clicked (a 3 mm phantom grid shows them as 1-8 voxels)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b))


def deepestPoint(mask: np.ndarray, geometry) -> tuple[np.ndarray, float]:
    """RAS mm of the voxel deepest inside the largest component of ``mask`` (farthest from every
    outside voxel centre, ties broken by nearness to the component's centroid), and that depth (mm)."""
    import SimpleITK as sitk
    from livermets.segmentation.morphology import largest_component

    region = largest_component(mask, geometry)
    outside = sitk.GetImageFromArray((~region).astype(np.uint8))
    outside.SetSpacing(geometry.spacing_ijk_mm)
    depth = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(outside, insideIsPositive=False,
                                                                squaredDistance=False, useImageSpacing=True))
    points = np.argwhere(region)
    values = depth[region]
    deepest = points[values >= values.max() - 1e-6]
    offsets = (deepest - points.mean(axis=0)) * np.asarray(geometry.spacing_mm)
    kji = deepest[np.argmin(np.linalg.norm(offsets, axis=1))]
    return geometry.kji_to_ras(kji.astype(float)), float(values.max())


def clicksForLesion(logic, segmentationNode, volumeNode, truth: np.ndarray, geometry, sequence: str) -> dict:
    from LiverMetsLib import segmentations as seg

    seedRas, _ = deepestPoint(truth, geometry)
    timings = []
    started = time.perf_counter()
    segmentId = logic.addLesionFromPoint(segmentationNode, seedRas, volumeNode=volumeNode, sequence=sequence)
    timings.append(time.perf_counter() - started)
    clicks = 1
    score = dice(seg.segmentMask(segmentationNode, segmentId), truth)
    while score < TARGET_DICE and clicks < MAX_CLICKS:
        mask = seg.segmentMask(segmentationNode, segmentId)
        missed, extra = truth & ~mask, mask & ~truth
        include = deepestPoint(missed, geometry) if missed.any() else (None, -1.0)
        exclude = deepestPoint(extra, geometry) if extra.any() else (None, -1.0)
        started = time.perf_counter()
        if include[1] >= exclude[1]:
            logic.refineLesion(segmentationNode, segmentId, includeRas=[include[0]], volumeNode=volumeNode)
        else:
            logic.refineLesion(segmentationNode, segmentId, excludeRas=[exclude[0]], volumeNode=volumeNode)
        timings.append(time.perf_counter() - started)
        clicks += 1
        score = dice(seg.segmentMask(segmentationNode, segmentId), truth)
    logic.deleteLesion(segmentationNode, segmentId)
    return {"clicks": clicks, "dice": round(score, 3), "reached": bool(score >= TARGET_DICE),
            "seconds_per_click": round(float(np.mean(timings)), 3)}


def equivalentDiameter_mm(mask: np.ndarray, geometry) -> float:
    return float((6.0 * mask.sum() * np.prod(geometry.spacing_mm) / np.pi) ** (1.0 / 3.0))


def runCase(logic, name: str, image: np.ndarray, geometry, liver: np.ndarray, lesionLabels: np.ndarray,
            sequence: str) -> list[dict]:
    nodes = logic.populateScene(geometry, liver=liver, lesions=[], image=image, sequence=sequence, name=name)
    results = []
    for value in [v for v in np.unique(lesionLabels) if v > 0]:
        truth = lesionLabels == value
        diameter = equivalentDiameter_mm(truth, geometry)
        if diameter < MIN_LESION_DIAMETER_MM:
            continue
        result = clicksForLesion(logic, nodes.segmentationNode, nodes.volumeNode, truth, geometry, sequence)
        result.update({"case": name, "lesion": int(value), "diameter_mm": round(diameter, 1)})
        results.append(result)
    return results


def phantomCases(count: int):
    from livermets.phantom import make_phantom

    for seed in range(count):
        ph = make_phantom(seed, variant="small", sequences=["hbp"])
        yield f"phantom{seed}", ph.images["hbp"], ph.geometry, ph.liver.astype(bool), ph.lesions, "hbp"


def insertBlobs(image: np.ndarray, liver: np.ndarray, geometry, rng: np.random.Generator, count: int = 3):
    """Bright irregular blobs (T2: lesion brighter than liver) inside the liver label.

    Each blob is a union of three overlapping ellipsoids (radii 5-12 mm) around a centre at least
    12 mm deep inside the liver; its intensity is 1.8-2.5 x the liver median, blended over a
    one-voxel partial-volume edge, with noise of the liver's own spread added.
    """
    import SimpleITK as sitk
    from livermets.segmentation.morphology import distance_inside_mm, ras_axis_grids

    depth = distance_inside_mm(liver, geometry)
    x, y, z = ras_axis_grids(geometry)
    labels = np.zeros(image.shape, dtype=np.int16)
    result = image.astype(np.float32).copy()
    liverValues = image[liver]
    median, spread = float(np.median(liverValues)), float(np.std(liverValues))
    candidates = np.argwhere(depth >= 12.0)
    for value in range(1, count + 1):
        for _ in range(50):
            centerKji = candidates[rng.integers(len(candidates))]
            center = geometry.kji_to_ras(centerKji.astype(float))
            blob = np.zeros(image.shape, dtype=bool)
            for _ in range(3):
                offset = rng.normal(0.0, 4.0, 3)
                radii = rng.uniform(5.0, 12.0, 3)
                blob |= (((x - center[0] - offset[0]) / radii[0]) ** 2 + ((y - center[1] - offset[1]) / radii[1]) ** 2
                         + ((z - center[2] - offset[2]) / radii[2]) ** 2) <= 1.0
            blob &= liver
            if not (labels[blob] > 0).any() and blob.sum() > 0:
                break
        labels[blob] = value
        soft = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(
            sitk.GetImageFromArray(blob.astype(np.float32)), 0.5))  # ~one-voxel partial-volume edge
        brightness = median * rng.uniform(1.8, 2.5)
        result = result * (1 - soft) + soft * (brightness + rng.normal(0.0, spread, image.shape))
    return result.astype(np.float32), labels


def chaosCases(dataFolder: Path, count: int, rng: np.random.Generator):
    from livermets.imageio import read_image

    images = sorted((dataFolder / "chaos_t2").glob("chaos*_t2spir.nii.gz"))[:count]
    for path in images:
        volume = read_image(path)
        labels = read_image(Path(str(path).replace("_t2spir", "_labels"))).array
        liver = labels == 1
        image, lesions = insertBlobs(volume.array.astype(np.float32), liver, volume.geometry, rng)
        yield path.name.split("_")[0], image, volume.geometry, liver, lesions, "t2"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phantoms", type=int, default=2, help="number of phantom seeds (default 2)")
    parser.add_argument("--chaos", type=int, default=3, help="number of CHAOS cases with inserted blobs (default 3)")
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data",
                        help="real-data folder holding chaos_t2/")
    parser.add_argument("--json", type=Path, help="write the per-lesion results here")
    args = parser.parse_args(argv)

    from headless import createHeadlessSlicer
    from LiverMetsLib.logic import LiverMetsLogic

    headless = createHeadlessSlicer()
    logic = LiverMetsLogic(headless.scene)
    rng = np.random.default_rng(20261125)
    cases = list(phantomCases(args.phantoms))
    if args.chaos and (args.data / "chaos_t2").is_dir():
        cases += list(chaosCases(args.data, args.chaos, rng))
    elif args.chaos:
        print(f"CHAOS data not found in {args.data}: phantoms only")
    results = []
    for name, image, geometry, liver, lesions, sequence in cases:
        caseResults = runCase(logic, name, image, geometry, liver, lesions, sequence)
        for row in caseResults:
            print(f"{row['case']:10s} lesion {row['lesion']:2d}  {row['diameter_mm']:5.1f} mm  clicks {row['clicks']}"
                  f"  Dice {row['dice']:.3f}  {row['seconds_per_click']:.3f} s/click")
        results += caseResults
        headless.clear()
    if not results:
        print("no lesion large enough to click")
        return 1
    clicks = [row["clicks"] for row in results]
    summary = {"lesions": len(results), "median_clicks": float(statistics.median(clicks)),
               "mean_clicks": round(statistics.mean(clicks), 2),
               "reached_target": int(sum(row["reached"] for row in results)), "target_dice": TARGET_DICE,
               "max_clicks": MAX_CLICKS}
    for group in ("phantom", "chaos"):
        groupClicks = [row["clicks"] for row in results if row["case"].startswith(group)]
        if groupClicks:
            summary[f"median_clicks_{group}"] = float(statistics.median(groupClicks))
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "lesions": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
