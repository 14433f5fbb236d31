"""Independent pieces of work side by side on the machine's cores.

SimpleITK filters and numpy's array loops release Python's global interpreter lock while they
run, so threads run them in parallel. Results come back in the order of the items, so the
output does not depend on which thread finished first. Progress callbacks (which may touch a
Qt widget) must not be called from the work: only from the calling thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

WORKERS = max(1, os.cpu_count() or 1)


def thread_map(function: Callable[[Item], Result], items: Iterable[Item]) -> list[Result]:
    """``[function(item) for item in items]``, computed by up to :data:`WORKERS` threads."""
    items = list(items)
    if len(items) < 2 or WORKERS == 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items))) as pool:
        return list(pool.map(function, items))
