"""collector_paused: the collector is off while any pause is in progress, and afterwards as it
was before the first began (nested, overlapping, raising, in threads)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodeselect.table import collector_paused


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:  # pragma: no cover - the suite runs with the collector on
        gc.disable()


def test_a_pause_turns_the_collector_off_and_back_on() -> None:
    """A pause turns an enabled collector off while entered and on again after."""
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_already_off_stays_off() -> None:
    """A pause leaves a collector the program turned off, off."""
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_a_nested_pause_leaves_the_collector_off_until_the_outer_one_ends() -> None:
    """An inner pause ending does not turn the collector on while an outer one goes on."""
    gc.enable()
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_exception_inside_still_restores_the_collector() -> None:
    """An exception raised inside a pause still turns the collector on again."""
    gc.enable()
    with pytest.raises(ValueError, match="inside"), collector_paused():
        raise ValueError("inside")
    assert gc.isenabled()


def test_overlapping_pauses_in_threads_share_one_pause() -> None:
    """A pause of another thread ending first leaves the collector off for this one."""
    gc.enable()
    entered, leave, left = threading.Event(), threading.Event(), threading.Event()

    def other() -> None:
        with collector_paused():
            entered.set()
            leave.wait()
        left.set()

    t = threading.Thread(target=other)
    t.start()
    entered.wait()
    with collector_paused():
        leave.set()  # the other thread's pause ends while this one goes on
        left.wait()
        assert not gc.isenabled()
    t.join()
    assert gc.isenabled()


@st.composite
def _overlapping(draw: st.DrawFn) -> list[int]:
    """Enters and exits of several holders, each entering before it exits, interleaved in any
    order (as threads would): ``+i`` enters holder ``i``, ``-i`` exits it (``i >= 1``)."""
    n = draw(st.integers(1, 6))
    events: list[int] = []
    open_: list[int] = []
    waiting = list(range(1, n + 1))
    while waiting or open_:
        if waiting and (not open_ or draw(st.booleans())):
            i = waiting.pop(0)
            events.append(i)
            open_.append(i)
        else:
            i = open_.pop(draw(st.integers(0, len(open_) - 1)))
            events.append(-i)
    return events


@given(events=_overlapping(), enabled=st.booleans())
def test_the_collector_is_off_exactly_while_a_pause_is_in_progress(
    events: list[int], enabled: bool
) -> None:
    """Any interleaving of pauses (as threads make them) keeps the collector off exactly while
    one is in progress, and leaves it as it was."""
    gc.enable() if enabled else gc.disable()
    pause = collector_paused()
    inside = 0
    for e in events:
        if e > 0:
            pause.__enter__()
            inside += 1
        else:
            pause.__exit__(None, None, None)
            inside -= 1
        assert gc.isenabled() == (enabled and inside == 0)
    assert gc.isenabled() == enabled
