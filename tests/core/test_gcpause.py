"""List building raises the cycle collector's first threshold, and only while it runs."""

from __future__ import annotations

import gc
import threading

from apps.core.gcpause import fewer_collections


def test_it_raises_the_threshold_inside_and_restores_it_after(settings) -> None:
    settings.QUILTWEB_LIST_GC_THRESHOLD = 20000
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] == 20000
    assert gc.get_threshold() == before


def test_overlapping_blocks_restore_once_the_last_one_ends(settings) -> None:
    settings.QUILTWEB_LIST_GC_THRESHOLD = 20000
    before = gc.get_threshold()
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with fewer_collections():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(5)
    with fewer_collections():
        pass
    assert gc.get_threshold()[0] == 20000  # the other block still runs
    release.set()
    thread.join(5)
    assert gc.get_threshold() == before


def test_zero_leaves_the_threshold_alone(settings) -> None:
    settings.QUILTWEB_LIST_GC_THRESHOLD = 0
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold() == before
