"""Errors meant for the user: one clear sentence saying what is wrong and what to do."""

from __future__ import annotations


class LiverMetsError(Exception):
    """A problem with the user's input or request (not a bug).

    The command line prints ``str(error)`` on one line and exits with a non-zero code;
    the Slicer module shows it in a message box.
    """


class InputError(LiverMetsError):
    """An input file or folder is missing, unreadable or not a usable 3D image."""


class NoLiverFoundError(LiverMetsError):
    """The image does not appear to contain a liver that can be segmented."""
