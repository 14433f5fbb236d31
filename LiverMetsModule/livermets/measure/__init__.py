"""Measurements of lesions and liver (sizes, distances, Couinaud segments), numbers only.

Array level: :func:`measure_lesions`, :func:`liver_summary`, :func:`couinaud_map`,
:func:`landmarks_from_vessels`; folder level: :func:`measure_result_dir`.
"""

from livermets.measure.couinaud import CouinaudLandmarks, couinaud_map, landmarks_from_vessels
from livermets.measure.lesions import measure_lesions
from livermets.measure.liver_summary import liver_summary
from livermets.measure.result_dir import measure_result_dir

__all__ = ["CouinaudLandmarks", "couinaud_map", "landmarks_from_vessels", "liver_summary", "measure_lesions",
           "measure_result_dir"]
