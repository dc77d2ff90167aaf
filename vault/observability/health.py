"""Health that means something: a background prober of what serving needs.

Every `interval` seconds each probe runs (a Transit encrypt of a throwaway value through the
key provider; a `SELECT 1` through the store), and the restore guard's state is read. The
server is SERVING only while every probe passed its last run and no rollback is detected;
it turns SERVING again by itself once they pass. Listeners (grpc.health.v1, the readiness
endpoint) hear of every change. A probe costs one Vault call and one query per interval, so
the default (5 s) is cheap; calls never wait for a probe.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from vault.errors import PdvError

log = logging.getLogger("pdv.health")

ROLLBACK = "rollback"
SHUTDOWN = "shutdown"
# A probe that has not answered in this long fails (a database host gone silent can hold a
# connect for minutes); it is not started again until the hung one returns.
PROBE_TIMEOUT = 10.0


@dataclass(frozen=True)
class HealthState:
    """The verdict: serving, and for each failing dependency why not (messages hold no values)."""

    serving: bool
    problems: Mapping[str, str]

    def describe(self) -> str:
        if self.serving:
            return "serving"
        return "; ".join(f"{name}: {why}" for name, why in sorted(self.problems.items()))


class HealthProber:
    """Runs `probes` (name → a callable that raises when the dependency is unusable) every
    `interval` seconds on a daemon thread; `blocked()` names a rollback block (or None)."""

    def __init__(self, probes: Mapping[str, Callable[[], None]], interval: float,
                 blocked: Callable[[], str | None] = lambda: None, timeout: float = PROBE_TIMEOUT) -> None:
        self._probes = dict(probes)
        self._interval = interval
        self._timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self._probes)), thread_name_prefix="pdv-health-probe")
        self._running: dict[str, Future] = {}
        self._blocked = blocked
        self._problems: dict[str, str] = {}
        self._shutting_down = False
        self._state = self._verdict()
        self._listeners: list[Callable[[HealthState], None]] = []
        self._lock = threading.Lock()  # one check at a time: the thread and check_now()
        self._publishing = threading.Lock()  # verdicts reach the listeners in the order they were reached
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> HealthState:
        return self._state

    def subscribe(self, listener: Callable[[HealthState], None]) -> None:
        """Call `listener(state)` now and on every change of serving or of the problems."""
        self._listeners.append(listener)
        listener(self._state)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pdv-health", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop probing, and say NOT_SERVING from now on: the server is shutting down (a load
        balancer reading /ready must stop sending before the port closes, as gRPC health says).
        Never waits for a hung probe."""
        self._stop.set()
        self._shutting_down = True
        self._publish(self._verdict(), quiet=True)
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=1)  # a check in progress may wait on a hung probe; the thread is a daemon
        self._pool.shutdown(wait=False, cancel_futures=True)

    def poke(self) -> None:
        """Check again soon, without waiting for the interval (e.g. a reconcile just cleared the guard)."""
        self._wake.set()

    def check_now(self) -> HealthState:
        """Run every probe once, publish the verdict if it changed, and return it."""
        with self._lock:
            for name, probe in self._probes.items():  # side by side: a slow Vault does not delay the database's
                if name not in self._running:
                    self._running[name] = self._pool.submit(probe)
            wait(self._running.values(), timeout=self._timeout)
            problems: dict[str, str] = {}
            for name, future in list(self._running.items()):
                if not future.done():
                    problems[name] = f"no answer within {self._timeout:g}s"
                    continue  # left running; a new probe starts once it returns
                del self._running[name]
                error = future.exception()
                if isinstance(error, PdvError):
                    problems[name] = str(error)  # domain messages are value-free by construction
                elif error is not None:  # a probe that breaks is a failing dependency
                    problems[name] = f"probe failed ({type(error).__name__})"
            self._problems = problems
        return self._publish(self._verdict())

    def _publish(self, state: HealthState, quiet: bool = False) -> HealthState:
        """Make `state` the verdict; log it and tell the listeners if it changed."""
        with self._publishing:
            changed = state != self._state
            self._state = state
            if changed:
                if quiet:
                    pass  # the shutdown: PdvServer.stop logs it
                elif state.serving:
                    log.warning("health: SERVING again")
                else:
                    log.error("health: NOT_SERVING (%s)", state.describe())
                for listener in self._listeners:
                    listener(state)
        return state

    def _verdict(self) -> HealthState:
        problems = dict(self._problems)
        blocked = self._blocked()
        if blocked is not None:
            problems[ROLLBACK] = "the database is behind the audit checkpoints; run `pdv restore reconcile`"
        if self._shutting_down:
            problems[SHUTDOWN] = "the server is shutting down"
        return HealthState(not problems, problems)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.check_now()
            except Exception as exc:  # noqa: BLE001 - the prober must outlive a failing listener
                log.error("health check failed (%s)", type(exc).__name__)
