"""`pdv bench ha`: the HA fault test on one machine.

A 3-node OpenBao Raft cluster (vault/keys/raft_cluster.py, provisioned by
deploy/openbao/raft/provision.sh), a fresh PostgreSQL database, two `pdv serve` replicas that
name all three OpenBao nodes, and callers spreading tokenize + detokenize over both
(vault/cli/bench_ha_load.py). Under that load: kill -9 the Raft leader and wait for a new one,
kill -9 one replica, then restart both. Reported: acknowledged writes lost (every acknowledged
tokenize must detokenize to its value at the end), the callers' errors by status code and for
how long in each phase, and whether AdminService's audit verify finds every chain intact.
Every process it started is stopped on the way out, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from pdv_client import PdvClient
from prometheus_client.parser import text_string_to_metric_families
from pdv_client.raw import wait_until_serving

from vault.cli.bench_ha_load import CHANNEL_OPTIONS, Caller, LoadLog, errors_between, read_back
from vault.cli.bench_records import BENCH_POLICY
from vault.catalog import load_catalog
from vault.config import hash_api_key
from vault.errors import ConfigError
from vault.keys.openbao import die_with_parent_hook, find_bao_binary, free_loopback_port
from vault.keys.raft_cluster import RaftCluster
from vault.storage import migrate
from vault.storage.engine import create_store_engine
from vault.storage.scratch import create_scratch_database, drop_database

_PROVISION = Path(__file__).resolve().parents[2] / "deploy" / "openbao" / "raft" / "provision.sh"
PHASES = ("leader_killed", "replica_killed", "both_restarted")
TARGET_ERROR_SECONDS = 10.0
COLD_CACHE_KEYS = 256


def add_parser(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser("ha", help="the HA fault test: kill the OpenBao leader and a PDV replica under load")
    p.add_argument("--pg-admin-url", default=os.environ.get("PDV_BENCH_PG_URL", "postgresql://127.0.0.1:5432/test"),
                   help="a PostgreSQL database to create the test's own database next to")
    p.add_argument("--callers", type=int, default=6, help="caller threads, pinned to the replicas in turn")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of load before the first fault")
    p.add_argument("--phase-seconds", type=float, default=12.0, help="seconds of load after each fault")
    p.add_argument("--warm-keys", action="store_true",
                   help="the servers' default DEK cache and spare-key pool (default: no spare keys and a "
                        f"{COLD_CACHE_KEYS}-key cache, so nearly every call reaches OpenBao)")
    p.add_argument("--only-leader-address", action="store_true",
                   help="give the replicas only the first leader's address (the one killed), to see what "
                        "listing every node spares them")
    p.add_argument("--json", type=Path, default=None, help="write the results here as JSON")
    p.add_argument("--keep", type=Path, default=None, metavar="DIR",
                   help="work in DIR (new or empty) and keep it: the servers' and OpenBao nodes' logs")
    p.set_defaults(run=run_ha)


class Replica:
    """One `pdv serve` process on its own port; kill -9 and start again on the same port."""

    def __init__(self, name: str, workdir: Path, env: dict[str, str]) -> None:
        self.name, self.workdir, self.port = name, workdir, free_loopback_port()
        self.metrics_port = free_loopback_port()
        self.env = {**env, "PDV_LISTEN": self.target, "PDV_METRICS_ADDRESS": f"127.0.0.1:{self.metrics_port}"}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        with open(self.workdir / f"{self.name}.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vault.cli.main", "serve"], env=self.env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent_hook(),
            )
        try:
            wait_until_serving(self.target, timeout, alive=lambda: self.proc is not None and self.proc.poll() is None)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}; see {self.workdir / (self.name + '.log')}") from None

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def vault_calls(self) -> tuple[float, float] | None:
        """(OpenBao calls made, of them failed) since this process started; None if it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as reply:
                text = reply.read().decode()
        except OSError:
            return None
        calls = failed = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "pdv_vault_request_duration_seconds_count":
                    calls += sample.value
                elif sample.name == "pdv_vault_request_errors_total":
                    failed += sample.value
        return calls, failed

    def stop(self) -> None:
        if self.proc is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        if sig == signal.SIGKILL and self.proc is not None:
            self.proc.wait()


def _terminate_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_ha(args: argparse.Namespace) -> int:
    # SIGTERM cleans up as Ctrl-C does; SIGINT is set too, since a shell starts a background
    # job with SIGINT ignored.
    previous = {sig: signal.signal(sig, _terminate_as_interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        if any(args.keep.iterdir()):
            raise ConfigError(f"--keep {args.keep}: the directory is not empty")
    workdir = args.keep.resolve() if args.keep is not None else Path(tempfile.mkdtemp(prefix="pdv-bench-ha-"))
    try:
        with ExitStack() as cleanup:
            if args.keep is None:
                cleanup.callback(shutil.rmtree, workdir, True)
            results = _run(args, workdir, cleanup)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print_table(results)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 0 if results["targets_met"] else 1


def _note(text: str) -> None:
    print(f"pdv bench ha: {text}", file=sys.stderr, flush=True)


def _run(args: argparse.Namespace, workdir: Path, cleanup: ExitStack) -> dict[str, object]:
    started = time.monotonic()
    _note("starting a 3-node OpenBao Raft cluster")
    cluster = cleanup.enter_context(RaftCluster(workdir / "openbao"))
    token = _provision(cluster)
    url = create_scratch_database(args.pg_admin_url, "pdv_ha")
    cleanup.callback(drop_database, args.pg_admin_url, url)
    engine = create_store_engine(url)
    migrate.upgrade(engine)
    engine.dispose()

    api_key = "pdvk_" + secrets.token_urlsafe(24)
    addresses = [cluster.leader().addr] if args.only_leader_address else cluster.addresses
    env = _server_env(workdir, url, addresses, token, api_key, args.warm_keys)
    replicas = [Replica(f"pdv-{i}", workdir, env) for i in (1, 2)]
    for replica in replicas:
        cleanup.callback(replica.stop)
        replica.start()
    _note(f"replicas serving on {', '.join(r.target for r in replicas)}; setup took {time.monotonic() - started:.0f} s")

    clients = [cleanup.enter_context(PdvClient(r.target, api_key=api_key, options=CHANNEL_OPTIONS)) for r in replicas]
    log, stop = LoadLog(), threading.Event()
    catalog = load_catalog(None)  # the servers' own: no catalog_path is set
    callers = [Caller(i, clients, log, stop, catalog) for i in range(args.callers)]
    cleanup.callback(lambda: [c.join(timeout=60) for c in callers])
    cleanup.callback(stop.set)
    for caller in callers:
        caller.start()
    load_started = time.monotonic()
    stop.wait(args.warmup)

    marks, timings, scrapes = _inject_faults(cluster, replicas, stop, args.phase_seconds)
    stop.set()
    for caller in callers:
        caller.join(timeout=60)
    load_ended = time.monotonic()
    scrapes["end"] = [r.vault_calls() for r in replicas]

    _note(f"reading back {len(log.acknowledged)} acknowledged values")
    lost = read_back(clients[1], log.acknowledged, batch=COLD_CACHE_KEYS // 2)
    verification = clients[1].admin.verify_audit_log()
    ends = [marks[p] for p in PHASES[1:]] + [load_ended]
    phases = {phase: errors_between(log, marks[phase], end) for phase, end in zip(PHASES, ends)}
    for phase, following in zip(PHASES, [*PHASES[1:], "end"]):
        phases[phase].update(_vault_calls_between(scrapes[phase], scrapes[following]))
    before = errors_between(log, load_started, marks["leader_killed"])
    codes = {code for p in [before, *phases.values()] for code in p["errors"]}  # type: ignore[attr-defined]
    targets = {
        "no_acknowledged_write_lost": lost == 0 and log.mismatches == 0,
        "unavailable_only": codes <= {"UNAVAILABLE"},
        "under_10_s_per_fault": all(p["error_seconds"] < TARGET_ERROR_SECONDS for p in phases.values()),  # type: ignore[operator]
        "audit_chains_verify": bool(verification.intact),
    }
    return {
        "load_seconds": round(load_ended - load_started, 1),
        "callers": args.callers, "replicas": len(replicas), "openbao_nodes": len(cluster.nodes),
        "cold_keys": not args.warm_keys, "vault_addresses_per_replica": len(addresses),
        "calls": dict(log.calls), "acknowledged_values": len(log.acknowledged),
        "acknowledged_writes_lost": lost, "wrong_values_read_during_load": log.mismatches,
        "errors_before_faults": before, "phases": phases, **timings,
        "audit_intact": bool(verification.intact), "audit_entries": verification.entries,
        "audit_chains": verification.chains, "audit_checkpoints": verification.checkpoints,
        "targets": targets, "targets_met": all(targets.values()),
    }


def _inject_faults(cluster: RaftCluster, replicas: list[Replica], stop: threading.Event, phase_seconds: float,
                   ) -> tuple[dict[str, float], dict[str, float], dict[str, list[tuple[float, float] | None]]]:
    """Under the running load: kill -9 the leader and wait for a new one, kill -9 a replica,
    restart both; `phase_seconds` of load after each. Returns when each phase began, how long
    recovery took, and the replicas' OpenBao call counts at each phase's start."""
    marks: dict[str, float] = {}
    timings: dict[str, float] = {}
    scrapes: dict[str, list[tuple[float, float] | None]] = {}

    def begin(phase: str) -> None:
        scrapes[phase] = [r.vault_calls() for r in replicas]
        marks[phase] = time.monotonic()

    leader = cluster.leader()
    _note(f"kill -9 the Raft leader {leader.name}")
    begin("leader_killed")
    cluster.kill(leader)
    successor = cluster.wait_for_leader(60, not_node=leader)
    timings["new_leader_after_s"] = round(time.monotonic() - marks["leader_killed"], 2)
    _note(f"{successor.name} leads after {timings['new_leader_after_s']} s")
    stop.wait(max(0.0, phase_seconds - timings["new_leader_after_s"]))

    victim = replicas[0]
    _note(f"kill -9 PDV replica {victim.name}")
    begin("replica_killed")
    victim.kill()
    stop.wait(phase_seconds)

    _note(f"restart {leader.name} and {victim.name}")
    begin("both_restarted")
    cluster.restart(leader)
    timings["openbao_node_back_after_s"] = round(time.monotonic() - marks["both_restarted"], 2)
    victim.start()
    timings["replica_back_after_s"] = round(time.monotonic() - marks["both_restarted"], 2)
    stop.wait(phase_seconds)
    return marks, timings, scrapes


def _vault_calls_between(before: list[tuple[float, float] | None],
                         after: list[tuple[float, float] | None]) -> dict[str, int]:
    """OpenBao calls the replicas made in a phase (and how many failed), from their metrics; a
    replica killed or restarted in the phase counts only for what its new process made."""
    calls = failed = 0.0
    for start, end in zip(before, after):
        if end is None:
            continue  # killed: its counters went with it
        if start is None or end[0] < start[0]:
            start = (0.0, 0.0)  # a new process: counted from its start
        calls += end[0] - start[0]
        failed += end[1] - start[1]
    return {"openbao_calls": int(calls), "openbao_calls_failed": int(failed)}


def _provision(cluster: RaftCluster) -> str:
    """deploy/openbao/raft/provision.sh on the leader: Transit, the keys, both PDV policies, and
    the service token it prints (the only thing on its stdout)."""
    env = {**os.environ, "BAO_ADDR": cluster.leader().addr, "BAO_TOKEN": cluster.root_token, "BAO": find_bao_binary()}
    done = subprocess.run(["sh", str(_PROVISION)], env=env, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        # stderr holds bao's messages (mounts, policies), never the token: that goes to stdout.
        raise RuntimeError(f"provision.sh failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


def _server_env(workdir: Path, url: str, addresses: list[str], token: str, api_key: str,
                warm_keys: bool) -> dict[str, str]:
    policy = workdir / "policy.yaml"
    policy.write_text(BENCH_POLICY)
    env = {
        **os.environ, "PDV_DATABASE_URL": url, "PDV_VAULT_ADDR": ",".join(addresses), "PDV_VAULT_TOKEN": token,
        "PDV_API_KEYS": json.dumps([{"principal": "bench", "sha256": hash_api_key(api_key)}]),
        "PDV_ADMIN_PRINCIPALS": json.dumps(["bench"]), "PDV_POLICY_PATH": str(policy),
        # One checkpoint file for both replicas, as on deploy/'s shared records volume.
        "PDV_AUDIT_CHECKPOINT_FILE": str(workdir / "audit-checkpoints.jsonl"),
        "PDV_HEALTH_CHECK_SECONDS": "1",
    }
    if not warm_keys:
        # No spare pre-wrapped keys, and a cache far smaller than the subjects written: nearly
        # every tokenize and detokenize needs OpenBao. (A cache of 0 would refuse batches.)
        env.update({"PDV_DEK_CACHE_SIZE": str(COLD_CACHE_KEYS), "PDV_DEK_SPARE_KEYS": "0"})
    return env


def print_table(results: dict[str, object]) -> None:
    print(f"\nHA fault test: {results['openbao_nodes']} OpenBao nodes (Raft), {results['replicas']} PDV replicas "
          f"on PostgreSQL with {results['vault_addresses_per_replica']} OpenBao address(es) each, "
          f"{results['callers']} callers, {results['load_seconds']} s of load")
    print(f"calls: {results['calls']}; acknowledged values: {results['acknowledged_values']}; "
          f"lost: {results['acknowledged_writes_lost']}; wrong values read: {results['wrong_values_read_during_load']}")
    print(f"new Raft leader after {results['new_leader_after_s']} s; restarted node unsealed after "
          f"{results['openbao_node_back_after_s']} s, replica serving after {results['replica_back_after_s']} s")
    print(f"\n{'phase':<16} {'errors by status':<26} {'error s':>8} {'failovers':>10} {'slowest s':>10} "
          f"{'OpenBao calls (failed)':>23}")
    rows = {"before faults": results["errors_before_faults"], **results["phases"]}  # type: ignore[dict-item]
    for name, row in rows.items():
        errors = ", ".join(f"{code} {n}" for code, n in row["errors"].items()) or "none"
        vault = f"{row['openbao_calls']} ({row['openbao_calls_failed']})" if "openbao_calls" in row else "-"
        print(f"{name:<16} {errors:<26} {row['error_seconds']:>8.2f} {row['failovers']:>10} "
              f"{row['slowest_answer_s']:>10.2f} {vault:>23}")
    print(f"\naudit verify: {'intact' if results['audit_intact'] else 'NOT INTACT'} "
          f"({results['audit_entries']} entries, {results['audit_chains']} chains, {results['audit_checkpoints']} checkpoints)")
    print("targets: " + ", ".join(f"{name} {'yes' if ok else 'NO'}" for name, ok in results["targets"].items()))  # type: ignore[attr-defined]
