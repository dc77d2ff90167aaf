"""`pdv bench`: each figure next to the floor it is held against, and how far from it PDV runs.

A floor is what the same work costs without PDV: the store writing and reading the same rows
alone (vault.cli.bench_db_floor), a gRPC server that answers without doing anything
(vault.cli.bench_floor), or the naive integration that sends every field to Transit. The
ratio of a rate is PDV's share of its floor (1.0 would be the floor itself); the ratio of a
cost (CPU per call) is how many times the floor's cost PDV spends; the ratio to the naive
integration is how many times faster PDV is.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import psutil


class Floor(NamedTuple):
    figure: str
    floor: str
    kind: str  # "rate": higher is better, ratio = figure / floor; "cost": ratio = figure / floor, lower is better


FLOORS = (
    Floor("tokenize_fields_per_s", "db_floor_tokenize_fields_per_s", "rate"),
    Floor("detokenize_warm_fields_per_s", "db_floor_detokenize_fields_per_s", "rate"),
    Floor("single_detokenize_calls_per_s", "grpc_floor_calls_per_s", "rate"),
    Floor("single_lookup_calls_per_s", "grpc_floor_calls_per_s", "rate"),
    Floor("single_tokenize_calls_per_s", "grpc_floor_calls_per_s", "rate"),
    Floor("single_detokenize_cpu_us", "grpc_floor_cpu_us", "cost"),
    Floor("single_lookup_cpu_us", "grpc_floor_cpu_us", "cost"),
    Floor("single_tokenize_cpu_us", "grpc_floor_cpu_us", "cost"),
    Floor("tokenize_fields_per_s", "naive_transit_fields_per_s", "speedup"),
    Floor("detokenize_warm_fields_per_s", "naive_transit_fields_per_s", "speedup"),
)


def ratio_key(floor: Floor) -> str:
    return f"{floor.figure}_to_{floor.floor}_ratio"


def ratios(results: dict[str, object]) -> dict[str, float]:
    """Every figure's ratio to its floor, for the figures and floors this run measured."""
    out: dict[str, float] = {}
    for floor in FLOORS:
        figure, base = results.get(floor.figure), results.get(floor.floor)
        if isinstance(figure, (int, float)) and isinstance(base, (int, float)) and base > 0:
            out[ratio_key(floor)] = figure / base
    return out


def floor_table(results: dict[str, object]) -> list[str]:
    """Lines of a table: figure, its floor, and the ratio, one row per floor measured."""
    rows = [(f.figure, f.floor, results[f.figure], results[f.floor], results[ratio_key(f)], f.kind)
            for f in FLOORS if ratio_key(f) in results]
    if not rows:
        return []
    fw = max(len(r[0]) for r in rows)
    bw = max(len(r[1]) for r in rows)
    lines = [f"{'figure':<{fw}}  {'value':>12}  {'floor':<{bw}}  {'value':>12}  ratio"]
    for figure, floor, value, base, ratio, kind in rows:
        shown = {"rate": f"{ratio:.2f} of the floor", "cost": f"{ratio:.2f}x the floor's cost",
                 "speedup": f"{ratio:.1f}x faster"}[kind]
        lines.append(f"{figure:<{fw}}  {value:>12,.1f}  {floor:<{bw}}  {base:>12,.1f}  {shown}")
    return lines


def cpu_seconds(pid: int) -> float:
    """CPU seconds a process and all its descendants (a server's worker processes) have run so
    far, summed over their threads from the scheduler's nanosecond account (/proc/*/task/*/schedstat;
    `cpu_times()` counts in 10 ms ticks, too coarse for a few thousand calls)."""
    root = psutil.Process(pid)
    total_ns = 0
    for proc in (root, *root.children(recursive=True)):
        for task in Path(f"/proc/{proc.pid}/task").glob("*/schedstat"):
            try:
                total_ns += int(task.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue  # a thread that ended between the listing and the read
    return total_ns / 1e9
