"""LiverMets glue for 3D Slicer: MRML nodes in and out, review and editing (no Qt).

Import ``LiverMetsLib.logic.LiverMetsLogic`` for the facade; the submodules are importable with
only the ``slicer`` package of desktop Slicer or of the slicer-core wheel.
"""
