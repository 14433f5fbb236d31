"""LiverMets core: liver, metastasis and vessel segmentation, measurement and planning.

Pure numpy + SimpleITK (vtk only for meshes and pictures); no ``slicer`` and no Qt, so the
same code runs in Slicer's Python and from the ``livermets`` command line.
"""

__version__ = "0.1.0"
