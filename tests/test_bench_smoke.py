"""`pdv bench` is not a timed test; this only proves it still runs end to end and reports every figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from vault.cli.bench_floors import FLOORS, ratio_key

FIGURES = (
    "tokenize_fields_per_s", "detokenize_cold_fields_per_s", "detokenize_warm_fields_per_s", "lookup_queries_per_s",
    "single_detokenize_calls_per_s", "single_detokenize_p99_ms", "single_lookup_calls_per_s",
    "single_tokenize_calls_per_s", "naive_transit_fields_per_s", "rewrap_deks_per_s", "shred_subjects_per_s",
    "single_shred_p99_ms", "single_shred_alone_p99_ms", "grpc_floor_calls_per_s", "grpc_floor_p99_ms",
    "db_floor_tokenize_fields_per_s", "db_floor_detokenize_fields_per_s",
    "audit_checkpoint_ms", "audit_checkpoint_cpu_ms",
    "tokenize_rare_checkpoints_fields_per_s", "tokenize_default_checkpoints_fields_per_s",
    "single_detokenize_cpu_us", "single_lookup_cpu_us", "single_tokenize_cpu_us", "grpc_floor_cpu_us",
    *(ratio_key(floor) for floor in FLOORS),
    *(f"oracle_{case}_{stat}_us" for case in ("allowed", "unknown", "shredded", "forbidden_caller", "forbidden_value")
      for stat in ("p50", "p99")),
)
RATES = ("audit_checkpoints_per_s", "tokenize_default_checkpoints_checkpoints_per_s",
         "tokenize_rare_checkpoints_checkpoints_per_s")


def test_bench_runs_and_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "vault.cli.main", "bench", "--records", "300", "--batch", "100", "--single-calls", "20",
         "--oracle-calls", "20", "--naive-fields", "10", "--json", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["database"] == "sqlite" and figures["fields_per_record"] == 5
    assert all(figures[name] > 0 for name in FIGURES), {name: figures.get(name) for name in FIGURES}
    # A run this short makes a few log entries (one a request), often fewer than a checkpoint's
    # worth and in under its second: the checkpoint rates are reported, and may be zero.
    assert all(figures[name] >= 0 for name in RATES), {name: figures.get(name) for name in RATES}
    assert "tokenize_fields_per_s" in done.stdout
    # each figure is printed beside its floor, with the ratio the JSON holds
    ratio = figures["tokenize_fields_per_s_to_db_floor_tokenize_fields_per_s_ratio"]
    assert ratio == figures["tokenize_fields_per_s"] / figures["db_floor_tokenize_fields_per_s"]
    assert f"{ratio:.2f} of the floor" in done.stdout


def test_bench_times_the_report_log_reads_at_each_size(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "vault.cli.main", "bench", "--report-log", "300,3000", "--json", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["report_log_ms_300"] > 0 and figures["report_log_ms_3000"] > 0
    # every entry of the smaller log names the subject; the larger one spreads 1,000 of them
    assert (figures["report_log_accesses_300"], figures["report_log_accesses_3000"]) == (300, 1000)


def test_bench_measures_events_to_holders(tmp_path: Path) -> None:
    out = tmp_path / "events.json"
    done = subprocess.run(
        [sys.executable, "-m", "vault.cli.main", "bench", "--events", "--records", "200", "--batch", "100",
         "--json", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    names = [f"events_{op}_{mode}_fields_per_s" for op in ("tokenize", "detokenize")
             for mode in ("without_subscriber", "with_subscriber")]
    names += ["events_delivered_per_s", "events_lag_p50_ms", "events_lag_p99_ms", "events_lag_shred_call_p50_ms"]
    assert all(figures[name] > 0 for name in names), {name: figures.get(name) for name in names}


def test_bench_prefill_stores_each_size_then_times_the_data_path_there(tmp_path: Path) -> None:
    out = tmp_path / "prefill.json"
    done = subprocess.run(
        [sys.executable, "-m", "vault.cli.main", "bench", "--prefill", "500,2000", "--records", "40", "--batch", "20",
         "--json", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    for size in (500, 2000):
        for path in ("tokenize", "detokenize_cold", "detokenize_warm"):
            runs = [float(r.replace(",", "")) for r in figures[f"prefill_{size}_{path}_runs"].split(", ")]
            assert len(runs) == 3 and min(runs) > 0
            assert abs(figures[f"prefill_{size}_{path}_fields_per_s"] - sorted(runs)[1]) <= 1  # the median (listed rounded)
        assert figures[f"prefill_{size}_store_fields_per_s"] > 0


PROFILE_FIGURES = tuple(
    f"{phase}_us_per_field" for phase in (
        "tokenize", "detokenize", "lookup", "tokenize_rpc", "detokenize_rpc", "lean_tokenize", "lean_detokenize")
) + ("tokenize_to_lean_ratio", "detokenize_to_lean_ratio", "tokenize_rpc_to_lean_ratio", "detokenize_rpc_to_lean_ratio")


def test_bench_profile_runs_every_phase(tmp_path: Path) -> None:
    """`pdv bench --profile` without valgrind (it times instead of counting): every phase runs
    through the real services and the servicer, logs a row per field (the child checks), and
    each figure is reported."""
    out = tmp_path / "profile.json"
    done = subprocess.run(
        [sys.executable, "-m", "vault.cli.main", "bench", "--profile", "--no-valgrind", "--profile-records", "60",
         "--profile-batch", "25", "--json", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["records"] == 60 and figures["collector"] == "serve"
    assert all(figures[name] > 0 for name in PROFILE_FIGURES), {name: figures.get(name) for name in PROFILE_FIGURES}
    assert "detokenize_to_lean_ratio" in done.stdout
