"""The load of `pdv bench ha`: callers spreading tokenize + detokenize over the PDV replicas.

Each caller is pinned to one replica and moves a call to the next replica when it fails
UNAVAILABLE, with the same request id (a tokenize whose answer was lost is then answered
again, with the same tokens, by the replica that gets the retry). A call every replica
refused is an error the caller saw: it is counted by status code with its time. Every
acknowledged tokenize is kept, to be read back at the end.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence, TypeVar

from pdv_client import PdvClient, Record
from pdv_client.errors import PdvError, Unavailable

from vault.catalog import Catalog
from vault.cli.bench_records import PURPOSE, person

_T = TypeVar("_T")
CALL_TIMEOUT = 20.0  # per attempt: above vault_timeout + vault_retry_seconds, so PDV answers first
# Reconnect to a replica that is back within a second (gRPC's default backoff grows to 2 min).
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000), ("grpc.use_local_subchannel_pool", 1),
]


def record(caller: int, n: int) -> dict[str, str]:
    """The bench's record, numbered per caller and call: its email names the write it came from."""
    return person(caller * 10_000_000 + n)


@dataclass
class Failure:
    started: float  # time.monotonic() when the call was first sent
    at: float  # when it gave up
    op: str
    code: str  # the gRPC status name


@dataclass
class LoadLog:
    """What every caller saw, shared between their threads (append-only lists; the GIL keeps them whole)."""

    acknowledged: list[tuple[str, str]] = field(default_factory=list)  # (token, value)
    failures: list[Failure] = field(default_factory=list)
    failovers: list[float] = field(default_factory=list)  # a call that one replica refused, another served
    served: list[tuple[float, float]] = field(default_factory=list)  # (when, seconds) of each call answered
    calls: Counter[str] = field(default_factory=Counter)
    mismatches: int = 0  # a detokenize during the load that answered another value


class Caller(threading.Thread):
    """One caller: tokenize a record, then read back a random acknowledged token, until stopped."""

    def __init__(self, index: int, clients: Sequence[PdvClient], log: LoadLog, stop: threading.Event,
                 catalog: Catalog) -> None:
        super().__init__(name=f"ha-caller-{index}", daemon=True)
        self.index, self.log, self.stop_event, self.catalog = index, log, stop, catalog
        # Pinned: this caller's own replica first, then the others in order.
        self.clients = [clients[(index + k) % len(clients)] for k in range(len(clients))]
        self.rng = random.Random(index)

    def run(self) -> None:
        n = 0
        while not self.stop_event.is_set():
            n += 1
            values = record(self.index, n)
            request_id = f"ha-{self.index}-{n}-{uuid.uuid4().hex[:8]}"
            tokens = self._call("tokenize", lambda c: c.tokenize(
                [Record(values)], purpose=PURPOSE, source="bench-ha", request_id=request_id, timeout=CALL_TIMEOUT))
            if tokens is not None:  # kept as detokenize answers them: in the field's canonical form
                self.log.acknowledged += [(tokens[0].tokens[name], self.catalog.field(name).normalize(value))
                                          for name, value in values.items()]
            if self.log.acknowledged:
                token, value = self.rng.choice(self.log.acknowledged)
                got = self._call("detokenize", lambda c: c.detokenize_one(token, purpose=PURPOSE, timeout=CALL_TIMEOUT))
                if got is not None and got != value:
                    self.log.mismatches += 1

    def _call(self, op: str, call: Callable[[PdvClient], _T]) -> _T | None:
        self.log.calls[op] += 1
        started = time.monotonic()
        for attempt, client in enumerate(self.clients):
            try:
                result = call(client)
            except Unavailable as error:
                if attempt + 1 < len(self.clients):
                    continue
                self._failed(op, error, started)
                return None
            except PdvError as error:
                self._failed(op, error, started)
                return None
            now = time.monotonic()
            self.log.served.append((now, now - started))
            if attempt:
                self.log.failovers.append(now)
            return result
        return None

    def _failed(self, op: str, error: PdvError, started: float) -> None:
        self.log.failures.append(Failure(started, time.monotonic(), op, error.status.name))
        # Every replica refused: a short pause, so a caller does not spin while PDV recovers.
        self.stop_event.wait(0.05)


def read_back(client: PdvClient, acknowledged: Sequence[tuple[str, str]], batch: int = 1000) -> int:
    """How many acknowledged writes do not detokenize to their value now (the writes lost)."""
    lost = 0
    for start in range(0, len(acknowledged), batch):
        chunk = acknowledged[start : start + batch]
        results = client.detokenize([token for token, _ in chunk], purpose=PURPOSE, timeout=120.0)
        lost += sum(1 for result, (_, value) in zip(results, chunk) if result.code or result.value != value)
    return lost


def errors_between(log: LoadLog, start: float, end: float) -> dict[str, object]:
    """The callers' view of one fault: failed calls by status code, the seconds from the first
    failed call's start to the last one's end (0 if none), the calls another replica served, and
    the slowest answered call (a stall that ended in success)."""
    failures = [f for f in log.failures if start <= f.at < end]
    codes = Counter(f.code for f in failures)
    span = (max(f.at for f in failures) - min(f.started for f in failures)) if failures else 0.0
    first = max(0.0, min(f.started for f in failures) - start) if failures else None
    return {
        "errors": dict(sorted(codes.items())), "error_seconds": round(span, 2),
        "first_error_after_s": None if first is None else round(first, 2),
        "failovers": sum(1 for t in log.failovers if start <= t < end),
        "slowest_answer_s": round(max((s for t, s in log.served if start <= t < end), default=0.0), 2),
    }
