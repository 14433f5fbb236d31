"""Surgical planning: virtual resection (plane, segments, wedge) and future liver remnant."""

from livermets.planning.flr import bsa_mosteller_m2, estimated_total_liver_volume_ml, flr_summary
from livermets.planning.resection import PlaneResection, ResectionModel, name_resection

__all__ = ["PlaneResection", "ResectionModel", "bsa_mosteller_m2", "estimated_total_liver_volume_ml",
           "flr_summary", "name_resection"]
