"""Run a long job (rewrap, disposal) on a thread of its own while the caller reads its progress.

The job reports through two callbacks, `on_total(n)` (n more to do) and `on_progress(n)`
(n more done), from whatever thread it runs them on. `streamed` yields the (total, done)
pair whenever it changed, at most every `interval` seconds so a fast job does not send a
message per row, then the job's result (or raises its exception). If the caller stops
reading (a cancelled call), the job still runs to its end: both jobs are resumable and
each of their transactions is whole, but stopping one halfway would only leave work for
the next run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R")
Job = Callable[[Callable[[int], None], Callable[[int], None]], R]


@dataclass(frozen=True)
class Tick:
    total: int
    done: int


@dataclass(frozen=True)
class Finished(Generic[R]):
    result: R


class _Counters:
    def __init__(self) -> None:
        self.total = self.done = 0
        self.lock = threading.Lock()
        self.finished = threading.Event()

    def add_total(self, n: int) -> None:
        with self.lock:
            self.total += n

    def advance(self, n: int) -> None:
        with self.lock:
            self.done += n

    def read(self) -> Tick:
        with self.lock:
            return Tick(self.total, self.done)


def streamed(job: Job[R], interval: float = 0.2, name: str = "pdv-admin-job") -> Iterator[Tick | Finished[R]]:
    """Ticks while `job` runs, then Finished(result). Raises what the job raised."""
    counters = _Counters()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = job(counters.add_total, counters.advance)
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
            outcome["error"] = exc
        finally:
            counters.finished.set()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    last = Tick(0, 0)
    while True:
        ended = counters.finished.wait(interval)
        tick = counters.read()
        if tick != last:
            last = tick
            yield tick
        if ended:
            break
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    yield Finished(outcome["result"])  # type: ignore[arg-type]
