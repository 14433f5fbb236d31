"""Which sequence to preselect for a volume node, and why (no Qt).

In order: the ``LiverMets.Sequence`` attribute (set by the sample data and by a detection, so a
choice made once is kept), the DICOM header of the series the volume was loaded from (Slicer's DICOM
module records its SOP instance UIDs in the ``DICOM.instanceUIDs`` attribute), then the node's name
(a volume loaded from a file is named after it). The words and tags understood are those of
:func:`livermets.dicom_tags.sequence_hint_from_tags`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Optional

from livermets.dicom_tags import TAG_KEYWORDS, sequence_hint_from_tags
from livermets.sequences import SEQUENCES

SEQUENCE_ATTRIBUTE = "LiverMets.Sequence"
INSTANCE_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"

TagReader = Callable[[str], Mapping[str, str]]


def sequenceHint(volumeNode, readTags: Optional[TagReader] = None) -> tuple[Optional[str], str]:
    """(canonical sequence name or None, reason) for ``volumeNode``.

    ``readTags`` maps a SOP instance UID to that file's tags (``"gggg|eeee"`` or keyword -> text);
    by default Slicer's DICOM database is read (desktop Slicer; nothing when it is closed).
    """
    chosen = volumeNode.GetAttribute(SEQUENCE_ATTRIBUTE)
    if chosen in SEQUENCES:
        return chosen, f"chosen before for '{volumeNode.GetName()}'"
    instanceUids = (volumeNode.GetAttribute(INSTANCE_UIDS_ATTRIBUTE) or "").split()
    if instanceUids:
        tags = {key: value for key, value in (readTags or _tagsFromDicomDatabase)(instanceUids[0]).items() if value}
        if tags:
            hint, reason = sequence_hint_from_tags(tags)
            if hint is not None:
                return hint, reason
    return sequence_hint_from_tags({"SeriesDescription": volumeNode.GetName()}, text_source="volume name")


def rememberSequence(volumeNode, sequence: str) -> None:
    """Record the sequence a volume was used as, for :func:`sequenceHint`."""
    volumeNode.SetAttribute(SEQUENCE_ATTRIBUTE, sequence)


def _tagsFromDicomDatabase(instanceUid: str) -> dict[str, str]:
    """The tags LiverMets reads from the file of ``instanceUid`` in Slicer's DICOM database."""
    import slicer

    database = getattr(slicer, "dicomDatabase", None)
    if database is None or not database.isOpen:
        return {}
    path = database.fileForInstance(instanceUid)
    if not path:
        return {}
    return {key: database.fileValue(path, key.replace("|", ",")) for key in TAG_KEYWORDS}
