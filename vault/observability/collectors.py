"""Gauges and counters read at scrape time from the parts that keep them.

The DEK cache, the spare-key pool, the item budget, the audit chain and the jobs already
hold these numbers (plain integers updated under their own locks); reading them once per
scrape costs the hot path nothing. Each source is optional: a CLI process has no jobs, a
server with disposal_interval_seconds = 0 has no disposal job.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vault.observability.health import HealthProber


class JobState(Protocol):
    """What a periodic job keeps about its runs (vault.services.periodic.PeriodicJob)."""

    runs: int
    failures: int
    last_finished: float | None  # wall-clock time of the last run's end
    last_seconds: float | None
    last_ok: bool | None


class StateCollector(Collector):
    """Reads the sources handed to it; each `watch_*` may be called once the source exists."""

    def __init__(self) -> None:
        self._keyring: Any = None
        self._budget: Any = None
        self._audit: Any = None
        self._health: HealthProber | None = None
        self._disposal: Any = None
        self._rewrap: Any = None

    def watch_keyring(self, keyring: Any) -> None:
        self._keyring = keyring

    def watch_budget(self, budget: Any) -> None:
        self._budget = budget

    def watch_audit(self, chain: Any) -> None:
        self._audit = chain

    def watch_health(self, prober: HealthProber) -> None:
        self._health = prober

    def watch_disposal(self, job: Any) -> None:
        self._disposal = job

    def watch_rewrap(self, job: Any) -> None:
        self._rewrap = job

    def collect(self) -> Iterator[Metric]:
        yield from self._health_metrics()
        yield from self._key_metrics()
        yield from self._budget_metrics()
        yield from self._audit_metrics()
        yield from self._job_metrics("disposal", self._disposal)
        yield from self._disposal_metrics()
        yield from self._job_metrics("rewrap", self._rewrap)
        yield from self._rewrap_metrics()

    def _health_metrics(self) -> Iterator[Metric]:
        if self._health is None:
            return
        state = self._health.state
        yield _gauge("pdv_serving", "1 while health says SERVING, 0 while NOT_SERVING", 1 if state.serving else 0)
        failing = GaugeMetricFamily("pdv_dependency_failing", "1 while the dependency's last probe failed",
                                    labels=["dependency"])
        for name in ("vault", "database", "rollback"):
            failing.add_metric([name], 1 if name in state.problems else 0)
        yield failing

    def _key_metrics(self) -> Iterator[Metric]:
        ring = self._keyring
        if ring is None:
            return
        lookups = CounterMetricFamily("pdv_dek_cache_lookups", "DEK cache lookups, by result", labels=["result"])
        lookups.add_metric(["hit"], ring.hits)
        lookups.add_metric(["miss"], ring.misses)
        yield lookups
        yield _gauge("pdv_dek_cache_keys", "Unwrapped DEKs in the cache now", ring.cached_keys)
        yield _gauge("pdv_spare_keys", "Fresh wrapped DEKs ready for new subjects now", ring.spare_keys)
        yield _gauge("pdv_spare_keys_target", "The spare-key pool's size when full (dek_spare_keys)", ring.spare_target)

    def _budget_metrics(self) -> Iterator[Metric]:
        budget = self._budget
        if budget is None:
            return
        yield _gauge("pdv_items_in_flight", "Items of the calls being worked on now (max_items_in_flight bounds it)",
                     budget.in_flight)
        yield _gauge("pdv_items_capacity", "max_items_in_flight", budget.capacity)
        yield _gauge("pdv_calls_waiting_for_items", "Calls waiting for their share of the item budget", budget.waiting)

    def _audit_metrics(self) -> Iterator[Metric]:
        chain = self._audit
        if chain is None:
            return
        yield _gauge("pdv_audit_unchecked_entries",
                     "Access-log entries of this process's chain committed since its last signed checkpoint",
                     chain.unchecked_entries)
        yield _gauge("pdv_audit_checkpoint_age_seconds", "Seconds since this process's last signed checkpoint",
                     max(0.0, time.monotonic() - chain.last_checkpoint_monotonic))
        yield _counter("pdv_audit_checkpoint_failures", "Checkpoints that failed (Vault, the file or the database)",
                       chain.checkpoint_failures)

    def _job_metrics(self, name: str, job: JobState | None) -> Iterator[Metric]:
        if job is None:
            return
        yield _counter(f"pdv_{name}_runs", f"{name.title()} job rounds finished (ok or failed)", job.runs)
        yield _counter(f"pdv_{name}_failures", f"{name.title()} job rounds that failed", job.failures)
        if job.last_finished is not None:
            yield _gauge(f"pdv_{name}_last_run_timestamp_seconds", f"When the last {name} round ended (Unix time)",
                         job.last_finished)
            yield _gauge(f"pdv_{name}_last_run_duration_seconds", f"How long the last {name} round took",
                         job.last_seconds or 0.0)
            yield _gauge(f"pdv_{name}_last_run_ok", f"1 if the last {name} round succeeded", 1 if job.last_ok else 0)

    def _disposal_metrics(self) -> Iterator[Metric]:
        job = self._disposal
        if job is None:
            return
        yield _gauge("pdv_disposal_backlog_values", "Expired values still stored: counted when the last round began, "
                     "less those it disposed of (held values stay)", job.backlog)
        report = job.last_report
        if report is not None:
            yield _gauge("pdv_disposal_last_disposed_values", "Values the last disposal round shredded or de-identified",
                         sum(report.values_disposed.values()))
            yield _gauge("pdv_disposal_last_held_values", "Expired values the last round kept for a legal hold",
                         report.values_held)

    def _rewrap_metrics(self) -> Iterator[Metric]:
        job = self._rewrap
        if job is None:
            return
        yield _gauge("pdv_rewrap_keys_remaining", "Stored keys below the KEK's latest version (live during a round)",
                     job.remaining)
        yield _counter("pdv_rewrap_keys_rewrapped", "Stored keys rewrapped to the KEK's latest version", job.rewrapped)
        if job.latest_version is not None:
            yield _gauge("pdv_kek_latest_version", "The KEK version the last rewrap round brought keys to",
                         job.latest_version)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)
