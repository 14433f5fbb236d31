"""Independent pieces of work side by side on the machine's cores.

SimpleITK filters and numpy's array loops release Python's global interpreter lock while they
run, so threads run them in parallel. Results come back in the order of the items, so the
output does not depend on which thread finished first. Progress callbacks (which may touch a
Qt widget) must not be called from the work: only from the calling thread.

numpy's matrix products run on a BLAS library with threads of its own (OpenBLAS in the numpy
wheels). Beside this module's threads and ITK's they only get in the way: OpenBLAS threads wait
for work by spinning, taking a core from the filters running beside them.
:func:`blas_on_one_thread` keeps BLAS on the calling thread while the detectors run, when
``threadpoolctl`` (an optional package) is installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # optional: without it BLAS keeps its own threads (same results, slower)
    threadpool_limits = None

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


@contextmanager
def blas_on_one_thread() -> Iterator[None]:
    """Within the block (or a function it decorates), BLAS libraries use one thread; their
    previous limits come back after it. Does nothing when ``threadpoolctl`` is not installed."""
    if threadpool_limits is None:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
