"""Automatic segmentation: liver, lesions, venous trees, sequence awareness and phase alignment.

Entry points: :func:`livermets.segmentation.pipeline.segment` and
:func:`livermets.segmentation.pipeline.write_result`. Modules are imported on use, so importing
this package is cheap.
"""
