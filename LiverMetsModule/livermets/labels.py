"""The one registry of label values, structure names, SNOMED CT codes and colours.

Label values here are part of the file contract (``labels.nii.gz``,
``anatomy.nii.gz``, ``couinaud.nii.gz``); never renumber a member.
Colours are RGB 0-255.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Code:
    """A coded concept (DICOM style triplet)."""

    value: str
    scheme: str
    meaning: str


def sct(value: str, meaning: str) -> Code:
    return Code(value, "SCT", meaning)


ANATOMICAL_STRUCTURE = sct("123037004", "Anatomical Structure")
MORPHOLOGICALLY_ALTERED = sct("49755003", "Morphologically Altered Structure")
TISSUE = sct("85756007", "Tissue")


@dataclass(frozen=True)
class Structure:
    """A structure LiverMets can name, with its terminology and display colour."""

    key: str
    name: str
    category: Code
    type: Code
    color_rgb: tuple[int, int, int]
    modifier: Optional[Code] = None


STRUCTURES: dict[str, Structure] = {s.key: s for s in [
    Structure("liver", "Liver", ANATOMICAL_STRUCTURE, sct("10200004", "Liver"), (221, 130, 101)),
    Structure("lesion", "Lesion", MORPHOLOGICALLY_ALTERED, sct("14799000", "Neoplasm, Secondary"),
              (255, 220, 0)),
    Structure("cyst", "Cyst", MORPHOLOGICALLY_ALTERED, sct("367643001", "Cyst"), (205, 205, 100)),
    Structure("portal_vein", "Portal vein", ANATOMICAL_STRUCTURE, sct("32764006", "Portal vein"),
              (0, 151, 206)),
    Structure("hepatic_veins", "Hepatic veins", ANATOMICAL_STRUCTURE, sct("8993003", "Hepatic vein"),
              (0, 98, 178)),
    Structure("ivc", "Inferior vena cava", ANATOMICAL_STRUCTURE, sct("64131007", "Inferior vena cava"),
              (0, 70, 140)),
    Structure("aorta", "Aorta", ANATOMICAL_STRUCTURE, sct("15825003", "Aorta"), (224, 97, 76)),
    Structure("spleen", "Spleen", ANATOMICAL_STRUCTURE, sct("78961009", "Spleen"), (157, 108, 162)),
    Structure("right_kidney", "Right kidney", ANATOMICAL_STRUCTURE, sct("9846003", "Right kidney"),
              (185, 102, 83)),
    Structure("left_kidney", "Left kidney", ANATOMICAL_STRUCTURE, sct("18639004", "Left kidney"),
              (185, 102, 83)),
    Structure("stomach", "Stomach", ANATOMICAL_STRUCTURE, sct("69695003", "Stomach"), (216, 132, 105)),
    Structure("vertebra", "Vertebral column", ANATOMICAL_STRUCTURE, sct("421060004", "Vertebral column"),
              (241, 214, 145)),
    Structure("body_wall", "Body wall muscle and ribs", ANATOMICAL_STRUCTURE, sct("71616004", "Skeletal muscle"),
              (192, 104, 88)),
    Structure("fat", "Fat", TISSUE, sct("248300009", "Fat"), (240, 230, 190)),
]}

# labels.nii.gz written by `livermets segment` (output contract).
RESULT_LABELS: dict[int, str] = {1: "liver", 2: "lesion", 3: "portal_vein", 4: "hepatic_veins"}
RESULT_LIVER, RESULT_LESION, RESULT_PORTAL, RESULT_HEPATIC = 1, 2, 3, 4

# anatomy.nii.gz written beside a phantom (ground truth of every structure).
PHANTOM_LABELS: dict[int, str] = {
    1: "liver", 2: "lesion", 3: "portal_vein", 4: "hepatic_veins", 5: "ivc", 6: "aorta",
    7: "spleen", 8: "right_kidney", 9: "left_kidney", 10: "stomach", 11: "vertebra",
    12: "body_wall", 13: "fat", 14: "cyst",
}
PHANTOM_LABEL_VALUES: dict[str, int] = {name: value for value, name in PHANTOM_LABELS.items()}

# couinaud.nii.gz: value n is Couinaud segment n (1 = caudate ... 8); 0 outside the liver.
COUINAUD_NAMES: dict[int, str] = {n: f"Segment {roman}" for n, roman in
                                  zip(range(1, 9), ["I", "II", "III", "IV", "V", "VI", "VII", "VIII"])}
RIGHT_LOBE_SEGMENTS = (5, 6, 7, 8)
LEFT_LOBE_SEGMENTS = (2, 3, 4)
