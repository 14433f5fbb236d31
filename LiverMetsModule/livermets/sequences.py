"""Canonical names of the image contrasts LiverMets understands, and their polarity.

Every step that depends on contrast asks :func:`polarity` instead of testing names.
"""

from __future__ import annotations

from typing import Literal

HBP = "hbp"                      # T1 hepatobiliary phase of gadoxetic acid: liver bright, lesions/vessels dark
PORTAL_VENOUS = "portal_venous"  # T1 portal-venous phase: vessels bright, lesions darker than liver
ARTERIAL = "arterial"            # T1 late arterial phase: arteries bright, some lesions rim-enhance
T1 = "t1"                        # unenhanced T1: lesions and vessels darker than liver
T2 = "t2"                        # T2: lesions moderately bright, cysts very bright, vessels dark (flow void)
DWI = "dwi"                      # diffusion (high b): lesions bright
CT = "ct"                        # portal-venous CT in Hounsfield units: vessels bright, lesions dark

SEQUENCES: tuple[str, ...] = (HBP, PORTAL_VENOUS, ARTERIAL, T1, T2, DWI, CT)
MRI_SEQUENCES: tuple[str, ...] = (HBP, PORTAL_VENOUS, ARTERIAL, T1, T2, DWI)

Polarity = Literal["dark", "bright"]

_LESION_POLARITY: dict[str, Polarity] = {
    HBP: "dark", PORTAL_VENOUS: "dark", ARTERIAL: "dark", T1: "dark", CT: "dark",
    T2: "bright", DWI: "bright",
}
_VESSEL_POLARITY: dict[str, Polarity] = {
    HBP: "dark", PORTAL_VENOUS: "bright", ARTERIAL: "bright", T1: "dark", CT: "bright",
    T2: "dark", DWI: "dark",
}


def check(sequence: str) -> str:
    """Return the canonical name or raise ``ValueError`` listing the accepted ones."""
    name = sequence.strip().lower().replace("-", "_")
    aliases = {"pv": PORTAL_VENOUS, "portal": PORTAL_VENOUS, "venous": PORTAL_VENOUS,
               "hepatobiliary": HBP, "art": ARTERIAL, "t2w": T2, "diffusion": DWI}
    name = aliases.get(name, name)
    if name not in SEQUENCES:
        raise ValueError(f"unknown sequence {sequence!r}; use one of: {', '.join(SEQUENCES)}")
    return name


def lesion_polarity(sequence: str) -> Polarity:
    """Whether metastases are darker or brighter than liver parenchyma on this contrast."""
    return _LESION_POLARITY[check(sequence)]


def vessel_polarity(sequence: str) -> Polarity:
    """Whether the portal and hepatic veins are darker or brighter than liver on this contrast."""
    return _VESSEL_POLARITY[check(sequence)]
