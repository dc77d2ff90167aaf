"""vault.services.admin.progress: a job on its own thread, its progress read as it goes."""

from __future__ import annotations

import threading

import pytest

from vault.services.admin.progress import Finished, Tick, streamed


def test_ticks_move_forward_and_end_with_the_result() -> None:
    step = threading.Event()
    seen = threading.Event()

    def job(total, done):  # type: ignore[no-untyped-def]
        total(3)
        for _ in range(3):
            done(1)
            step.wait(30)  # the reader lets each step through once it has seen the last
            step.clear()
        return "report"

    events = []
    for event in streamed(job, interval=0.01):
        events.append(event)
        if isinstance(event, Tick):
            seen.set()
            step.set()
    assert isinstance(events[-1], Finished) and events[-1].result == "report"
    ticks = [e for e in events if isinstance(e, Tick)]
    assert len(ticks) >= 2 and ticks[-1] == Tick(3, 3)  # progress came while the job ran, not only at its end
    assert [t.done for t in ticks] == sorted(t.done for t in ticks)
    assert seen.is_set()


def test_the_jobs_exception_reaches_the_reader_after_its_progress() -> None:
    def job(total, done):  # type: ignore[no-untyped-def]
        total(2)
        done(1)
        raise RuntimeError("vault went away")

    events = []
    with pytest.raises(RuntimeError, match="vault went away"):
        for event in streamed(job, interval=0.01):
            events.append(event)
    assert events == [Tick(2, 1)]
