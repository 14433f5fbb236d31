"""Reports of a result folder: results file (JSON), key images, 3D pictures, HTML and PDF.

Sub-modules are imported on use; ``build_report`` in :mod:`livermets.report.build` runs them all.
"""
