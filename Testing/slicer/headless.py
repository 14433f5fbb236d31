"""A headless Slicer "application" built from the slicer-core wheel: real scene, real module logics.

Desktop Slicer creates ``slicer.app``, the scene and every module logic at start-up. Without Qt we build
the part LiverMetsLib needs: one ``vtkMRMLScene``, a ``vtkSlicerApplicationLogic`` and the module
logics of Colors, Volumes, Segmentations, Markups, Tables, Terminologies, Subject hierarchy and
Sequences, each registered with ``SetModuleLogic`` under Slicer's module name.  It also sets
``slicer.mrmlScene`` and ``slicer.modules.<name>.logic()`` so ``slicer.util`` helpers work.
Used by the pytest fixtures in ``conftest.py`` and by ``Testing/robot_user.py``.
"""

from __future__ import annotations

import os
import tempfile
import types
from dataclasses import dataclass, field


@dataclass
class HeadlessSlicer:
    """The scene, the application logic and the module logics by Slicer module name."""

    scene: object
    applicationLogic: object
    moduleLogics: dict = field(default_factory=dict)
    homeDirectory: str = ""

    def logic(self, moduleName: str):
        """Module logic registered under ``moduleName`` (e.g. "Segmentations")."""
        return self.moduleLogics[moduleName]

    def clear(self) -> None:
        """Empty the scene (as File > Close scene does); default colour nodes come back."""
        self.scene.Clear(0)
        self.scene.ClearUndoStack()
        self.scene.ClearRedoStack()


_MODULE_LOGIC_CLASSES = [
    # (Slicer module name, slicer.modules attribute, logic class name); Colors first: Volumes asks it.
    ("Colors", "colors", "vtkSlicerColorLogic"),
    ("Volumes", "volumes", "vtkSlicerVolumesLogic"),
    ("Segmentations", "segmentations", "vtkSlicerSegmentationsModuleLogic"),
    ("Markups", "markups", "vtkSlicerMarkupsLogic"),
    ("Tables", "tables", "vtkSlicerTablesLogic"),
    ("SubjectHierarchy", "subjecthierarchy", "vtkSlicerSubjectHierarchyModuleLogic"),
    ("Sequences", "sequences", "vtkSlicerSequencesLogic"),
    ("Terminologies", "terminologies", "vtkSlicerTerminologiesModuleLogic"),
]


def createHeadlessSlicer(homeDirectory: str | None = None, *, publishGlobals: bool = True) -> HeadlessSlicer:
    """Build the scene and module logics and (with ``publishGlobals``) publish them as Slicer's globals.

    ``homeDirectory`` stands in for Slicer's install folder (the wheel ships no colour files or
    terminology JSON, so it holds nothing); a temporary folder is used when omitted.  A second,
    unpublished instance is handy for reading a saved scene into a fresh application.
    """
    import slicer

    home = homeDirectory or tempfile.mkdtemp(prefix="livermets-slicer-home-")
    os.makedirs(os.path.join(home, "share", "ColorFiles"), exist_ok=True)
    scene = slicer.vtkMRMLScene()
    applicationLogic = slicer.vtkSlicerApplicationLogic()
    applicationLogic.SetHomeDirectory(home)
    applicationLogic.SetShareDirectory("share")
    applicationLogic.SetMRMLScene(scene)
    headless = HeadlessSlicer(scene=scene, applicationLogic=applicationLogic, homeDirectory=home)
    modules = types.SimpleNamespace()
    for moduleName, attribute, className in _MODULE_LOGIC_CLASSES:
        logic = getattr(slicer, className)()
        logic.SetMRMLApplicationLogic(applicationLogic)
        if moduleName != "Terminologies":
            # The terminology logic loads Slicer's default .term.json files when it gets a scene;
            # the wheel has none, so it stays scene-less and LiverMets loads its own file into it.
            logic.SetMRMLScene(scene)
        applicationLogic.SetModuleLogic(moduleName, logic)
        headless.moduleLogics[moduleName] = logic
        setattr(modules, attribute, types.SimpleNamespace(logic=(lambda value=logic: value)))
    if publishGlobals:
        slicer.mrmlScene = scene
        slicer.modules = modules
    return headless


def readSceneBundle(path: str, headless: HeadlessSlicer, cacheDirectory: str) -> list[str]:
    """Read a .mrb into ``headless.scene`` (emptied first) as desktop Slicer does, without ``slicer.app``.

    The scene needs its module logics (they register node classes such as markups storage nodes)
    and remote-IO plumbing: a ``vtkMRMLRemoteIOLogic`` with a cache folder and a
    ``vtkDataIOManagerLogic`` attached.  Returns Slicer's messages; raises ``RuntimeError`` when
    Slicer says reading failed.
    """
    import slicer

    scene = headless.scene
    remoteIO = slicer.vtkMRMLRemoteIOLogic()
    remoteIO.SetMRMLScene(scene)
    remoteIO.GetCacheManager().SetRemoteCacheDirectory(cacheDirectory)
    dataIO = slicer.vtkDataIOManagerLogic()
    dataIO.SetMRMLApplicationLogic(headless.applicationLogic)
    dataIO.SetMRMLScene(scene)
    dataIO.SetAndObserveDataIOManager(remoteIO.GetDataIOManager())
    remoteIO.AddDataIOToScene()
    messages = slicer.vtkMRMLMessageCollection()
    ok = scene.ReadFromMRB(path, True, messages)
    texts = [messages.GetNthMessageText(index) for index in range(messages.GetNumberOfMessages())]
    if not ok:
        raise RuntimeError(f"Slicer could not read {path}: {' | '.join(texts)}")
    return texts
