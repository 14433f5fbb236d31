"""LiverMets: find, measure and plan around liver metastases (3D Slicer scripted module).

A thin Qt front end: every action calls ``LiverMetsLib`` (``LiverMetsLogic``, ``rendering``,
``snapshots``, ``sampleData``), which is tested headless against the slicer-core wheel.
"""

import os
import pathlib
import tempfile
from typing import Annotated

import qt
import slicer
import vtk
from livermets.progress import Cancelled
from livermets.sequences import SEQUENCES
from LiverMetsLib import rendering, sampleData, sequenceHint, snapshots
from LiverMetsLib.logic import LiverMetsLogic
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin


def findResource(relativePath: str) -> str:
    """Path of a resource file: beside the module when installed, in the repository's Resources otherwise."""
    moduleDirectory = os.path.dirname(os.path.abspath(__file__))
    for base in (
        os.path.join(moduleDirectory, "Resources"),
        os.path.join(moduleDirectory, os.pardir, "Resources"),
    ):
        path = os.path.normpath(os.path.join(base, relativePath))
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"LiverMets resource '{relativePath}' not found beside {moduleDirectory}")


#
# LiverMets
#
class LiverMets(ScriptedLoadableModule):
    """Module metadata (translatable)."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("LiverMets")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Liver")]
        self.parent.dependencies = ["Segmentations", "Markups", "Tables"]
        self.parent.contributors = ["LiverMets developers"]
        self.parent.helpText = _(
            "Finds the liver, each metastasis and the portal and hepatic veins on contrast-enhanced MRI "
            "(hepatobiliary, portal-venous, T2, DWI) or portal-venous CT; lets you review and edit lesions, "
            "measures them (volume, RECIST axes, Couinaud segment, distances to vessels), plans resections "
            "and writes a report. Work top to bottom: Input, Detect, Review, Plan, Report. "
            "Research use only: every result must be checked by a physician."
        )
        self.parent.acknowledgementText = _(
            "Liver MRI test data: CHAOS challenge (Kavur AE et al., CHAOS Challenge - combined (CT-MR) "
            "healthy abdominal organ segmentation, Medical Image Analysis 69:101950, 2021, "
            "doi:10.1016/j.media.2020.101950). Sample data: the LiverMets synthetic teaching phantom, "
            "generated on your computer (no patient data)."
        )
        self.parent.icon = qt.QIcon(findResource("Icons/LiverMets.png"))
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    """Offer the LiverMets phantoms in the Sample Data module."""
    sampleData.registerSampleData(thumbnailFileName=findResource("Icons/LiverMets.png"))


#
# LiverMetsParameterNode
#
@parameterNodeWrapper
class LiverMetsParameterNode:
    """What the module shows and runs on; saved with the scene.

    volume1, volume2 - the input images (volume2 optional), of sequences sequence1 and sequence2.
    segmentation - the LiverMets result under review.
    segmentVessels - also segment portal and hepatic veins and the IVC.
    modelFolder - a trained nnU-Net model folder to segment with (empty: the built-in engine).
    liverOpacity, show* - 3D display of the result.
    planSegments - Couinaud segments (comma-separated) to resect virtually.
    reportFolder - where the report, key images and scene bundle go.
    """

    volume1: vtkMRMLScalarVolumeNode
    sequence1: Annotated[str, Choice(list(SEQUENCES))] = "hbp"
    volume2: vtkMRMLScalarVolumeNode
    sequence2: Annotated[str, Choice(list(SEQUENCES))] = "t2"
    segmentation: vtkMRMLSegmentationNode
    segmentVessels: bool = True
    modelFolder: pathlib.Path
    liverOpacity: Annotated[float, WithinRange(0.0, 1.0)] = rendering.DEFAULT_LIVER_OPACITY
    showLiver: bool = True
    showLesions: bool = True
    showVessels: bool = True
    showCouinaud: bool = False
    planSegments: str = ""
    reportFolder: pathlib.Path


#
# LiverMetsWidget
#
class LiverMetsWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Input -> Detect -> Review -> Plan -> Report.

    Handlers read the parameter node and call LiverMetsLib; no computation here.
    """

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._cancelRequested = False
        self._clickNode = None

    def resourcePath(self, filename: str) -> str:
        return findResource(filename)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LiverMets.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LiverMetsLogic(slicer.mrmlScene, terminologiesLogic=slicer.modules.terminologies.logic())

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        for selector, sequenceField, comboBox in (
            (self.ui.volume1Selector, "sequence1", self.ui.sequence1ComboBox),
            (self.ui.volume2Selector, "sequence2", self.ui.sequence2ComboBox),
        ):
            selector.connect(
                "currentNodeChanged(vtkMRMLNode*)",
                lambda node, field=sequenceField, box=comboBox: self.onVolumeSelected(node, field, box),
            )
        self.ui.detectButton.connect("clicked(bool)", self.onDetect)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.acceptButton.connect("clicked(bool)", lambda: self.onReview(self.logic.acceptLesion))
        self.ui.rejectButton.connect("clicked(bool)", lambda: self.onReview(self.logic.rejectLesion))
        self.ui.uncertainButton.connect(
            "clicked(bool)", lambda: self.onReview(self.logic.markLesionUncertain)
        )
        self.ui.restoreButton.connect("clicked(bool)", lambda: self.onReview(self.logic.restoreLesion))
        self.ui.deleteLesionButton.connect("clicked(bool)", lambda: self.onReview(self.logic.deleteLesion))
        self.ui.addLesionButton.connect("toggled(bool)", self.onClickToAddToggled)
        self.ui.undoButton.connect("clicked(bool)", self.onUndo)
        self.ui.redoButton.connect("clicked(bool)", self.onRedo)
        self.ui.anteriorViewButton.connect("clicked(bool)", lambda: self.onCameraPreset("anterior"))
        self.ui.posteriorViewButton.connect("clicked(bool)", lambda: self.onCameraPreset("posterior"))
        self.ui.rightViewButton.connect("clicked(bool)", lambda: self.onCameraPreset("right"))
        self.ui.superiorViewButton.connect("clicked(bool)", lambda: self.onCameraPreset("superior"))
        self.ui.planButton.connect("clicked(bool)", self.onPlan)
        self.ui.createResectionPlaneButton.connect("clicked(bool)", self.onCreateResectionPlane)
        self.ui.showMarginsButton.connect("clicked(bool)", self.onShowMargins)
        self.ui.showRecistLinesButton.connect("toggled(bool)", self.onShowRecistLines)
        self.ui.reportButton.connect("clicked(bool)", self.onReport)
        self.ui.snapshotButton.connect("clicked(bool)", self.onSnapshot)
        self.ui.saveSceneButton.connect("clicked(bool)", self.onSaveScene)
        self.ui.lesionTableView.connect("selectionChanged()", self.onLesionSelected)

        self.ui.detectProgressBar.hide()
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self._stopClickToAdd()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self._stopClickToAdd()
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(
                self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified
            )

    def onSceneStartClose(self, caller, event) -> None:
        self._stopClickToAdd()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    # --- parameter node --------------------------------------------------------------------------
    def initializeParameterNode(self) -> None:
        self.setParameterNode(LiverMetsParameterNode(self.logic.getParameterNode()))
        if not self._parameterNode.volume1:
            self._parameterNode.volume1 = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(
                self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified
            )
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        parameters = self._parameterNode
        segmentationNode = parameters.segmentation if parameters else None
        hasStudy = segmentationNode is not None
        for button in (
            self.ui.acceptButton,
            self.ui.rejectButton,
            self.ui.uncertainButton,
            self.ui.restoreButton,
            self.ui.deleteLesionButton,
            self.ui.addLesionButton,
            self.ui.snapshotButton,
            self.ui.anteriorViewButton,
            self.ui.posteriorViewButton,
            self.ui.rightViewButton,
            self.ui.superiorViewButton,
        ):
            button.setEnabled(hasStudy)
        self.ui.undoButton.setEnabled(self.logic.canUndo())
        self.ui.redoButton.setEnabled(self.logic.canRedo())
        self.ui.lesionTableView.setMRMLTableNode(
            self.logic.lesionTableNode(segmentationNode) if hasStudy else None
        )
        if hasStudy and segmentationNode.GetDisplayNode() is not None:
            rendering.setLiverOpacity(segmentationNode, parameters.liverOpacity)
            rendering.setStructureVisibility(segmentationNode, "liver", parameters.showLiver)
            rendering.setStructureVisibility(segmentationNode, "lesion", parameters.showLesions)
            for key in rendering.VESSEL_STRUCTURES:
                rendering.setStructureVisibility(segmentationNode, key, parameters.showVessels)
            rendering.setStructureVisibility(segmentationNode, "couinaud", parameters.showCouinaud)

    # --- input -----------------------------------------------------------------------------------
    def onVolumeSelected(self, volumeNode, sequenceField: str, comboBox) -> None:
        """Preselect the sequence that an earlier choice, the DICOM header or the name gives."""
        if volumeNode is None or self._parameterNode is None:
            return
        sequence, reason = sequenceHint.sequenceHint(volumeNode)
        comboBox.toolTip = reason
        if sequence:
            setattr(self._parameterNode, sequenceField, sequence)

    # --- detect ----------------------------------------------------------------------------------
    def onDetect(self) -> None:
        parameters = self._parameterNode
        engine = self.logic.engineName(parameters.modelFolder)
        if not self._installed(self.logic.missingPackage(engine)):
            return
        self._cancelRequested = False
        self._setBusy(True)
        try:
            with slicer.util.tryWithErrorDisplay(_("Detection failed."), waitCursor=True):
                inputs = [
                    (node, sequence)
                    for node, sequence in (
                        (parameters.volume1, parameters.sequence1),
                        (parameters.volume2, parameters.sequence2),
                    )
                    if node is not None
                ]
                volumes, sequences = (
                    [node for node, _sequence in inputs],
                    [sequence for _node, sequence in inputs],
                )
                try:
                    study = self.logic.detectLesions(
                        volumes,
                        sequences,
                        segmentVessels=parameters.segmentVessels,
                        engine=engine,
                        progress=self._onProgress,
                    )
                except Cancelled:
                    self.ui.statusLabel.text = _("Detection cancelled.")
                    return
                rendering.applyStructureDisplay(study.segmentationNode, liverOpacity=parameters.liverOpacity)
                parameters.segmentation = study.segmentationNode
                lines = [_("{count} lesion candidates found: review them below.").format(
                    count=len(self.logic.listLesions(study.segmentationNode))
                )]
                lines += [_("Warning: {text}").format(text=text)
                          for text in self.logic.studyWarnings(study.segmentationNode)]
                self.ui.statusLabel.text = "\n".join(lines)
        finally:
            self._setBusy(False)

    def _installed(self, package: str) -> bool:
        """True when the engine needs no package or the user let Slicer install it."""
        if not package:
            return True
        if not slicer.util.confirmOkCancelDisplay(
            _("The chosen engine needs the Python package {package}, which is not installed. "
              "Install it now? This can take several minutes.").format(package=package)
        ):
            return False
        with slicer.util.tryWithErrorDisplay(_("Installing {package} failed.").format(package=package),
                                             waitCursor=True):
            if not self._torchInstalled():
                return False
            slicer.util.pip_install(package)
            return True
        return False

    @staticmethod
    def _torchInstalled() -> bool:
        """The engines' packages run on PyTorch: with the PyTorch extension present, PyTorch is
        installed through it first, in the build for this computer's GPU (without the extension
        pip brings its default build along with the package). False if the user declined."""
        try:
            import PyTorchUtils
        except ImportError:
            return True
        torchLogic = PyTorchUtils.PyTorchUtilsLogic()
        return torchLogic.torchInstalled() or torchLogic.installTorch(askConfirmation=True) is not None

    def onCancel(self) -> None:
        self._cancelRequested = True

    def _onProgress(self, fraction: float, message: str) -> None:
        self.ui.detectProgressBar.value = round(100 * fraction)
        self.ui.statusLabel.text = message
        slicer.app.processEvents()
        if self._cancelRequested:
            raise Cancelled()

    def _setBusy(self, busy: bool) -> None:
        self.ui.detectButton.setEnabled(not busy)
        self.ui.cancelButton.setEnabled(busy)
        self.ui.detectProgressBar.setVisible(busy)
        self.ui.detectProgressBar.value = 0

    # --- review ----------------------------------------------------------------------------------
    def _selectedLesionId(self) -> str:
        """Segment ID in the selected row of the lesion table (read as displayed, so sorting is fine)."""
        view = self.ui.lesionTableView
        tableNode = view.mrmlTableNode()
        indexes = view.selectionModel().selectedIndexes() if tableNode and view.selectionModel() else []
        if not indexes:
            raise ValueError(_("Select a lesion in the table first."))
        columns = list(self.logic.tableRows(tableNode)[0])
        model = view.model()
        return model.data(model.index(indexes[0].row(), columns.index("Segment ID")))

    def onLesionSelected(self) -> None:
        segmentationNode = self._parameterNode.segmentation
        selectionModel = self.ui.lesionTableView.selectionModel()
        if segmentationNode is None or selectionModel is None or not selectionModel.hasSelection():
            return
        with slicer.util.tryWithErrorDisplay(_("Could not show the lesion.")):
            target = self.logic.jumpTarget(segmentationNode, self._selectedLesionId())
            self.logic.applyJump(target, self._sliceNodes())

    def onReview(self, action) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not change the lesion."), waitCursor=True):
            action(self._parameterNode.segmentation, self._selectedLesionId())
        self._refreshStudy()

    def onUndo(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Undo failed."), waitCursor=True):
            self.ui.statusLabel.text = _("Undone: {name}").format(name=self.logic.undo())
        self._refreshStudy()

    def onRedo(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Redo failed."), waitCursor=True):
            self.ui.statusLabel.text = _("Redone: {name}").format(name=self.logic.redo())
        self._refreshStudy()

    def _refreshStudy(self) -> None:
        segmentationNode = self._parameterNode.segmentation
        if segmentationNode is not None:
            rendering.applyStructureDisplay(segmentationNode, liverOpacity=self._parameterNode.liverOpacity)
        self._onParameterNodeModified()

    def onClickToAddToggled(self, checked: bool) -> None:
        if not checked:
            self._stopClickToAdd()
            return
        with slicer.util.tryWithErrorDisplay(_("Could not start click-to-add.")):
            self._clickNode = slicer.mrmlScene.AddNewNodeByClass(
                "vtkMRMLMarkupsFiducialNode", "LiverMets click"
            )
            self._clickNode.SetSaveWithScene(False)
            self.addObserver(
                self._clickNode, slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent, self._onLesionClicked
            )
            slicer.modules.markups.logic().SetActiveList(self._clickNode)
            slicer.modules.markups.logic().StartPlaceMode(True)

    def _onLesionClicked(self, caller, event) -> None:
        parameters = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Could not segment a lesion there."), waitCursor=True):
            self.logic.addLesionFromMarkup(
                parameters.segmentation,
                self._clickNode,
                volumeNode=parameters.volume1,
                sequence=parameters.sequence1,
            )
        self._clickNode.RemoveAllControlPoints()
        self._refreshStudy()

    def _stopClickToAdd(self) -> None:
        if self._clickNode is None:
            return
        interactionNode = slicer.app.applicationLogic().GetInteractionNode()
        interactionNode.SwitchToViewTransformMode()
        self.removeObserver(
            self._clickNode, slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent, self._onLesionClicked
        )
        if self._clickNode.GetScene() is not None:
            slicer.mrmlScene.RemoveNode(self._clickNode)
        self._clickNode = None
        self.ui.addLesionButton.setChecked(False)

    def onCameraPreset(self, preset: str) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not turn the 3D view.")):
            viewNode = slicer.app.layoutManager().threeDWidget(0).mrmlViewNode()
            boundsRas = rendering.structureBoundsRas(self._parameterNode.segmentation, "liver")
            rendering.setCameraPreset(rendering.cameraNodeForView(viewNode), preset, boundsRas)

    @staticmethod
    def _sliceNodes() -> list:
        layoutManager = slicer.app.layoutManager()
        return [layoutManager.sliceWidget(name).mrmlSliceNode() for name in layoutManager.sliceViewNames()]

    # --- plan and report -------------------------------------------------------------------------
    def onPlan(self) -> None:
        parameters = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Resection planning failed."), waitCursor=True):
            result = self.logic.planResection(
                parameters.segmentation, couinaudSegments=parameters.planSegments
            )
            self.ui.planResultLabel.text = result["summary"]

    def onCreateResectionPlane(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not create the resection plane."), waitCursor=True):
            self.logic.createResectionPlane(self._parameterNode.segmentation, onUpdate=self._showPlanePlan)

    def _showPlanePlan(self, plan: dict) -> None:
        self.ui.planePlanLabel.text = plan["summary"]

    def onShowMargins(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not colour the liver by margin."), waitCursor=True):
            self.logic.showMarginsOnLiver(self._parameterNode.segmentation)

    def onShowRecistLines(self, visible: bool) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not show the RECIST lines.")):
            self.logic.showRecistLines(self._parameterNode.segmentation, visible)

    def _reportFolder(self) -> pathlib.Path:
        folder = self._parameterNode.reportFolder
        if not str(folder) or str(folder) == ".":
            raise ValueError(_("Choose a report folder first."))
        return pathlib.Path(folder)

    def onReport(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Writing the report failed."), waitCursor=True):
            path = self.logic.writeReport(
                self._parameterNode.segmentation, str(self._reportFolder()), progress=None
            )
            self.ui.statusLabel.text = _("Report written: {path}").format(path=path)

    def onSnapshot(self) -> None:
        parameters = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Saving key images failed."), waitCursor=True):
            segmentId = self._selectedLesionId()
            target = self.logic.jumpTarget(parameters.segmentation, segmentId)
            volumeNode = parameters.volume1 or self.logic.sourceVolumeNode(parameters.segmentation)
            path = snapshots.snapshotPanels(
                volumeNode,
                parameters.segmentation,
                target.center_ras_mm,
                self._reportFolder() / f"{segmentId}.png",
                fieldOfViewMm=target.fieldOfView_mm,
            )
            self.ui.statusLabel.text = _("Key images written: {path}").format(path=path)

    def onSaveScene(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Saving the scene failed."), waitCursor=True):
            path = self._reportFolder() / "LiverMets.mrb"
            self.logic.writeSceneBundle(str(path))
            self.ui.statusLabel.text = _("Scene saved: {path}").format(path=path)


#
# LiverMetsTest
#
class LiverMetsTest(ScriptedLoadableModuleTest):
    """Self-test: the whole workflow on the generated MRI phantom in desktop Slicer."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_workflow_on_phantom()

    def test_workflow_on_phantom(self):
        import json

        self.delayDisplay("Generating and loading the LiverMets MRI phantom")
        cacheDirectory = tempfile.mkdtemp(prefix="LiverMetsTest-")
        case = sampleData.PHANTOM_CASES[0]
        volumeNodes = sampleData.loadPhantomCase(case, cacheDirectory)
        self.assertEqual(
            [node.GetAttribute("LiverMets.Sequence") for node in volumeNodes], list(case.sequences)
        )
        paths = sampleData.phantomCaseFiles(
            cacheDirectory, seed=case.seed, variant=case.variant, sequences=case.sequences
        )
        with open(paths["legend"], encoding="utf-8") as stream:
            truthLesions = [
                lesion for lesion in json.load(stream)["lesions"] if lesion["kind"] == "metastasis"
            ]

        slicer.util.selectModule("LiverMets")
        widget = slicer.modules.LiverMetsWidget
        logic = widget.logic
        parameters = widget._parameterNode
        parameters.volume1, parameters.sequence1 = volumeNodes[0], case.sequences[0]
        parameters.volume2, parameters.sequence2 = volumeNodes[1], case.sequences[1]

        self.delayDisplay("Detect")
        self.assertTrue(widget.ui.detectButton.enabled, "this LiverMetsLogic has no detectLesions")
        widget.ui.detectButton.click()
        segmentationNode = parameters.segmentation
        self.assertIsNotNone(segmentationNode)
        lesions = logic.listLesions(segmentationNode)
        self.assertGreaterEqual(len(lesions), 1)

        self.delayDisplay("Review: accept, reject, undo")
        tableNode = logic.lesionTableNode(segmentationNode)
        self.assertEqual(len(logic.tableRows(tableNode)), len(lesions))
        logic.acceptLesion(segmentationNode, lesions[0].segmentId)
        logic.rejectLesion(segmentationNode, lesions[-1].segmentId)
        self.assertEqual(logic.listLesions(segmentationNode)[-1].status, "rejected")
        logic.undo()
        self.assertNotEqual(logic.listLesions(segmentationNode)[-1].status, "rejected")

        self.delayDisplay("Click to add a lesion at a true lesion centre")
        countBefore = len(logic.listLesions(segmentationNode))
        logic.addLesionFromPoint(
            segmentationNode,
            truthLesions[0]["center_ras_mm"],
            volumeNode=volumeNodes[0],
            sequence=case.sequences[0],
        )
        self.assertEqual(len(logic.listLesions(segmentationNode)), countBefore + 1)

        self.delayDisplay("3D display and key images")
        rendering.applyStructureDisplay(segmentationNode)
        widget.onCameraPreset("right")
        parameters.showLesions = False
        self.assertFalse(rendering.structureVisibility3D(segmentationNode)["lesion"])
        parameters.showLesions = True
        parameters.reportFolder = pathlib.Path(cacheDirectory)
        panels = snapshots.snapshotPanels(
            volumeNodes[0],
            segmentationNode,
            truthLesions[0]["center_ras_mm"],
            os.path.join(cacheDirectory, "panels.png"),
            panelSizePixels=128,
        )
        self.assertEqual(snapshots.readPngPixels(panels).shape, (128, 384, 3))
        widget.onSaveScene()
        self.assertTrue(os.path.exists(os.path.join(cacheDirectory, "LiverMets.mrb")))
        self.delayDisplay("LiverMets workflow test passed")
