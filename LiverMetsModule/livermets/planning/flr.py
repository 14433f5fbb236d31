"""Future liver remnant (FLR): ratio, standardised FLR and the commonly cited minimums.

References
----------
Mosteller RD. Simplified calculation of body-surface area. N Engl J Med 1987;317:1098.
Vauthey JN, Abdalla EK, Doherty DA, et al. Body surface area and body weight predict total
liver volume in Western adults. Liver Transpl 2002;8:233-240. doi:10.1053/jlts.2002.31654
Adams RB, Aloia TA, Loyer E, et al. Selection for hepatic resection of colorectal liver
metastases: expert consensus statement. HPB 2013;15:91-103 (minimum FLR 20 % normal liver,
30 % after extensive chemotherapy, 40 % cirrhosis).
"""

from __future__ import annotations

from typing import Optional

from livermets.errors import InputError

FLR_MINIMUM_PCT = {"normal": 20.0, "chemotherapy": 30.0, "cirrhosis": 40.0}
LIVER_CONDITIONS = tuple(FLR_MINIMUM_PCT)


def bsa_mosteller_m2(height_cm: float, weight_kg: float) -> float:
    """Body surface area (m^2) = sqrt(height_cm x weight_kg / 3600) (Mosteller 1987)."""
    if not (50.0 <= height_cm <= 250.0) or not (10.0 <= weight_kg <= 400.0):
        raise InputError(f"height {height_cm} cm / weight {weight_kg} kg look wrong: give height in cm "
                         "(50-250) and weight in kg (10-400)")
    return (height_cm * weight_kg / 3600.0) ** 0.5


def estimated_total_liver_volume_ml(bsa_m2: float) -> float:
    """Vauthey et al. 2002: TLV (ml) = -794.41 + 1267.28 x BSA (m^2)."""
    return -794.41 + 1267.28 * bsa_m2


def flr_summary(remnant_ml: float, total_functional_ml: float, *, height_cm: Optional[float] = None,
                weight_kg: Optional[float] = None, liver_condition: Optional[str] = None) -> dict:
    """FLR (%) = remnant functional volume / total functional volume (tumour excluded) x 100,
    the standardised FLR (remnant / Vauthey's estimated TLV) when height and weight are given,
    and the minimum FLR commonly cited for each liver condition (information, not a decision)."""
    if total_functional_ml <= 0:
        raise InputError("the liver has no functional volume: check liver.nii.gz")
    summary: dict = {"flr_pct": round(100.0 * remnant_ml / total_functional_ml, 2)}
    if (height_cm is None) != (weight_kg is None):
        raise InputError("give both height (cm) and weight (kg) for the standardised FLR, or neither")
    if height_cm is not None and weight_kg is not None:
        bsa = bsa_mosteller_m2(height_cm, weight_kg)
        tlv = estimated_total_liver_volume_ml(bsa)
        summary.update({"bsa_m2": round(bsa, 3), "estimated_total_liver_volume_ml": round(tlv, 1),
                        "standardised_flr_pct": round(100.0 * remnant_ml / tlv, 2),
                        "standardised_flr_method": "Vauthey et al., Liver Transpl 2002 (BSA by Mosteller)"})
    if liver_condition is not None and liver_condition not in FLR_MINIMUM_PCT:
        raise InputError(f"unknown liver condition {liver_condition!r}: use one of {', '.join(LIVER_CONDITIONS)}")
    reference = summary.get("standardised_flr_pct", summary["flr_pct"])
    summary["thresholds"] = {
        "minimum_flr_pct": dict(FLR_MINIMUM_PCT),
        "liver_condition": liver_condition,
        "source": "Adams et al., HPB 2013 (consensus): 20 % normal, 30 % chemotherapy-injured, 40 % cirrhosis",
        "note": "information only; the decision belongs to the surgical team",
    }
    if liver_condition is not None:
        minimum = FLR_MINIMUM_PCT[liver_condition]
        summary["thresholds"]["minimum_for_condition_pct"] = minimum
        summary["thresholds"]["remnant_at_or_above_minimum"] = bool(reference >= minimum)
    return summary
