"""`pdv bench` is not a timed test; this only proves it still runs end to end and reports every figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FIGURES = (
    "tokenize_fields_per_s", "detokenize_cold_fields_per_s", "detokenize_warm_fields_per_s", "lookup_queries_per_s",
    "single_detokenize_calls_per_s", "single_detokenize_p99_ms", "single_lookup_calls_per_s",
    "single_tokenize_calls_per_s", "naive_transit_fields_per_s", "rewrap_deks_per_s", "shred_subjects_per_s",
    "single_shred_p99_ms", "single_shred_alone_p99_ms", "grpc_floor_calls_per_s", "grpc_floor_p99_ms",
    "db_floor_tokenize_fields_per_s", "db_floor_detokenize_fields_per_s",
    "audit_checkpoint_ms", "audit_checkpoint_cpu_ms",
    "tokenize_rare_checkpoints_fields_per_s", "tokenize_default_checkpoints_fields_per_s",
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
