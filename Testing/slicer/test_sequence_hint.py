"""The sequence preselected for a volume node: earlier choice, DICOM header, name (real MRML)."""

from __future__ import annotations

import numpy as np
import pytest
from livermets.geometry import Geometry, Volume

GEOMETRY = Geometry((6, 8, 10), (1.5, 1.5, 4.0), (0.0, 0.0, 0.0))


@pytest.fixture
def dicomSeries(tmp_path):
    """A real MR series on disk whose description names nothing, with T2 echo and repetition
    times; returns (first SOP instance UID, reader of a file's tags by instance UID)."""
    pydicom = pytest.importorskip("pydicom")
    from livermets.dicom_write import write_series

    files = write_series(Volume(np.ones(GEOMETRY.shape, np.int16), GEOMETRY), tmp_path, series_number=3,
                         series_description="Ax resp trig", tags={"EchoTime": "92", "RepetitionTime": "2800"})
    byUid = {str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID): path for path in files}

    def readTags(instanceUid: str) -> dict[str, str]:
        dataset = pydicom.dcmread(byUid[instanceUid], stop_before_pixels=True)
        return {f"{element.tag.group:04x}|{element.tag.element:04x}": str(element.value) for element in dataset}

    return sorted(byUid)[0], readTags


def test_name_of_a_volume_loaded_from_a_file(scene):
    from LiverMetsLib.sequenceHint import sequenceHint
    from LiverMetsLib.volumes import addVolumeNode

    named = addVolumeNode(scene, np.zeros(GEOMETRY.shape, np.float32), GEOMETRY, "case7_haste_tra")
    sequence, reason = sequenceHint(named)
    assert sequence == "t2" and "volume name" in reason and "haste" in reason
    unnamed = addVolumeNode(scene, np.zeros(GEOMETRY.shape, np.float32), GEOMETRY, "Volume")
    assert sequenceHint(unnamed)[0] is None


def test_dicom_header_of_the_loaded_series_comes_before_the_name(scene, dicomSeries):
    from LiverMetsLib.sequenceHint import INSTANCE_UIDS_ATTRIBUTE, sequenceHint
    from LiverMetsLib.volumes import addVolumeNode

    instanceUid, readTags = dicomSeries
    node = addVolumeNode(scene, np.zeros(GEOMETRY.shape, np.float32), GEOMETRY, "3: Ax resp trig portal")
    assert sequenceHint(node, readTags)[0] == "portal_venous"  # no DICOM attribute: the name
    node.SetAttribute(INSTANCE_UIDS_ATTRIBUTE, f"{instanceUid} 2.25.99")
    sequence, reason = sequenceHint(node, readTags)
    assert sequence == "t2" and "echo time 92 ms" in reason
    # a header that settles nothing leaves the name to decide
    assert sequenceHint(node, lambda uid: {"0008|103e": "Ax resp trig"})[0] == "portal_venous"


def test_a_sequence_chosen_before_is_kept(scene, dicomSeries):
    from LiverMetsLib.sequenceHint import INSTANCE_UIDS_ATTRIBUTE, rememberSequence, sequenceHint
    from LiverMetsLib.volumes import addVolumeNode

    instanceUid, readTags = dicomSeries
    node = addVolumeNode(scene, np.zeros(GEOMETRY.shape, np.float32), GEOMETRY, "t2 haste")
    node.SetAttribute(INSTANCE_UIDS_ATTRIBUTE, instanceUid)
    rememberSequence(node, "dwi")
    sequence, reason = sequenceHint(node, readTags)
    assert sequence == "dwi" and "chosen before" in reason
