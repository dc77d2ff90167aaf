"""The health prober's verdicts: a failing, breaking or hung probe, a rollback block, recovery,
and listeners told of changes only. (End to end on real OpenBao and databases: tests/e2e/test_health.py.)"""

from __future__ import annotations

import threading

from vault.errors import KeyUnavailable
from vault.observability.health import HealthProber, HealthState


def test_each_kind_of_failure_is_named_and_recovery_is_seen() -> None:
    vault_down = threading.Event()
    hanging, release = threading.Event(), threading.Event()

    def vault() -> None:
        if vault_down.is_set():
            raise KeyUnavailable("vault sealed or unreachable")

    def database() -> None:
        if hanging.is_set():
            release.wait(60)

    blocked: list[str | None] = [None]
    prober = HealthProber({"vault": vault, "database": database}, interval=3600, blocked=lambda: blocked[0], timeout=1.0)
    heard: list[HealthState] = []
    prober.subscribe(heard.append)
    try:
        assert prober.check_now() == HealthState(True, {})
        vault_down.set()
        assert prober.check_now() == HealthState(False, {"vault": "vault sealed or unreachable"})
        prober.check_now()  # no change: listeners are not told again
        vault_down.clear()
        hanging.set()
        assert prober.check_now() == HealthState(False, {"database": "no answer within 1s"})
        hanging.clear()
        release.set()  # the hung probe answers; the next check takes its answer instead of starting another
        assert prober.check_now() == HealthState(True, {})
        blocked[0] = "behind the checkpoints"
        state = prober.check_now()
        assert not state.serving and set(state.problems) == {"rollback"}
        blocked[0] = None
        assert prober.check_now().serving
    finally:
        prober.stop()
    assert [h.serving for h in heard] == [True, False, False, True, False, True, False]  # the last: stopped


def test_a_probe_that_breaks_fails_with_its_class_only() -> None:
    def broken() -> None:
        raise RuntimeError("a message that could hold anything")

    prober = HealthProber({"database": broken}, interval=3600)
    try:
        assert prober.check_now() == HealthState(False, {"database": "probe failed (RuntimeError)"})
    finally:
        prober.stop()


def test_a_stopped_prober_says_not_serving() -> None:
    prober = HealthProber({"database": lambda: None}, interval=3600)
    heard: list[HealthState] = []
    prober.subscribe(heard.append)
    prober.start()
    prober.stop()  # PdvServer.stop: from the signal on, /ready answers 503 like gRPC health
    assert heard[-1] == prober.state == HealthState(False, {"shutdown": "the server is shutting down"})
