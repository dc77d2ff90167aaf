"""How `pdv bench ha` turns what its callers saw into each fault's figures."""

from __future__ import annotations

from vault.cli.bench_ha_load import Failure, LoadLog, errors_between


def test_a_phase_counts_its_own_failures_by_code_and_spans_them_start_to_end():
    log = LoadLog(
        failures=[
            Failure(started=9.0, at=9.5, op="tokenize", code="UNAVAILABLE"),  # before the phase
            Failure(started=11.0, at=13.0, op="tokenize", code="UNAVAILABLE"),
            Failure(started=14.0, at=16.5, op="detokenize", code="UNAVAILABLE"),
            Failure(started=17.0, at=17.2, op="detokenize", code="INTERNAL"),
            Failure(started=25.0, at=26.0, op="tokenize", code="UNAVAILABLE"),  # the next phase's
        ],
        failovers=[12.0, 19.0, 21.0],
        served=[(10.5, 0.1), (18.0, 3.2), (22.0, 0.4)],
    )
    phase = errors_between(log, 10.0, 20.0)
    assert phase["errors"] == {"INTERNAL": 1, "UNAVAILABLE": 2}
    assert phase["error_seconds"] == 6.2  # from 11.0, the first one's start, to 17.2
    assert phase["first_error_after_s"] == 1.0
    assert phase["failovers"] == 2
    assert phase["slowest_answer_s"] == 3.2


def test_a_phase_without_failures_reports_none():
    phase = errors_between(LoadLog(served=[(1.0, 0.2)]), 0.0, 5.0)
    assert phase == {"errors": {}, "error_seconds": 0.0, "first_error_after_s": None, "failovers": 0,
                     "slowest_answer_s": 0.2}
