"""`pdv bench --profile`: CPU instructions per field of tokenize, detokenize and lookup, in process.

The real services (and, in the *_rpc phases, the TokenService servicer from request bytes
to response bytes) run over an in-memory store and key provider (vault.cli.bench_memory):
no gRPC transport, no database, no Vault. Next to them the lean loops
(vault.cli.bench_lean) do only the essential work of the same fields. Each phase runs
once, under valgrind's callgrind, which counts the instructions it executed: unlike wall
time, the count is the same on a quiet and on a busy machine (to within a few parts in a
thousand), so two versions of the code can be compared on this shared machine.

How: the child process (`--child`) builds everything, warms every path up (caches,
spare keys, lazy imports), then runs each measured phase through `sys.call_tracing`, whose
C function `sys_call_tracing` callgrind is told to count inside (--toggle-collect) and to
dump after (--dump-after): one dump file per phase, start-up and warm-up excluded.
Without valgrind (`--no-valgrind`) the phases are timed instead: noisy, but it shows the
script runs (tests/e2e/test_bench_profile.py).

    pdv bench --profile                 # 1,000 records (5,000 fields), needs valgrind
    python -m vault.cli.bench_profile --records 200 --no-valgrind
"""

from __future__ import annotations

import argparse
import contextvars
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from pdv.v1 import token_pb2 as pb

from vault.api.auth import current_principal
from vault.api.token_servicer import TokenServicer
from vault.catalog import load_catalog
from vault.cli.bench_lean import LeanVault
from vault.cli.bench_memory import MemoryKek, MemoryStore
from vault.cli.bench_records import BENCH_POLICY, PURPOSE, person
from vault.crypto.aead import new_data_key
from vault.domain import Principal
from vault.policy import PolicyHolder, parse_policy
from vault.services.access import AccessControl
from vault.services.common import Caller, Limits
from vault.services.detokenize import DetokenizeItem, DetokenizeService
from vault.services.group_commit import GroupCommitter
from vault.services.index_keys import IndexKeys
from vault.services.locators import SequentialTokens
from vault.services.keyring import KeyRing
from vault.services.lookup import LookupQuery, LookupService
from vault.services.tokenize import TokenizeService
from vault.services.tokenize_model import RecordIn

PRINCIPAL = "bench"
WARM_RECORDS = 50
# Phases in the order they run (detokenize reads what tokenize stored), measured one by one.
PHASES = ("tokenize", "detokenize", "lookup", "tokenize_rpc", "detokenize_rpc", "lean_tokenize", "lean_detokenize")
# Each PDV phase and the lean loop it is held against.
PAIRS = {"tokenize": "lean_tokenize", "detokenize": "lean_detokenize",
         "tokenize_rpc": "lean_tokenize", "detokenize_rpc": "lean_detokenize"}


class _Context:
    """What TokenServicer asks of a grpc.ServicerContext on a call that succeeds."""

    def time_remaining(self) -> None:
        return None


class Workload:
    """The services over memory, the lean loops, and the inputs of every phase."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        catalog = load_catalog()
        now = datetime.now(timezone.utc)
        clock = lambda: now  # noqa: E731 - one instant: the count must not depend on the clock
        self.store = MemoryStore()
        provider = MemoryKek()
        committer = GroupCommitter(self.store)  # type: ignore[arg-type]
        keyring = KeyRing(provider)
        index_keys = IndexKeys(new_data_key())
        access = AccessControl(PolicyHolder(parse_policy(BENCH_POLICY, catalog)), catalog, clock)
        limits = Limits()
        tokens = SequentialTokens(index_keys, self.store.reserve_block)
        self.tokenizer = TokenizeService(self.store, committer, keyring, index_keys, catalog, limits, clock, access,  # type: ignore[arg-type]
                                         tokens)
        self.detokenizer = DetokenizeService(committer, keyring, catalog, limits, clock, access, tokens)
        self.finder = LookupService(committer, index_keys, catalog, limits, clock, access)
        self.servicer = TokenServicer(self.tokenizer, self.detokenizer, self.finder)
        names = [s.name for s in catalog]
        self.lean = LeanVault(catalog, {n: index_keys.token_key(n) for n in names}, {n: index_keys.index_key(n) for n in names})
        self.now, self.next_person, self.calls = now, 0, 0
        self.tokens: list[tuple[str, str]] = []  # (token, field) the last tokenize made
        self.lean_tokens: list[tuple[str, str]] = []

    def _people(self, records: int) -> list[dict[str, str]]:
        first, self.next_person = self.next_person, self.next_person + records
        return [person(i) for i in range(first, first + records)]

    def _caller(self) -> Caller:
        self.calls += 1
        return Caller(PRINCIPAL, f"profile-{self.calls}")

    def _batches(self, items: list, size: int) -> list[list]:
        return [items[s:s + size] for s in range(0, len(items), size)]

    def prepare(self, phase: str, records: int) -> tuple[Callable[[], object], int]:
        """The phase's work, inputs made beforehand, and how many fields it handles."""
        if phase == "tokenize":
            batches = [[RecordIn("", p) for p in b] for b in self._batches(self._people(records), self.batch)]
            callers = [self._caller() for _ in batches]
            return lambda: self._tokenize(callers, batches), 5 * records
        if phase == "detokenize":
            batches = [[DetokenizeItem(t, f) for t, f in b] for b in self._batches(self.tokens, self.batch)]
            callers = [self._caller() for _ in batches]
            return lambda: [self.detokenizer.detokenize(c, PURPOSE, b) for c, b in zip(callers, batches)], len(self.tokens)
        if phase == "lookup":
            emails = [LookupQuery("email", f"r{i}@example.org") for i in range(self.next_person - records, self.next_person)]
            batches, callers = self._batches(emails, self.batch), [self._caller() for _ in range(0, len(emails), self.batch)]
            return lambda: [self.finder.lookup(c, PURPOSE, b) for c, b in zip(callers, batches)], len(emails)
        if phase == "tokenize_rpc":
            bodies = [pb.TokenizeRequest(request_id=f"rpc-{self.calls}-{i}", purpose=PURPOSE, source="bench",
                                         records=[pb.Record(fields=p) for p in b]).SerializeToString()
                      for i, b in enumerate(self._batches(self._people(records), self.batch))]
            return lambda: self._rpc(self.servicer.Tokenize, pb.TokenizeRequest, bodies), 5 * records
        if phase == "detokenize_rpc":
            bodies = [pb.DetokenizeRequest(purpose=PURPOSE, items=[pb.DetokenizeItem(token=t, field=f) for t, f in b])
                      .SerializeToString() for b in self._batches(self.tokens, self.batch)]
            return lambda: self._rpc(self.servicer.Detokenize, pb.DetokenizeRequest, bodies), len(self.tokens)
        if phase == "lean_tokenize":
            batches = self._batches(self._people(records), self.batch)
            return lambda: self._lean_tokenize(batches), 5 * records
        if phase == "lean_detokenize":
            batches = self._batches(self.lean_tokens, self.batch)
            return lambda: [self.lean.detokenize(b, PURPOSE, "lean", self.now) for b in batches], len(self.lean_tokens)
        raise ValueError(f"unknown phase {phase!r}")

    def _tokenize(self, callers: list[Caller], batches: list[list[RecordIn]]) -> None:
        for caller, batch in zip(callers, batches):
            outcome = self.tokenizer.tokenize(caller, PURPOSE, "bench", "", batch)
            self.tokens = [(t, f) for _, tokens in outcome.results for f, t in tokens.items()]

    def _lean_tokenize(self, batches: list[list[dict[str, str]]]) -> None:
        for batch in batches:
            answers = self.lean.tokenize(batch, PURPOSE, "lean", self.now)
            self.lean_tokens = [(t, f) for _, tokens in answers for f, t in tokens.items()]

    def _rpc(self, method: Callable, request_type: type, bodies: list[bytes]) -> None:
        # As the server does: the body parsed, the call made as the authenticated principal, the reply encoded.
        context = contextvars.copy_context()
        context.run(current_principal.set, Principal(PRINCIPAL))
        for body in bodies:
            context.run(lambda: method(request_type.FromString(body), _Context()).SerializeToString())

    def clear(self) -> None:
        """Drop what a phase logged, so later phases do not carry its rows."""
        self.store.log.clear()
        self.lean.log.clear()


def tune_collector(mode: str) -> None:
    """`default`: Python's collector as it comes; `serve`: as `pdv serve` runs it after start-up."""
    if mode == "serve":
        try:
            from vault.services.runtime.collector import tune_collector as serve_tuning
        except ImportError:  # an older tree: pdv serve only froze what start-up made
            gc.collect()
            gc.freeze()
        else:
            serve_tuning()


def child(args: argparse.Namespace) -> int:
    """Warm up, then run each phase (through sys.call_tracing under valgrind, else timed)."""
    work = Workload(args.profile_batch)
    for phase in PHASES:  # warm-up: every path once, caches and spare keys filled
        run, _ = work.prepare(phase, WARM_RECORDS)
        run()
    work.clear()
    tune_collector(args.collector)
    out = []
    for phase in PHASES:
        run, fields = work.prepare(phase, args.profile_records)
        start = time.perf_counter()
        if args.callgrind:
            sys.call_tracing(run, ())
        else:
            run()
        seconds = time.perf_counter() - start
        # Each field left its access-log row: the phase did the work it is counted for.
        logged = len(work.lean.log if phase.startswith("lean_") else work.store.log)
        if logged != fields:
            raise SystemExit(f"pdv bench --profile: phase {phase} logged {logged} rows for {fields} fields")
        out.append({"phase": phase, "fields": fields, "seconds": seconds})
        work.clear()
    json.dump(out, sys.stdout)
    return 0


def callgrind_counts(args: argparse.Namespace) -> list[dict]:
    """Run the child under callgrind; each phase gets its instruction count."""
    with tempfile.TemporaryDirectory(prefix="pdv-profile-") as tmp:
        out_file = Path(tmp) / "cg.out"
        command = [
            "valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=sys_call_tracing",
            "--dump-after=sys_call_tracing", f"--callgrind-out-file={out_file}",
            sys.executable, "-m", "vault.cli.bench_profile", "--child", "--callgrind",
            "--records", str(args.profile_records), "--batch", str(args.profile_batch), "--collector", args.collector,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.stderr.write(done.stderr[-4000:])
            raise SystemExit(f"pdv bench --profile: the callgrind run failed (exit {done.returncode})")
        phases = json.loads(done.stdout)
        for n, phase in enumerate(phases, start=1):
            phase["instructions"] = _total(Path(f"{out_file}.{n}"))
    return phases


def _total(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"pdv bench --profile: no total in {dump.name}")


def report(phases: list[dict], counted: bool) -> dict[str, float]:
    """Per field, each phase's instructions (or µs), and each PDV phase's ratio to its lean loop."""
    unit, key, scale = ("instructions", "instructions", 1.0) if counted else ("µs", "seconds", 1e6)
    per_field = {p["phase"]: p[key] * scale / max(1, p["fields"]) for p in phases}
    results: dict[str, float] = {}
    for name, value in per_field.items():
        results[f"{name}_{'instructions' if counted else 'us'}_per_field"] = value
    for name, lean in PAIRS.items():
        if name in per_field and per_field.get(lean):
            results[f"{name}_to_lean_ratio"] = per_field[name] / per_field[lean]
    width = max(len(k) for k in results)
    print(f"per field ({unit}); ratio: PDV / lean loop (target <= 1.5)")
    for name, value in results.items():
        print(f"{name:<{width}}  {value:>12,.2f}" if "ratio" in name else f"{name:<{width}}  {value:>12,.0f}")
    return results


def add_arguments(p: argparse.ArgumentParser, standalone: bool = False) -> None:
    """The profile's options; `pdv bench` has its own --records and --batch, so there they are --profile-*."""
    p.add_argument(*(("--records",) if standalone else ()), "--profile-records", dest="profile_records", type=int, default=1000,
                   help="with --profile: records per phase (5 fields each)")
    p.add_argument(*(("--batch",) if standalone else ()), "--profile-batch", dest="profile_batch", type=int, default=1000,
                   help="with --profile: records (or tokens, queries) per call")
    p.add_argument("--collector", choices=("default", "serve"), default="serve",
                   help="with --profile: Python's garbage collector as it comes, or tuned as pdv serve tunes it")
    p.add_argument("--no-valgrind", action="store_true", help="with --profile: time the phases instead of counting")


def run_profile(args: argparse.Namespace) -> int:
    """The count (or the timing, with --no-valgrind), printed; written as JSON if --json is given."""
    counted = not args.no_valgrind
    if counted:
        phases = callgrind_counts(args)
    else:
        env = dict(os.environ)
        command = [sys.executable, "-m", "vault.cli.bench_profile", "--child", "--records", str(args.profile_records),
                   "--batch", str(args.profile_batch), "--collector", args.collector]
        phases = json.loads(subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout)
    results = report(phases, counted)
    if getattr(args, "json", None):
        Path(args.json).write_text(json.dumps({"records": args.profile_records, "collector": args.collector, **results}, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vault.cli.bench_profile", description=__doc__.splitlines()[0])
    add_arguments(parser, standalone=True)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--callgrind", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return child(args) if args.child else run_profile(args)


if __name__ == "__main__":
    sys.exit(main())
