"""The cycle collector is paused while specs are built, and left as it was found."""

from __future__ import annotations

import gc

import pytest

from runner.spec.gcpause import collector_paused


def test_the_collector_is_paused_inside_and_resumed_after() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # nested: the outer one resumes
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0  # survivors moved to the oldest generation, not frozen


def test_it_resumes_after_an_error_and_respects_a_collector_left_off() -> None:
    with pytest.raises(ValueError, match="boom"), collector_paused():
        raise ValueError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # someone else turned it off: left off
    finally:
        gc.enable()


def test_garbage_cycles_made_inside_are_still_collected_later() -> None:
    import weakref

    class Node:
        pass

    with collector_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        watch = weakref.ref(a)
        del a, b
    gc.collect()
    assert watch() is None
