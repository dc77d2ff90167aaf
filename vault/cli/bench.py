"""`pdv bench`: throughput and latency of the data path over gRPC, against a real stack.

It starts a throwaway OpenBao, database and `pdv serve` process (so the server does
not share this process's GIL), then measures batched and single-item calls and a
naive baseline that sends each field to Transit on its own, and two floors: the same
single calls answered by a gRPC server that does nothing, and the rows of a batched
tokenize and detokenize written and read by the database alone. Requests are serialized
before the clock starts, so the client's protobuf work is not counted as the server's.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from pdv.v1 import subject_pb2 as spb
from pdv.v1 import token_pb2 as pb
from pdv_client.raw import RawTokenCalls

from vault.cli import bench_ha, bench_profile
from vault.cli.bench_anchor import checkpoint_cost
from vault.cli.bench_report import report_log_times
from vault.cli.bench_db_floor import DatabaseFloor, empty_store
from vault.cli.bench_events import outbox_figures
from vault.cli.bench_floor import FloorServer
from vault.cli.bench_floors import cpu_seconds, floor_table, ratios
from vault.cli.bench_oracle import oracle_latencies
from vault.cli.bench_prefill import prefill_figures
from vault.cli.bench_records import PURPOSE, detokenize_bodies, person, tokenize_bodies
from vault.cli.bench_stack import STRANGER, BenchStack
from vault.bootstrap import rotation_service
from vault.config import hash_api_key, load_settings

FIELDS_PER_RECORD = 5


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure tokenize / detokenize / lookup throughput over gRPC")
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--pg-admin-url", default=os.environ.get("PDV_BENCH_PG_URL", "postgresql://127.0.0.1:5432/test"))
    p.add_argument("--records", type=int, default=20_000, help="new subjects to tokenize (5 fields each)")
    p.add_argument("--batch", type=int, default=1000, help="records (or tokens, queries) per call")
    p.add_argument("--inflight", type=int, default=2, help="batched calls in flight")
    p.add_argument("--single-calls", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=16, help="single-item calls in flight")
    p.add_argument("--oracle-calls", type=int, default=1000,
                   help="one-token detokenize calls per case: unknown, shredded, forbidden, allowed")
    p.add_argument("--naive-fields", type=int, default=2000)
    p.add_argument("--server-processes", type=int, default=1, help="pdv serve processes sharing the port")
    p.add_argument("--tls", action="store_true", help="serve with mTLS; the bench calls with a client certificate")
    p.add_argument("--json", type=Path, default=None, help="write results here (default bench-<database>.json)")
    p.add_argument("--report-log", metavar="SIZES", type=_sizes, default=None,
                   help="instead: time an access report's log reads (index + entry checks) for a subject with "
                        "1,000 accesses at these log sizes, e.g. 10000,1000000 (vault/cli/bench_report.py)")
    p.add_argument("--events", action="store_true",
                   help="instead: tokenize and detokenize with and without an event subscriber, event delivery "
                        "throughput and shred-to-delivery lag (vault/cli/bench_events.py)")
    p.add_argument("--profile", action="store_true",
                   help="instead: count CPU instructions per field in process under callgrind (vault/cli/bench_profile.py)")
    p.add_argument("--prefill", metavar="SIZES", type=_sizes, default=None,
                   help="instead: store this many values first (e.g. 10000,1000000), then time batched tokenize "
                        "and detokenize at each size (vault/cli/bench_prefill.py)")
    bench_profile.add_arguments(p)
    p.set_defaults(run=run_bench)
    bench_ha.add_parser(p.add_subparsers(dest="bench_command", metavar="{ha}"))


def run_bench(args: argparse.Namespace) -> int:
    if args.profile:
        return bench_profile.run_profile(args)
    api_key = "pdvk_" + secrets.token_urlsafe(24)
    results: dict[str, object] = {
        "database": args.database, "server_processes": args.server_processes, "mtls": args.tls,
        "fields_per_record": FIELDS_PER_RECORD, "batch": args.batch,
    }
    with ExitStack() as stack:
        bench = stack.enter_context(
            BenchStack(args.database, args.pg_admin_url, hash_api_key(api_key), args.server_processes, args.tls)
        )
        if args.report_log:
            print(f"pdv bench: {args.database}, the access report's log reads at {args.report_log} entries",
                  file=sys.stderr)
            results.update(report_log_times(load_settings(vault_addr=bench.bao.addr, vault_token=bench.token),
                                            args.database, args.pg_admin_url, args.report_log))
            return _finish(results, args)
        # Several connections, as a fleet of callers would make, so that the kernel can
        # spread them over the server processes.
        channels = [
            stack.enter_context(RawTokenCalls(
                bench.target, api_key=None if args.tls else api_key, credentials=bench.credentials(),
                options=[("grpc.max_receive_message_length", 1 << 28), ("grpc.use_local_subchannel_pool", 1)],
            ))
            for _ in range(max(1, 4 * args.server_processes if args.server_processes > 1 else 1))
        ]
        raw = _RoundRobin(channels)
        if args.events:
            print(f"pdv bench: {args.database}, events to token holders ({args.records} records per run)", file=sys.stderr)
            results.update(outbox_figures(bench, raw, api_key, args.records, args.batch, args.inflight,  # type: ignore[arg-type]
                                          timed, percentile))
            return _finish(results, args)
        print(f"pdv bench: {args.database}, {args.records} records x {FIELDS_PER_RECORD} fields, batches of {args.batch}", file=sys.stderr)
        if args.prefill:
            results.update(prefill_figures(raw, bench.restart_server, timed, args.prefill, args.records, args.batch,
                                           args.inflight))
            return _finish(results, args)

        # Tokenize, new subjects, batched.
        requests = tokenize_bodies("bench", 0, args.records, args.batch)
        lines_before = bench.checkpoint_lines()
        replies, seconds, _ = timed(lambda body: raw.call("Tokenize", body), requests, args.inflight)
        fields = args.records * FIELDS_PER_RECORD
        results["tokenize_fields_per_s"] = fields / seconds
        results["audit_checkpoints_per_s"] = (bench.checkpoint_lines() - lines_before) / seconds
        tokenized = [pb.TokenizeResponse.FromString(r) for r in replies]
        pairs = [(t, f) for resp in tokenized for rec in resp.results for f, t in rec.tokens.items()]

        # Detokenize: cold (fresh server, empty DEK cache) then warm, batched.
        bench.restart_server()
        one_per_subject = [(rec.tokens["email"], "email") for resp in tokenized for rec in resp.results]
        cold = detokenize_bodies(one_per_subject, args.batch)
        _, seconds, _ = timed(lambda body: raw.call("Detokenize", body), cold, args.inflight)
        results["detokenize_cold_fields_per_s"] = len(one_per_subject) / seconds
        warm = detokenize_bodies(pairs, args.batch)
        _, seconds, _ = timed(lambda body: raw.call("Detokenize", body), warm, args.inflight)
        results["detokenize_warm_fields_per_s"] = len(pairs) / seconds

        # Lookup, batched.
        queries = [("email", f"r{i}@example.org") for i in range(args.records)]
        lookups = [
            pb.LookupRequest(purpose=PURPOSE, queries=[pb.LookupQuery(field=f, value=v) for f, v in queries[s:s + args.batch]]).SerializeToString()
            for s in range(0, len(queries), args.batch)
        ]
        _, seconds, _ = timed(lambda body: raw.call("Lookup", body), lookups, args.inflight)
        results["lookup_queries_per_s"] = len(queries) / seconds

        # Single-item calls, many in flight.
        n = args.single_calls
        singles = {
            "detokenize": [pb.DetokenizeRequest(purpose=PURPOSE, items=[pb.DetokenizeItem(token=t, field=f)]).SerializeToString()
                           for t, f in pairs[:n]],
            "lookup": [pb.LookupRequest(purpose=PURPOSE, queries=[pb.LookupQuery(field=f, value=v)]).SerializeToString()
                       for f, v in queries[:n]],
            "tokenize": [pb.TokenizeRequest(request_id=f"single-{i}", purpose=PURPOSE, source="bench",
                                            records=[pb.Record(fields={"email": f"s{i}@example.org"})]).SerializeToString()
                         for i in range(n)],
        }
        for name, bodies in singles.items():
            method = name.capitalize()
            cpu = cpu_seconds(bench.server_pid)
            _, seconds, latencies = timed(lambda body: raw.call(method, body), bodies, args.concurrency)
            results[f"single_{name}_cpu_us"] = (cpu_seconds(bench.server_pid) - cpu) / len(bodies) * 1e6
            results[f"single_{name}_calls_per_s"] = len(bodies) / seconds
            results[f"single_{name}_p50_ms"] = percentile(latencies, 50) * 1000
            results[f"single_{name}_p99_ms"] = percentile(latencies, 99) * 1000

        # The floor: the same single calls to a gRPC server that does nothing.
        pki = (bench.pki.server_cert, bench.pki.server_key, bench.pki.ca) if bench.pki else None
        with FloorServer(pki, bench.credentials()) as floor, RawTokenCalls(
            floor.target, api_key=None if args.tls else api_key, credentials=bench.credentials(),
        ) as empty:
            cpu = cpu_seconds(floor.pid)
            _, seconds, latencies = timed(lambda body: empty.call("Detokenize", body), singles["detokenize"], args.concurrency)
            results["grpc_floor_cpu_us"] = (cpu_seconds(floor.pid) - cpu) / len(singles["detokenize"]) * 1e6
        results["grpc_floor_calls_per_s"] = len(singles["detokenize"]) / seconds
        results["grpc_floor_p50_ms"] = percentile(latencies, 50) * 1000
        results["grpc_floor_p99_ms"] = percentile(latencies, 99) * 1000

        # Unknown, shredded and forbidden tokens must not differ in latency (no timing oracle).
        stranger = stack.enter_context(RawTokenCalls(
            bench.target, api_key=None if args.tls else bench.stranger_key, credentials=bench.credentials(STRANGER),
        ))
        results.update(oracle_latencies(channels[0], stranger, args.oracle_calls))

        # The naive integration: one Transit call per field.
        results["naive_transit_fields_per_s"] = bench.naive_transit_rate(args.naive_fields)

        # What the database alone takes of the same rows, in an empty database of its own.
        results.update(database_floor(args.database, args.pg_admin_url, args.records, args.batch, args.inflight))

        # KEK rotation: rotate with the stack's root token, then rewrap every data key while serving.
        results["rewrap_deks_per_s"] = rewrap_rate(bench)

        # What anchoring the log outside the database costs: one checkpoint, and tokenize of
        # new subjects with checkpoints rare, then at the defaults (paired, same database).
        results.update(checkpoint_cost(load_settings(vault_addr=bench.bao.addr, vault_token=bench.token),
                                       args.database, args.pg_admin_url))
        results.update(anchoring_pair(bench, raw, args.records, args.batch, args.inflight))

        # Crypto-shred (last: it destroys the data): the bench's subjects, in batches, then one per call.
        subjects = [rec.subject_id for resp in tokenized for rec in resp.results]
        singles_n = min(len(subjects) // 2, args.single_calls)
        alone_n = min(500, singles_n // 4)
        batched, single, alone = subjects[singles_n:], subjects[alone_n:singles_n], subjects[:alone_n]
        shred_batches = [
            spb.ShredSubjectsRequest(subject_ids=batched[s:s + args.batch], reason="bench").SerializeToString()
            for s in range(0, len(batched), args.batch)
        ]
        _, seconds, _ = timed(lambda body: raw.call("ShredSubjects", body), shred_batches, 1)
        results["shred_subjects_per_s"] = len(batched) / seconds
        # One subject per call: many in flight, then one at a time (a lone shred's latency).
        for name, ids, inflight in (("single_shred", single, args.concurrency), ("single_shred_alone", alone, 1)):
            bodies = [spb.ShredSubjectsRequest(subject_ids=[s], reason="bench").SerializeToString() for s in ids]
            _, seconds, latencies = timed(lambda body: raw.call("ShredSubjects", body), bodies, inflight)
            results[f"{name}_calls_per_s"] = len(bodies) / seconds
            results[f"{name}_p50_ms"] = percentile(latencies, 50) * 1000
            results[f"{name}_p99_ms"] = percentile(latencies, 99) * 1000

    return _finish(results, args)


def _finish(results: dict[str, object], args: argparse.Namespace) -> int:
    results.update(ratios(results))
    print_table(results)
    table = floor_table(results)
    if table:
        print("\neach figure beside its floor (vault/cli/bench_floors.py)")
        print("\n".join(table))
    out = args.json or Path(f"bench-{args.database}.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("sizes are whole numbers separated by commas, e.g. 10000,1000000") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("each size must be at least 1")
    return sizes


def anchoring_pair(bench: BenchStack, raw: "_RoundRobin", records: int, batch: int, inflight: int) -> dict[str, float]:
    """Tokenize fields/s of new subjects with checkpoints rare (one a billion entries or an hour)
    and at the default audit_checkpoint_entries / audit_checkpoint_seconds, a fresh server each
    run, in the order rare, default, default, rare: the database grows run by run, and the
    mirrored order keeps that growth out of the difference. Each figure is the mean of two runs."""
    modes = {"rare_checkpoints": {"audit_checkpoint_entries": "1000000000", "audit_checkpoint_seconds": "3600"},
             "default_checkpoints": {}}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in modes}
    first = 10 * records  # subjects the bench has not made yet
    for name in ("rare_checkpoints", "default_checkpoints", "default_checkpoints", "rare_checkpoints"):
        bench.restart_server(**modes[name])
        bodies = tokenize_bodies("anchor", first, first + records, batch)
        lines = bench.checkpoint_lines()
        _, seconds, _ = timed(lambda body: raw.call("Tokenize", body), bodies, inflight)
        runs[name].append((records * FIELDS_PER_RECORD / seconds, (bench.checkpoint_lines() - lines) / seconds))
        first += records
    bench.restart_server()  # what follows runs at the defaults
    out: dict[str, float] = {}
    for name, pairs in runs.items():
        out[f"tokenize_{name}_fields_per_s"] = sum(rate for rate, _ in pairs) / len(pairs)
        out[f"tokenize_{name}_checkpoints_per_s"] = sum(cps for _, cps in pairs) / len(pairs)
    return out


def database_floor(database: str, pg_admin_url: str, records: int, batch: int, inflight: int) -> dict[str, float]:
    """Batched tokenize and warm detokenize rates of the store alone (vault.cli.bench_db_floor)."""
    gc.collect()
    gc.freeze()  # the bench's own replies stay out of the collector's full passes, as in rewrap_rate
    with empty_store(database, pg_admin_url) as store:
        floor = DatabaseFloor(store, PURPOSE, inflight)
        tokenize = floor.tokenize_rate([person(i) for i in range(records)], batch)
        return {"db_floor_tokenize_fields_per_s": tokenize,
                "db_floor_detokenize_fields_per_s": floor.detokenize_rate(batch)}


def rewrap_rate(bench: BenchStack) -> float:
    """DEKs/s of `pdv keys rewrap` over every data key the bench stored, after a KEK rotation."""
    # As `pdv keys rewrap` does: keep what this process holds (the bench's own replies) out of
    # the collector's full passes, or the figure measures the bench rather than the rewrap.
    gc.collect()
    gc.freeze()
    settings = load_settings(
        database_url=bench.url, vault_addr=bench.bao.addr, vault_admin_token=bench.bao.root_token,
        transit_mount="transit", kek_name="pdv-kek",
    )
    with rotation_service(settings) as service:
        return service.measure_rewrap()


class _RoundRobin:
    """Spreads calls over several connections."""

    def __init__(self, channels: list[RawTokenCalls]) -> None:
        self._channels = channels
        self._next = itertools.count()

    def call(self, method: str, body: bytes) -> bytes:
        return self._channels[next(self._next) % len(self._channels)].call(method, body)



def timed(send, bodies: list[bytes], inflight: int) -> tuple[list[bytes], float, list[float]]:  # type: ignore[no-untyped-def]
    """Send every body with `inflight` calls outstanding; return replies, wall seconds, latencies."""
    def one(body: bytes) -> tuple[bytes, float]:
        start = time.perf_counter()
        reply = send(body)
        return reply, time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=inflight) as pool:
        done = list(pool.map(one, bodies))
    seconds = time.perf_counter() - start
    return [r for r, _ in done], seconds, [lat for _, lat in done]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def print_table(results: dict[str, object]) -> None:
    width = max(len(k) for k in results)
    for key, value in results.items():
        shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown:>14}")
