"""Whole-liver figures: liver and tumour volumes, burden, lesions per segment, lobar distribution."""

from __future__ import annotations

import numpy as np

from livermets.geometry import Geometry
from livermets.labels import LEFT_LOBE_SEGMENTS, RIGHT_LOBE_SEGMENTS


def lobar_distribution(main_segments: list) -> str:
    """'none', 'unilobar right', 'unilobar left', 'bilobar' or 'caudate only' from each lesion's main
    segment (right lobe 5-8, left lobe 2-4; the caudate, 1, belongs to neither)."""
    right = any(s in RIGHT_LOBE_SEGMENTS for s in main_segments)
    left = any(s in LEFT_LOBE_SEGMENTS for s in main_segments)
    if right and left:
        return "bilobar"
    if right:
        return "unilobar right"
    if left:
        return "unilobar left"
    return "caudate only" if 1 in main_segments else "none"


def liver_summary(liver: np.ndarray, lesions: np.ndarray, geometry: Geometry, lesion_results: list[dict]) -> dict:
    """Totals for the whole liver; ``lesion_results`` as returned by ``measure_lesions``.

    ``tumour_burden_pct`` = lesion volume / whole liver volume (lesions included) x 100.
    """
    liver = np.asarray(liver, dtype=bool) | (np.asarray(lesions) > 0)
    liver_ml = float(np.count_nonzero(liver)) * geometry.voxel_volume_ml
    tumour_ml = float(np.count_nonzero(np.asarray(lesions) > 0)) * geometry.voxel_volume_ml
    main_segments = [r["couinaud_segment"] for r in lesion_results if r.get("couinaud_segment")]
    per_segment = {str(s): 0 for s in range(1, 9)}
    for segment in main_segments:
        per_segment[str(segment)] += 1
    return {
        "liver_volume_ml": round(liver_ml, 2),
        "tumour_volume_ml": round(tumour_ml, 3),
        "tumour_burden_pct": round(100.0 * tumour_ml / liver_ml, 3) if liver_ml > 0 else 0.0,
        "functional_liver_volume_ml": round(liver_ml - tumour_ml, 2),
        "lesion_count": len(lesion_results),
        "lesions_per_segment": per_segment,
        "lobar_distribution": lobar_distribution(main_segments),
        "caudate_involved": 1 in main_segments,
    }
