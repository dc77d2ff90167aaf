"""The process's Prometheus instruments, on a registry of its own.

A registry per App, not prometheus_client's global one: tests run several servers in one
process, and each must count only its own calls. Labels are method names, gRPC status
names, Vault operation names and error class names: small fixed sets, never a value, a
token, a subject id or a principal's request id.

The hot path pays a counter increment and a histogram observation per call (children are
looked up once per label set and kept), never anything per field.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# Seconds: a cached detokenize answers in well under a millisecond, a cold 10,000-item batch in seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ITEM_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000)
UNIT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """Counters and histograms recorded as things happen; scrape-time gauges are in collectors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._rpcs = Counter("pdv_rpc_calls", "Calls handled, by method and gRPC status", ["method", "code"], registry=r)
        self._rpc_seconds = Histogram("pdv_rpc_duration_seconds", "Call latency, by method", ["method"],
                                      buckets=LATENCY_BUCKETS, registry=r)
        self._items = Histogram("pdv_rpc_items", "Items (record fields, tokens, queries, subjects) per call, by method",
                                ["method"], buckets=ITEM_BUCKETS, registry=r)
        self._vault_seconds = Histogram("pdv_vault_request_duration_seconds", "Vault (Transit) call latency, by operation",
                                        ["operation"], buckets=LATENCY_BUCKETS, registry=r)
        self._vault_errors = Counter("pdv_vault_request_errors", "Vault (Transit) calls that failed, by operation and error",
                                     ["operation", "error"], registry=r)
        self._batch_units = Histogram("pdv_group_commit_batch_units",
                                      "Units of work committed together in one group-commit transaction",
                                      buckets=UNIT_BUCKETS, registry=r)
        # label set -> child: labels() takes a lock and builds a tuple on every call.
        self._rpc_children: dict[tuple[str, str], tuple[object, object]] = {}
        self._item_children: dict[str, object] = {}
        self._vault_children: dict[str, object] = {}

    def rpc(self, method: str, code: str, seconds: float) -> None:
        """One call of `method` ended with status `code` after `seconds`."""
        children = self._rpc_children.get((method, code))
        if children is None:
            children = (self._rpcs.labels(method, code), self._rpc_seconds.labels(method))
            self._rpc_children[(method, code)] = children
        children[0].inc()  # type: ignore[attr-defined]
        children[1].observe(seconds)  # type: ignore[attr-defined]

    def items(self, method: str, count: int) -> None:
        """A call of `method` carried `count` items."""
        child = self._item_children.get(method)
        if child is None:
            child = self._item_children[method] = self._items.labels(method)
        child.observe(count)  # type: ignore[attr-defined]

    def vault_call(self, operation: str, seconds: float, error: str | None) -> None:
        """One Vault call of `operation` took `seconds`; `error` is its domain error's class name, if it failed."""
        child = self._vault_children.get(operation)
        if child is None:
            child = self._vault_children[operation] = self._vault_seconds.labels(operation)
        child.observe(seconds)  # type: ignore[attr-defined]
        if error is not None:
            self._vault_errors.labels(operation, error).inc()

    def commit_batch(self, units: int) -> None:
        """A group-commit transaction carried `units` units of work."""
        self._batch_units.observe(units)
