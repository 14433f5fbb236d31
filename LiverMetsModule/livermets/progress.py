"""Progress reporting without any UI: a callback receives (fraction 0..1, message)."""

from __future__ import annotations

from typing import Callable, Optional

ProgressCallback = Callable[[float, str], None]


class Cancelled(Exception):
    """Raised inside a long computation when the caller asked to stop."""


def report(callback: Optional[ProgressCallback], fraction: float, message: str) -> None:
    """Call ``callback`` if given; it may raise :class:`Cancelled` to stop the work."""
    if callback is not None:
        callback(min(max(float(fraction), 0.0), 1.0), message)


def scaled(callback: Optional[ProgressCallback], start: float, stop: float) -> Optional[ProgressCallback]:
    """A callback mapping a sub-task's 0..1 onto ``start..stop`` of ``callback``."""
    if callback is None:
        return None
    return lambda fraction, message: callback(start + (stop - start) * fraction, message)
