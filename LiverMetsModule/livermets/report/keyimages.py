"""Key images: per lesion, a zoomed axial slice through its centre with its contour and RECIST lines.

Each picture is resampled from the source image onto a true axial plane (patient LPS axes, so
oblique acquisitions are shown upright) in radiological orientation: patient right on the image
left, anterior at the top. Drawn in numpy: lesion contour yellow, other lesions orange, liver
outline faint, RECIST long axis red, short axis cyan, a 10 mm scale bar white. Grey levels use a
window set from the liver's own intensities, so it suits any MRI sequence or CT.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from livermets.geometry import LPS_TO_RAS
from livermets.progress import ProgressCallback, report

SIZE_PX = 256
MIN_FIELD_OF_VIEW_MM = 60.0
FIELD_OF_VIEW_PER_DIAMETER = 2.5
SCALE_BAR_MM = 10.0

LESION_RGB = (255, 220, 0)
OTHER_LESION_RGB = (255, 140, 0)
LIVER_RGB = (120, 200, 120)
LONG_AXIS_RGB = (255, 40, 40)
SHORT_AXIS_RGB = (0, 220, 255)
SCALE_RGB = (255, 255, 255)


@dataclass(frozen=True)
class KeyImage:
    """A key image written for one lesion: file, field of view (mm) and slice height (RAS z, mm)."""

    lesion_id: int
    path: Path
    field_of_view_mm: float
    slice_z_ras_mm: float


def liver_window(image_array: np.ndarray, liver_mask: np.ndarray) -> tuple[float, float]:
    """Display range (low, high) from liver intensities: 1st-99th percentile widened by 60 %.

    The widening keeps lesions and vessels that are darker or brighter than parenchyma visible.
    Falls back to the whole image when the liver mask is empty.
    """
    values = image_array[liver_mask] if np.any(liver_mask) else image_array.ravel()
    low, high = np.percentile(values.astype(np.float64), [1.0, 99.0])
    spread = max(float(high - low), 1e-6)
    return float(low - 0.6 * spread), float(high + 0.6 * spread)


def _reference(center_ras: np.ndarray, field_of_view_mm: float):
    """A SIZE_PX x SIZE_PX x 1 SimpleITK grid, LPS-aligned, centred on ``center_ras``."""
    import SimpleITK as sitk

    pixel_mm = field_of_view_mm / SIZE_PX
    center_lps = LPS_TO_RAS @ center_ras
    reference = sitk.Image(SIZE_PX, SIZE_PX, 1, sitk.sitkUInt8)
    reference.SetSpacing((pixel_mm, pixel_mm, 1.0))
    half = (SIZE_PX - 1) / 2.0 * pixel_mm
    reference.SetOrigin((center_lps[0] - half, center_lps[1] - half, center_lps[2]))
    return reference


def _resample(image, reference, nearest: bool) -> np.ndarray:
    import SimpleITK as sitk

    interpolator = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    resampled = sitk.Resample(image, reference, sitk.Transform(), interpolator, 0.0)
    return sitk.GetArrayFromImage(resampled)[0]


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it: a one-pixel contour (not along the frame edge)."""
    padded = np.pad(mask, 1, mode="edge")
    interior = (padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    return mask & ~interior


def _thicken(pixels: np.ndarray) -> np.ndarray:
    padded = np.pad(pixels, 1)
    return (padded[1:-1, 1:-1] | padded[:-2, 1:-1] | padded[2:, 1:-1]
            | padded[1:-1, :-2] | padded[1:-1, 2:])


def draw_line(rgb: np.ndarray, start_xy: Sequence[float], end_xy: Sequence[float],
              color: tuple[int, int, int], width_px: float = 1.5) -> None:
    """Draw an anti-alias-free line (pixel coordinates x = column, y = row) into ``rgb`` in place."""
    start, end = np.asarray(start_xy, float), np.asarray(end_xy, float)
    count = int(np.ceil(np.linalg.norm(end - start) * 2)) + 2
    points = start + np.linspace(0.0, 1.0, count)[:, None] * (end - start)
    radius = int(np.ceil(width_px))
    rows, columns = rgb.shape[:2]
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy > width_px * width_px:
                continue
            x = np.rint(points[:, 0] + dx).astype(int)
            y = np.rint(points[:, 1] + dy).astype(int)
            keep = (x >= 0) & (x < columns) & (y >= 0) & (y < rows)
            rgb[y[keep], x[keep]] = color


def _ras_to_pixel(points_ras: np.ndarray, reference) -> np.ndarray:
    """RAS mm -> (x, y) pixel coordinates of the LPS-aligned reference grid."""
    lps = np.asarray(points_ras, float) @ LPS_TO_RAS.T
    origin = np.asarray(reference.GetOrigin()[:2])
    return (lps[..., :2] - origin) / reference.GetSpacing()[0]


def lesion_diameter_mm(lesion: dict) -> float:
    """Largest known diameter of a results lesion (mm), else that of a sphere of its volume."""
    known = [lesion.get(key) for key in ("recist_long_mm", "longest_axial_diameter_mm", "max_diameter_3d_mm")]
    known = [float(value) for value in known if value]
    if known:
        return max(known)
    return float((6.0 * 1000.0 * float(lesion.get("volume_ml") or 0.0) / np.pi) ** (1.0 / 3.0))


def key_image_rgb(image, lesions_image, liver_image, lesion: dict,
                  window: tuple[float, float]) -> tuple[np.ndarray, float, float]:
    """RGB uint8 (SIZE_PX, SIZE_PX, 3) key image of one lesion, its field of view and slice z (RAS mm).

    ``image``, ``lesions_image`` (instances) and ``liver_image`` are SimpleITK images in one
    patient space; ``lesion`` is a results-file lesion (centre, RECIST endpoints in RAS mm).
    """
    center = np.asarray(lesion["center_ras_mm"], float)
    recist = lesion.get("recist") or None
    if recist:
        # RECIST lines lie in one slice: show that slice, so both lines are in plane.
        center[2] = 0.5 * (recist["long"]["start_ras_mm"][2] + recist["long"]["end_ras_mm"][2])
    field_of_view = max(MIN_FIELD_OF_VIEW_MM, FIELD_OF_VIEW_PER_DIAMETER * lesion_diameter_mm(lesion))
    reference = _reference(center, field_of_view)

    grey = _resample(image, reference, nearest=False).astype(np.float64)
    low, high = window
    grey = np.clip((grey - low) / (high - low) * 255.0, 0, 255).astype(np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)

    instances = _resample(lesions_image, reference, nearest=True)
    liver = _resample(liver_image, reference, nearest=True) > 0
    rgb[_outline(liver)] = LIVER_RGB
    others = (instances > 0) & (instances != lesion["id"])
    rgb[_thicken(_outline(others))] = OTHER_LESION_RGB
    rgb[_thicken(_outline(instances == lesion["id"]))] = LESION_RGB

    if recist:
        for axis, color in (("long", LONG_AXIS_RGB), ("short", SHORT_AXIS_RGB)):
            line = recist[axis]
            start, end = _ras_to_pixel(np.array([line["start_ras_mm"], line["end_ras_mm"]]), reference)
            draw_line(rgb, start, end, color)
    bar_px = SCALE_BAR_MM / reference.GetSpacing()[0]
    draw_line(rgb, (10, SIZE_PX - 12), (10 + bar_px, SIZE_PX - 12), SCALE_RGB, width_px=1.0)
    return rgb, field_of_view, float(center[2])


def write_png(rgb: np.ndarray, path: Path) -> Path:
    """Write an RGB uint8 (rows, columns, 3) array as PNG (SimpleITK)."""
    import SimpleITK as sitk

    from livermets.files import write_atomically

    path = Path(path)
    temporary = path.with_name(f".{path.stem}.part.png")
    sitk.WriteImage(sitk.GetImageFromArray(np.ascontiguousarray(rgb, dtype=np.uint8), isVector=True),
                    str(temporary))
    data = temporary.read_bytes()
    temporary.unlink()
    return write_atomically(path, data)


def write_key_images(image_path: Path, result_dir: Path, lesions: list[dict], out_dir: Path, *,
                     progress: Optional[ProgressCallback] = None) -> list[KeyImage]:
    """Write ``lesion_<id>.png`` in ``out_dir`` for every results lesion; returns them in order.

    ``image_path`` is the source image the segmentation was made on; the result folder gives
    ``lesions.nii.gz`` and ``liver.nii.gz``.
    """
    import SimpleITK as sitk

    from livermets.models import read_label_volume

    image = sitk.ReadImage(str(image_path), sitk.sitkFloat32)
    lesions_volume = read_label_volume(Path(result_dir) / "lesions.nii.gz")
    liver_volume = read_label_volume(Path(result_dir) / "liver.nii.gz")
    lesions_image, liver_image = lesions_volume.to_sitk(), liver_volume.to_sitk()
    image_array = sitk.GetArrayFromImage(image)
    if image_array.shape == liver_volume.array.shape:
        window = liver_window(image_array, liver_volume.array > 0)
    else:  # another grid: sample the liver mask onto the image grid first
        liver_on_image = sitk.Resample(liver_image, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
        window = liver_window(image_array, sitk.GetArrayFromImage(liver_on_image) > 0)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for number, lesion in enumerate(lesions):
        report(progress, number / max(len(lesions), 1), f"key image of lesion {lesion['id']}")
        rgb, field_of_view, slice_z = key_image_rgb(image, lesions_image, liver_image, lesion, window)
        path = write_png(rgb, out_dir / f"lesion_{int(lesion['id']):03d}.png")
        written.append(KeyImage(int(lesion["id"]), path, field_of_view, slice_z))
    return written
