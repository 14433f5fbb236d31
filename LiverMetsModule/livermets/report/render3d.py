"""Offscreen 3D pictures of a result: liver semi-transparent, portal and hepatic veins, lesions yellow.

Plain VTK, no Slicer: surfaces come from :func:`livermets.models.mask_surface` in RAS mm, and the
camera looks from the patient's front (anterior view, patient right on the picture's left) or
back (posterior view). Lesions carry their id, as in the report's table, drawn on top. Without a display on
Linux, OSMesa is used (``VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow``, needs libOSMesa).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import numpy as np

from livermets.progress import ProgressCallback, report

VIEWS = {"anterior": (0.0, 1.0, 0.0), "posterior": (0.0, -1.0, 0.0)}  # camera direction from the focus, RAS
SIZE_PX = (640, 640)
LIVER_OPACITY = 0.25
BACKGROUND_RGB = (0.08, 0.09, 0.12)
VESSELS_CLIPPED = ("portal_vein", "hepatic_veins")
VESSEL_MARGIN_MM = 15.0


def _load_rendering() -> None:
    """Import VTK's OpenGL back end (before any renderer, mapper or actor is made: its factory
    overrides replace the abstract classes); OSMesa when there is no X display on Linux."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkOSOpenGLRenderWindow")
    import vtkmodules.vtkRenderingFreeType  # noqa: F401  (text actors)
    import vtkmodules.vtkRenderingOpenGL2  # noqa: F401


def _render_window(size_px: tuple[int, int]):
    from vtkmodules.vtkRenderingCore import vtkRenderWindow

    window = vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.SetSize(*size_px)
    window.SetMultiSamples(0)
    return window


def _liver_box(liver: np.ndarray, geometry, margin_mm: float = VESSEL_MARGIN_MM) -> np.ndarray:
    """Boolean [k, j, i] box around the liver, widened by ``margin_mm`` along every array axis."""
    box = np.zeros(liver.shape, dtype=bool)
    found = np.nonzero(liver)
    if len(found[0]) == 0:
        return box
    slices = []
    for axis, indices in enumerate(found):
        pad = int(np.ceil(margin_mm / geometry.spacing_mm[axis]))
        slices.append(slice(max(int(indices.min()) - pad, 0), int(indices.max()) + pad + 1))
    box[tuple(slices)] = True
    return box


def _surface_actor(polydata, color_rgb: tuple[int, int, int], opacity: float):
    from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

    mapper = vtkPolyDataMapper()
    mapper.SetInputData(polydata)
    mapper.ScalarVisibilityOff()
    actor = vtkActor()
    actor.SetMapper(mapper)
    actor.GetProperty().SetColor(*(c / 255.0 for c in color_rgb))
    actor.GetProperty().SetOpacity(opacity)
    actor.GetProperty().SetSpecular(0.2)
    return actor


def _text(text: str, position: tuple[float, float], size: int, *, display: bool = False):
    """A 2D text actor at normalised viewport ``position``, or at display pixels with ``display``."""
    from vtkmodules.vtkRenderingCore import vtkTextActor

    actor = vtkTextActor()
    actor.SetInput(text)
    coordinate = actor.GetPositionCoordinate()
    if display:
        coordinate.SetCoordinateSystemToDisplay()
    else:
        coordinate.SetCoordinateSystemToNormalizedViewport()
    actor.SetPosition(*position)
    properties = actor.GetTextProperty()
    properties.SetFontSize(size)
    properties.SetColor(1.0, 1.0, 1.0)
    properties.SetBold(True)
    properties.SetShadow(True)
    properties.SetJustificationToCentered()
    properties.SetVerticalJustificationToCentered()
    return actor


def _to_display(renderer, point_ras) -> tuple[float, float]:
    """Display pixel (x, y) of a RAS point with the renderer's current camera."""
    from vtkmodules.vtkRenderingCore import vtkCoordinate

    coordinate = vtkCoordinate()
    coordinate.SetCoordinateSystemToWorld()
    coordinate.SetValue(*point_ras)
    x, y = coordinate.GetComputedDoubleDisplayValue(renderer)
    return float(x), float(y)


def render_views(result_dir: Path, out_dir: Path, *, size_px: tuple[int, int] = SIZE_PX,
                 progress: Optional[ProgressCallback] = None) -> dict[str, Path]:
    """Write ``3d_anterior.png`` and ``3d_posterior.png`` of a result folder; returns view -> path."""
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkRenderingCore import vtkRenderer, vtkWindowToImageFilter

    from livermets.models import mask_surface, result_structures
    from livermets.report.keyimages import write_png

    _load_rendering()
    geometry, structures = result_structures(Path(result_dir))
    near_liver = _liver_box(structures[0].mask, geometry) if structures[0].key == "liver" else None
    renderer = vtkRenderer()
    renderer.SetBackground(*BACKGROUND_RGB)
    liver_bounds = None
    label_points: list[tuple[str, tuple[float, float, float]]] = []  # lesion number, RAS point above it
    for number, structure in enumerate(structures):
        report(progress, 0.8 * number / len(structures), f"3D surface of {structure.name}")
        mask = structure.mask
        if near_liver is not None and structure.key in VESSELS_CLIPPED:
            mask = mask & near_liver  # the IVC runs the whole field of view: show it near the liver only
            if not mask.any():
                continue
        polydata = mask_surface(mask, geometry, frame="RAS")
        is_liver = structure.key == "liver"
        renderer.AddActor(_surface_actor(polydata, structure.color_rgb, LIVER_OPACITY if is_liver else 1.0))
        if is_liver:
            liver_bounds = polydata.GetBounds()
        if structure.key.startswith("lesion_"):
            bounds = np.asarray(polydata.GetBounds()).reshape(3, 2)
            label_points.append((structure.name.split()[-1], (bounds[0].mean(), bounds[1].mean(),
                                                               bounds[2, 1] + 5.0)))
    renderer.UseDepthPeelingOn()  # correct blending of the transparent liver
    window = _render_window(size_px)
    window.SetAlphaBitPlanes(1)
    window.AddRenderer(renderer)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for number, (view, direction) in enumerate(VIEWS.items()):
        report(progress, 0.8 + 0.2 * number / len(VIEWS), f"rendering {view} view")
        camera = renderer.GetActiveCamera()
        camera.SetFocalPoint(0.0, 0.0, 0.0)
        camera.SetPosition(*direction)
        camera.SetViewUp(0.0, 0.0, 1.0)
        renderer.ResetCamera(liver_bounds) if liver_bounds else renderer.ResetCamera()
        camera.Zoom(1.3)
        right, left = ("R", "L") if view == "anterior" else ("L", "R")
        labels = [_text(f"{view.capitalize()} view", (0.5, 0.94), 20), _text(right, (0.04, 0.5), 20),
                  _text(left, (0.96, 0.5), 20)]
        window.Render()  # sets the camera's clipping range, needed for the projection below
        labels += [_text(text, _to_display(renderer, point), 17, display=True)
                   for text, point in label_points]
        for actor in labels:
            renderer.AddViewProp(actor)
        window.Render()
        capture = vtkWindowToImageFilter()
        capture.SetInput(window)
        capture.SetInputBufferTypeToRGB()
        capture.ReadFrontBufferOff()
        capture.Update()
        output = capture.GetOutput()
        width, height, _ = output.GetDimensions()
        rgb = vtk_to_numpy(output.GetPointData().GetScalars()).reshape(height, width, 3)[::-1]
        written[view] = write_png(rgb, out_dir / f"3d_{view}.png")
        for actor in labels:
            renderer.RemoveViewProp(actor)
    window.Finalize()
    return written
