"""Headless PNG snapshots of a scene: a 3D view and axial / coronal slices with segmentation overlays.

The pictures are drawn by Slicer's own displayable managers on a private off-screen render window, so
they show what the Slicer views show. On Linux without an X display, VTK's OSMesa window is chosen
(``VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow``, needs libosmesa6). The temporary view, camera
and slice nodes are removed from the scene afterwards; the segmentation's 2D display settings are
restored.
Same scene and parameters -> the same pixels (no multisampling, fixed camera, solid background).
Pixel coordinates follow the PNG convention: ``(column, row)`` with row 0 at the top.
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from LiverMetsLib import rendering

DEFAULT_BACKGROUND_RGB = (0.08, 0.09, 0.12)
THREE_D_MANAGERS = (
    "vtkMRMLCameraDisplayableManager",
    "vtkMRMLViewDisplayableManager",
    "vtkMRMLModelDisplayableManager",
    "vtkMRMLSegmentationsDisplayableManager3D",
    "vtkMRMLMarkupsDisplayableManager",
)
SLICE_MANAGERS = (
    "vtkMRMLSegmentationsDisplayableManager2D",
    "vtkMRMLModelSliceDisplayableManager",
    "vtkMRMLMarkupsDisplayableManager",
)
SLICE_ORIENTATIONS = ("Axial", "Coronal", "Sagittal")
_viewCounter = itertools.count(1)


def snapshot3D(
    segmentationNode,
    outputPath: str | os.PathLike,
    *,
    sizePixels: Sequence[int] = (512, 512),
    cameraPreset: str = "anterior",
    boundsRas: Optional[Sequence[float]] = None,
    applicationLogic=None,
) -> str:
    """Write a PNG of the 3D view of the scene holding ``segmentationNode``; return its path.

    The camera frames ``boundsRas`` (default: the liver's surfaces, else the whole segmentation) from
    ``cameraPreset`` (see ``rendering.CAMERA_PRESETS``). The segmentation's closed surfaces are built if
    missing; call ``rendering.applyStructureDisplay`` first for the LiverMets colours.
    """
    segmentationNode.CreateClosedSurfaceRepresentation()
    bounds = boundsRas if boundsRas is not None else rendering.structureBoundsRas(segmentationNode, "liver")
    with OffscreenThreeDView(
        segmentationNode.GetScene(), sizePixels=sizePixels, applicationLogic=applicationLogic
    ) as view:
        view.setCameraPreset(cameraPreset, bounds)
        view.render()
        return view.writePng(outputPath)


def snapshotSlice(
    volumeNode,
    segmentationNode,
    rasPoint: Sequence[float],
    outputPath: str | os.PathLike,
    *,
    orientation: str = "Axial",
    overlay: str = "outline",
    fieldOfViewMm: Optional[float] = None,
    sizePixels: Sequence[int] = (512, 512),
    applicationLogic=None,
) -> str:
    """Write a PNG of one slice through ``rasPoint`` (RAS mm) with the segmentation drawn on it.

    ``orientation`` is Axial, Coronal or Sagittal; ``overlay`` is ``"outline"``, ``"fill"`` or
    ``"both"``; ``fieldOfViewMm`` is the width shown (default: the whole volume fits).
    ``segmentationNode`` may be None (volume only). Returns the path written.
    """
    if overlay not in ("outline", "fill", "both"):
        raise ValueError(f"overlay must be 'outline', 'fill' or 'both', got {overlay!r}")
    if volumeNode is None or volumeNode.GetImageData() is None:
        raise ValueError("snapshotSlice needs a volume node with image data")
    scene = volumeNode.GetScene()
    with _overlayStyle(segmentationNode, overlay):
        with OffscreenSliceView(
            scene, orientation=orientation, sizePixels=sizePixels, applicationLogic=applicationLogic
        ) as view:
            view.showVolume(volumeNode)
            view.centerOn(rasPoint, fieldOfViewMm)
            view.render()
            return view.writePng(outputPath)


def snapshotPanels(
    volumeNode,
    segmentationNode,
    rasPoint: Sequence[float],
    outputPath: str | os.PathLike,
    *,
    panelSizePixels: int = 384,
    cameraPreset: str = "anterior",
    overlay: str = "outline",
    fieldOfViewMm: Optional[float] = None,
    applicationLogic=None,
) -> str:
    """Write one PNG of three square panels side by side: 3D, axial and coronal through ``rasPoint``."""
    size = (int(panelSizePixels), int(panelSizePixels))
    scene = volumeNode.GetScene()
    panels = []
    bounds = rendering.structureBoundsRas(segmentationNode, "liver")
    with OffscreenThreeDView(scene, sizePixels=size, applicationLogic=applicationLogic) as view:
        view.setCameraPreset(cameraPreset, bounds)
        view.render()
        panels.append(view.pixels())
    with _overlayStyle(segmentationNode, overlay):
        for orientation in ("Axial", "Coronal"):
            with OffscreenSliceView(
                scene, orientation=orientation, sizePixels=size, applicationLogic=applicationLogic
            ) as view:
                view.showVolume(volumeNode)
                view.centerOn(rasPoint, fieldOfViewMm)
                view.render()
                panels.append(view.pixels())
    return writePngPixels(np.concatenate(panels, axis=1), outputPath)


def readPngPixels(path: str | os.PathLike) -> np.ndarray:
    """RGB pixels ``(rows, columns, 3)`` uint8 of a PNG, row 0 at the top."""
    import vtk
    from vtk.util import numpy_support

    reader = vtk.vtkPNGReader()
    reader.SetFileName(str(path))
    reader.Update()
    image = reader.GetOutput()
    columns, rows, _ = image.GetDimensions()
    scalars = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    pixels = scalars.reshape(rows, columns, -1)[::-1, :, :3]
    return np.ascontiguousarray(pixels)


def writePngPixels(pixels: np.ndarray, outputPath: str | os.PathLike) -> str:
    """Write RGB pixels ``(rows, columns, 3)`` uint8 (row 0 at the top) as a PNG; return the path.

    Written to a temporary name beside the target, then renamed, so no half-written file is left.
    """
    import vtk
    from vtk.util import numpy_support

    pixels = np.asarray(pixels)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB pixels (rows, columns, 3), got {pixels.dtype} {pixels.shape}")
    outputPath = Path(outputPath)
    if outputPath.suffix.lower() != ".png":
        raise ValueError(f"snapshot file name must end in .png, got '{outputPath.name}'")
    outputPath.parent.mkdir(parents=True, exist_ok=True)
    rows, columns, _ = pixels.shape
    image = vtk.vtkImageData()
    image.SetDimensions(columns, rows, 1)
    flat = np.ascontiguousarray(pixels[::-1]).reshape(-1, 3)
    array = numpy_support.numpy_to_vtk(flat, deep=True, array_type=vtk.VTK_UNSIGNED_CHAR)
    image.GetPointData().SetScalars(array)
    temporaryPath = outputPath.with_name(f".{outputPath.stem}.partial.png")
    writer = vtk.vtkPNGWriter()
    writer.SetFileName(str(temporaryPath))
    writer.SetInputData(image)
    writer.Write()
    if writer.GetErrorCode() or not temporaryPath.exists():
        temporaryPath.unlink(missing_ok=True)
        raise OSError(f"could not write '{outputPath}': check the folder is writable")
    os.replace(temporaryPath, outputPath)
    return str(outputPath)


class _OffscreenView:
    """Common parts: a render window of fixed size, its renderer and displayable-manager group."""

    def __init__(self, scene, sizePixels: Sequence[int], applicationLogic):
        if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
            os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkOSOpenGLRenderWindow")
        import vtk

        if scene is None:
            raise ValueError("the node is not in a scene")
        columns, rows = (int(value) for value in sizePixels)
        if not (16 <= columns <= 8192 and 16 <= rows <= 8192):
            raise ValueError(f"snapshot size must be 16..8192 pixels per side, got {tuple(sizePixels)}")
        self.scene = scene
        self.sizePixels = (columns, rows)
        self.applicationLogic = _applicationLogic(applicationLogic)
        self.renderWindow = vtk.vtkRenderWindow()
        self.renderWindow.SetOffScreenRendering(1)
        self.renderWindow.SetMultiSamples(0)
        self.renderWindow.SetAlphaBitPlanes(1)
        self.renderWindow.SetSize(columns, rows)
        self.renderer = vtk.vtkRenderer()
        self.renderWindow.AddRenderer(self.renderer)
        self.interactor = vtk.vtkRenderWindowInteractor()
        self.interactor.SetRenderWindow(self.renderWindow)
        self.managerGroup = None
        self.layoutName = f"LiverMetsSnapshot{next(_viewCounter)}"

    def _instantiateManagers(self, factory, managerNames, displayableNode) -> None:
        factory.SetMRMLApplicationLogic(self.applicationLogic)
        for name in managerNames:
            if not factory.IsDisplayableManagerRegistered(name):
                factory.RegisterDisplayableManager(name)
        self.managerGroup = factory.InstantiateDisplayableManagers(self.renderer)
        self.managerGroup.SetMRMLDisplayableNode(displayableNode)

    def render(self) -> None:
        if self.managerGroup is not None:
            self.managerGroup.RequestRender()
        self.renderWindow.Render()

    def pixels(self) -> np.ndarray:
        """The rendered RGB pixels ``(rows, columns, 3)`` uint8, row 0 at the top."""
        import vtk
        from vtk.util import numpy_support

        grabber = vtk.vtkWindowToImageFilter()
        grabber.SetInput(self.renderWindow)
        grabber.SetInputBufferTypeToRGB()
        grabber.ReadFrontBufferOff()
        grabber.Update()
        image = grabber.GetOutput()
        columns, rows, _ = image.GetDimensions()
        scalars = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
        return np.ascontiguousarray(scalars.reshape(rows, columns, -1)[::-1, :, :3])

    def writePng(self, outputPath: str | os.PathLike) -> str:
        return writePngPixels(self.pixels(), outputPath)

    def _removeNodes(self, nodes) -> None:
        if self.managerGroup is not None:
            self.managerGroup.SetMRMLDisplayableNode(None)
            self.managerGroup = None
        self.renderWindow.Finalize()
        for node in nodes:
            if node is not None and node.GetScene() is self.scene:
                self.scene.RemoveNode(node)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class OffscreenThreeDView(_OffscreenView):
    """A temporary 3D view of ``scene`` (its own view and camera nodes), rendered off screen."""

    def __init__(
        self,
        scene,
        *,
        sizePixels: Sequence[int] = (512, 512),
        applicationLogic=None,
        backgroundRgb: Sequence[float] = DEFAULT_BACKGROUND_RGB,
    ):
        import slicer

        super().__init__(scene, sizePixels, applicationLogic)
        self.renderer.SetUseDepthPeeling(1)
        self.renderer.SetMaximumNumberOfPeels(8)
        self.renderer.SetOcclusionRatio(0.0)
        self.viewNode = slicer.vtkMRMLViewNode()
        self.viewNode.SetLayoutName(self.layoutName)
        self.viewNode.SetSingletonTag(self.layoutName)
        self.viewNode.SetName(f"LiverMets snapshot {self.layoutName}")
        self.viewNode.SetHideFromEditors(True)
        self.viewNode.SetSaveWithScene(False)
        self.viewNode.SetBoxVisible(False)
        self.viewNode.SetAxisLabelsVisible(False)
        self.viewNode.SetOrientationMarkerType(slicer.vtkMRMLAbstractViewNode.OrientationMarkerTypeNone)
        self.viewNode.SetBackgroundColor(*backgroundRgb)
        self.viewNode.SetBackgroundColor2(*backgroundRgb)
        self.viewNode.SetUseDepthPeeling(True)
        scene.AddNode(self.viewNode)
        factory = slicer.vtkMRMLThreeDViewDisplayableManagerFactory.GetInstance()
        self._instantiateManagers(factory, THREE_D_MANAGERS, self.viewNode)
        self.cameraNode = rendering.cameraNodeForView(self.viewNode)
        if self.cameraNode is None:
            raise RuntimeError("the camera displayable manager created no camera node")

    def setCameraPreset(self, preset: str, boundsRas: Sequence[float]) -> dict:
        parameters = rendering.setCameraPreset(self.cameraNode, preset, boundsRas)
        self.renderer.ResetCameraClippingRange()
        return parameters

    def render(self) -> None:
        self.renderer.ResetCameraClippingRange()
        super().render()

    def rasToPixel(self, rasPoint: Sequence[float]) -> tuple[int, int]:
        """Pixel ``(column, row)`` where the RAS point projects in the last render (row 0 at the top)."""
        self.renderer.SetWorldPoint(float(rasPoint[0]), float(rasPoint[1]), float(rasPoint[2]), 1.0)
        self.renderer.WorldToDisplay()
        x, y, _ = self.renderer.GetDisplayPoint()
        return round(x), self.sizePixels[1] - 1 - round(y)

    def close(self) -> None:
        self._removeNodes([self.cameraNode, self.viewNode])


class OffscreenSliceView(_OffscreenView):
    """A temporary slice view of ``scene`` (its own slice and composite nodes), rendered off screen."""

    def __init__(
        self,
        scene,
        *,
        orientation: str = "Axial",
        sizePixels: Sequence[int] = (512, 512),
        applicationLogic=None,
    ):
        import slicer
        import vtk

        if orientation not in SLICE_ORIENTATIONS:
            raise ValueError(
                f"orientation must be one of {', '.join(SLICE_ORIENTATIONS)}, got {orientation!r}"
            )
        super().__init__(scene, sizePixels, applicationLogic)
        self.sliceLogic = slicer.vtkMRMLSliceLogic()
        self.sliceLogic.SetMRMLApplicationLogic(self.applicationLogic)
        self.sliceLogic.SetMRMLScene(scene)
        self.sliceNode = self.sliceLogic.AddSliceNode(self.layoutName)
        self.sliceNode.SetHideFromEditors(True)
        self.sliceNode.SetSaveWithScene(False)
        self.sliceNode.SetOrientation(orientation)
        self.sliceNode.SetDimensions(self.sizePixels[0], self.sizePixels[1], 1)
        self.compositeNode = self.sliceLogic.GetSliceCompositeNode()
        self.compositeNode.SetSaveWithScene(False)
        self.imageMapper = vtk.vtkImageMapper()
        self.imageMapper.SetColorWindow(255.0)
        self.imageMapper.SetColorLevel(127.5)
        self.imageActor = vtk.vtkActor2D()
        self.imageActor.SetMapper(self.imageMapper)
        self.renderer.AddViewProp(self.imageActor)
        factory = slicer.vtkMRMLSliceViewDisplayableManagerFactory.GetInstance()
        self._instantiateManagers(factory, SLICE_MANAGERS, self.sliceNode)

    def showVolume(self, volumeNode) -> None:
        self.compositeNode.SetBackgroundVolumeID(volumeNode.GetID())

    def centerOn(self, rasPoint: Sequence[float], fieldOfViewMm: Optional[float] = None) -> None:
        """Put ``rasPoint`` (RAS mm) at the centre; show ``fieldOfViewMm`` across (default: fit volume)."""
        columns, rows = self.sizePixels
        self.sliceLogic.FitSliceToAll(columns, rows)
        if fieldOfViewMm is not None:
            if fieldOfViewMm <= 0:
                raise ValueError(f"fieldOfViewMm must be positive, got {fieldOfViewMm}")
            self.sliceNode.SetFieldOfView(
                fieldOfViewMm, fieldOfViewMm * rows / columns, self.sliceNode.GetFieldOfView()[2]
            )
        self.sliceNode.JumpSliceByCentering(*(float(value) for value in rasPoint))

    def render(self) -> None:
        # The slice logic rebuilds its blend pipeline when layers change: take its current output.
        self.imageMapper.SetInputConnection(self.sliceLogic.GetImageDataConnection())
        super().render()

    def rasToPixel(self, rasPoint: Sequence[float]) -> tuple[int, int]:
        """Pixel ``(column, row)`` of a RAS point projected on the slice plane (row 0 at the top)."""
        import vtk

        rasToXy = vtk.vtkMatrix4x4()
        vtk.vtkMatrix4x4.Invert(self.sliceNode.GetXYToRAS(), rasToXy)
        x, y, _, _ = rasToXy.MultiplyPoint([float(rasPoint[0]), float(rasPoint[1]), float(rasPoint[2]), 1.0])
        return round(x), self.sizePixels[1] - 1 - round(y)

    def close(self) -> None:
        self.renderer.RemoveViewProp(self.imageActor)
        self._removeNodes([])
        # The slice logic also made a plane model (with display and transform nodes) for 3D views.
        nodes = [
            self.sliceLogic.GetSliceModelNode(),
            self.sliceLogic.GetSliceModelDisplayNode(),
            self.sliceLogic.GetSliceModelTransformNode(),
            self.compositeNode,
            self.sliceNode,
        ]
        self.sliceLogic.SetMRMLScene(None)
        for node in nodes:
            if node is not None and node.GetScene() is self.scene:
                self.scene.RemoveNode(node)


class _overlayStyle:
    """Temporarily show a segmentation's 2D outline and/or fill; restores the display node on exit."""

    def __init__(self, segmentationNode, overlay: str):
        self.displayNode = segmentationNode.GetDisplayNode() if segmentationNode is not None else None
        if segmentationNode is not None and self.displayNode is None:
            segmentationNode.CreateDefaultDisplayNodes()
            self.displayNode = segmentationNode.GetDisplayNode()
        self.overlay = overlay

    def __enter__(self):
        if self.displayNode is not None:
            self.saved = (
                self.displayNode.GetVisibility(),
                self.displayNode.GetVisibility2DFill(),
                self.displayNode.GetVisibility2DOutline(),
            )
            self.displayNode.SetVisibility(True)
            self.displayNode.SetVisibility2DFill(self.overlay in ("fill", "both"))
            self.displayNode.SetVisibility2DOutline(self.overlay in ("outline", "both"))
        return self

    def __exit__(self, *exc):
        if self.displayNode is not None:
            visibility, fill, outline = self.saved
            self.displayNode.SetVisibility(visibility)
            self.displayNode.SetVisibility2DFill(fill)
            self.displayNode.SetVisibility2DOutline(outline)
        return False


def _applicationLogic(applicationLogic):
    """The MRML application logic the displayable managers need: given, desktop Slicer's, or the factory's."""
    if applicationLogic is not None:
        return applicationLogic
    import slicer

    application = getattr(slicer, "app", None)
    if application is not None and hasattr(application, "applicationLogic"):
        return application.applicationLogic()
    existing = slicer.vtkMRMLThreeDViewDisplayableManagerFactory.GetInstance().GetMRMLApplicationLogic()
    if existing is None:
        raise ValueError("no MRML application logic: pass applicationLogic= (desktop Slicer provides one)")
    return existing
