"""gc_tune: what a serving process has loaded is frozen out of the cyclic collector's walks."""

import gc

import pytest

from cskpi.runtime import gc_tune


@pytest.fixture
def gc_restored():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_gc_tune_freezes_what_is_loaded_and_sets_the_young_threshold(gc_restored, settings):
    settings.CSKPI_GC_THRESHOLD = 12_345
    loaded = [object() for _ in range(10)]  # something alive now, gc-tracked through the list
    gc_tune()
    assert gc.get_freeze_count() > len(loaded)
    assert gc.get_threshold()[0] == 12_345


def test_a_zero_threshold_keeps_pythons_own(gc_restored, settings):
    settings.CSKPI_GC_THRESHOLD = 0
    before = gc.get_threshold()
    gc_tune()
    assert gc.get_threshold() == before
