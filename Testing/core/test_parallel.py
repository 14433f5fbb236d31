"""livermets.segmentation.parallel: results in the items' order, errors raised to the caller."""

from __future__ import annotations

import threading
import time

import pytest
from livermets.segmentation import parallel


def test_results_come_back_in_the_order_of_the_items(monkeypatch):
    monkeypatch.setattr(parallel, "WORKERS", 2)
    finished = []

    def slow_first(seconds: float) -> float:
        time.sleep(seconds)
        finished.append(seconds)
        return seconds * 10

    # the first item finishes last on two threads: the results still follow the items
    assert parallel.thread_map(slow_first, [0.3, 0.0, 0.1]) == [3.0, 0.0, 1.0]
    assert finished[0] != 0.3


def test_work_runs_on_other_threads_only_when_there_is_more_than_one_item(monkeypatch):
    monkeypatch.setattr(parallel, "WORKERS", 2)
    caller = threading.get_ident()
    assert parallel.thread_map(lambda _: threading.get_ident(), [0]) == [caller]
    assert caller not in parallel.thread_map(lambda _: threading.get_ident(), [0, 1])


def test_an_error_in_one_item_reaches_the_caller(monkeypatch):
    monkeypatch.setattr(parallel, "WORKERS", 2)

    def fails_on_two(item: int) -> int:
        if item == 2:
            raise ValueError("item 2 is bad")
        return item

    with pytest.raises(ValueError, match="item 2 is bad"):
        parallel.thread_map(fails_on_two, [1, 2, 3])


def test_blas_runs_on_one_thread_inside_and_as_before_after(blas_threads):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        with parallel.blas_on_one_thread():
            assert blas_threads() == {1}
        assert blas_threads() == before
