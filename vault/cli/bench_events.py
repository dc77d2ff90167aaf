"""`pdv bench --events`: what the outbox costs and how fast events reach a holder.

1. Tokenize and warm detokenize (batched) with no subscriber and with one subscription
   open (it polls the outbox every event_poll_seconds), a fresh server each run, in the
   order off, on, on, off so the database's growth stays out of the difference; each figure
   is the mean of its two runs. Tokenize and detokenize write no event: what the outbox adds
   to them is the subscribers' reads (and the ledger rows tokenize already wrote).
2. Delivery throughput: events/s to one subscriber draining a backlog (one shred per
   subject, each an event for the bench principal, its holder).
3. Lag from a shred's commit to its event's delivery: one subject shredded per call, one at a
   time, with the subscription open; measured from sending the ShredSubjects call (the commit
   comes before its answer), so an upper bound: the call's own median latency is given beside it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pdv.v1 import subject_pb2 as spb
from pdv.v1 import token_pb2 as pb
from pdv_client import PdvClient
from pdv_client.raw import RawTokenCalls

from vault.cli.bench_records import detokenize_bodies, tokenize_bodies
from vault.cli.bench_stack import BenchStack

Timed = Callable[..., tuple[list[bytes], float, list[float]]]


def outbox_figures(bench: BenchStack, raw: RawTokenCalls, api_key: str, records: int, batch: int, inflight: int,
                   timed: Timed, percentile: Callable[[list[float], float], float]) -> dict[str, float]:
    runs: dict[str, list[tuple[float, float]]] = {"without_subscriber": [], "with_subscriber": []}
    first = 20 * records  # subjects no other part of the bench makes
    subjects: list[str] = []
    for mode in ("without_subscriber", "with_subscriber", "with_subscriber", "without_subscriber"):
        bench.restart_server()
        with _Subscriber(bench.target, api_key) if mode == "with_subscriber" else _Nothing():
            bodies = tokenize_bodies("events", first, first + records, batch)
            replies, seconds, _ = timed(lambda body: raw.call("Tokenize", body), bodies, inflight)
            tokenize = records * 5 / seconds
            answers = [pb.TokenizeResponse.FromString(r) for r in replies]
            pairs = [(t, f) for a in answers for rec in a.results for f, t in rec.tokens.items()]
            subjects += [rec.subject_id for a in answers for rec in a.results]
            reads = detokenize_bodies(pairs, batch)
            timed(lambda body: raw.call("Detokenize", body), reads, inflight)  # warm the DEK cache
            _, seconds, _ = timed(lambda body: raw.call("Detokenize", body), reads, inflight)
            runs[mode].append((tokenize, len(pairs) / seconds))
        first += records
    bench.restart_server()
    out: dict[str, float] = {}
    for mode, figures in runs.items():
        out[f"events_tokenize_{mode}_fields_per_s"] = sum(t for t, _ in figures) / len(figures)
        out[f"events_detokenize_{mode}_fields_per_s"] = sum(d for _, d in figures) / len(figures)

    # Throughput: a backlog of one event per shredded subject, drained by one subscriber.
    backlog, alone = subjects[: len(subjects) // 2], subjects[len(subjects) // 2:][:200]
    with PdvClient(bench.target, api_key=api_key) as client:
        for s in range(0, len(backlog), batch):
            raw.call("ShredSubjects", spb.ShredSubjectsRequest(subject_ids=backlog[s:s + batch],
                                                               reason="bench").SerializeToString())
        start, received = time.perf_counter(), 0
        stop = threading.Event()
        for event in client.events.subscribe(ack_every=500, stop=stop):
            received += 1
            if received >= len(backlog):
                stop.set()
                break
        out["events_delivered_per_s"] = received / (time.perf_counter() - start)

    # Lag: one shred at a time, the subscription open. The commit lies between sending the call
    # and its answer: from the send is an upper bound, and the call's own latency is given beside it.
    lags: list[float] = []
    calls: list[float] = []
    with _Subscriber(bench.target, api_key) as sub:
        for s in alone:
            sent = time.perf_counter()
            raw.call("ShredSubjects", spb.ShredSubjectsRequest(subject_ids=[s], reason="bench").SerializeToString())
            calls.append(time.perf_counter() - sent)
            lags.append(sub.next_arrival(60.0) - sent)
    out["events_lag_p50_ms"] = percentile(lags, 50) * 1000
    out["events_lag_p99_ms"] = percentile(lags, 99) * 1000
    out["events_lag_shred_call_p50_ms"] = percentile(calls, 50) * 1000
    return out


class _Nothing:
    def __enter__(self) -> "_Nothing":
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _Subscriber:
    """One subscription on a thread, acknowledging as it goes; the arrival time of each event."""

    def __init__(self, target: str, api_key: str) -> None:
        self.client = PdvClient(target, api_key=api_key)
        self.stop = threading.Event()
        self.arrivals: list[float] = []
        self.taken = 0
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "_Subscriber":
        self.thread.start()
        return self

    def _run(self) -> None:
        for _ in self.client.events.subscribe(stop=self.stop, ack_every=50):
            with self.changed:
                self.arrivals.append(time.perf_counter())
                self.changed.notify_all()

    def next_arrival(self, timeout: float) -> float:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.arrivals) > self.taken, timeout):
                raise RuntimeError("an event did not arrive within the deadline")
            self.taken += 1
            return self.arrivals[self.taken - 1]

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        self.client.close()
