"""Prometheus metrics on their own HTTP port: a scrape during real traffic sees the numbers move
(calls by method and status, latency, items per call, Vault calls, the DEK cache and spare pool,
group commits, the audit chain, the disposal and rewrap jobs), and the port is off by default."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import pytest
from pdv_client import Record
from pdv_client.errors import InvalidArgument, Unauthenticated

from tests.support.observe import scrape, value, wait_until
from tests.support.stack import start_stack
from vault.cli.serve import start_disposal_job, start_rewrap_job
from vault.keys.openbao import OpenBaoServer, create_service_token, provision_transit

PURPOSE = "benefits_eligibility"
TOKENIZE = {"method": "TokenService/Tokenize", "code": "OK"}


def test_metrics_are_off_unless_configured(openbao: OpenBaoServer, vault_token: str, tmp_path: Path) -> None:
    stack = start_stack(openbao, f"sqlite:///{tmp_path / 'pdv.db'}", vault_token)
    try:
        assert stack.server.metrics is None and stack.server.metrics_port is None
    finally:
        stack.stop()


def test_a_scrape_during_traffic_sees_the_numbers_move(openbao: OpenBaoServer, vault_token: str, database_url: str) -> None:
    stack = start_stack(openbao, database_url, vault_token, metrics_address="127.0.0.1:0", dek_spare_keys=8)
    try:
        client = stack.client()
        _, before = scrape(stack)
        assert value(before, "pdv_serving") == 1
        assert value(before, "pdv_rpc_calls_total", **TOKENIZE) == 0

        records = client.tokenize([Record({"email": f"m{n}@example.org", "full_name": "Metric Person"}) for n in range(3)],
                                  purpose=PURPOSE, source="311")
        stack.app.keyring.clear()  # the first read must unwrap (misses), the second finds them (hits)
        tokens = [r.tokens["email"] for r in records]
        client.detokenize(tokens, purpose=PURPOSE)
        client.detokenize(tokens, purpose=PURPOSE)
        client.lookup("email", "m1@example.org", purpose=PURPOSE)
        with pytest.raises(InvalidArgument):
            client.detokenize(tokens, purpose="")
        with pytest.raises(Unauthenticated):
            stack.client(api_key="pdvk_" + secrets.token_urlsafe(24)).detokenize(tokens, purpose=PURPOSE)

        _, after = scrape(stack)
        moved = {
            "tokenize calls": value(after, "pdv_rpc_calls_total", **TOKENIZE) - value(before, "pdv_rpc_calls_total", **TOKENIZE),
            "detokenize calls": value(after, "pdv_rpc_calls_total", method="TokenService/Detokenize", code="OK"),
            "lookup calls": value(after, "pdv_rpc_calls_total", method="TokenService/Lookup", code="OK"),
            "invalid": value(after, "pdv_rpc_calls_total", method="TokenService/Detokenize", code="INVALID_ARGUMENT"),
            "unauthenticated": value(after, "pdv_rpc_calls_total", method="TokenService/Detokenize", code="UNAUTHENTICATED"),
            "detokenize latencies": value(after, "pdv_rpc_duration_seconds_count", method="TokenService/Detokenize"),
            "tokenize items": value(after, "pdv_rpc_items_sum", method="Tokenize"),
            "detokenize items": value(after, "pdv_rpc_items_sum", method="Detokenize"),
            "cache misses": value(after, "pdv_dek_cache_lookups_total", result="miss"),
            "cache hits": value(after, "pdv_dek_cache_lookups_total", result="hit"),
        }
        assert moved == {
            "tokenize calls": 1, "detokenize calls": 2, "lookup calls": 1, "invalid": 1, "unauthenticated": 1,
            "detokenize latencies": 4, "tokenize items": 6,
            "detokenize items": 9,  # the call with no purpose too: items are counted on admission
            "cache misses": 3, "cache hits": 3,
        }
        assert value(after, "pdv_vault_request_duration_seconds_count", operation="encrypt") > value(
            before, "pdv_vault_request_duration_seconds_count", operation="encrypt")
        assert value(after, "pdv_vault_request_duration_seconds_count", operation="decrypt") >= 1
        assert value(after, "pdv_group_commit_batch_units_count") > value(before, "pdv_group_commit_batch_units_count")
        assert value(after, "pdv_dek_cache_keys") == 3
        assert value(after, "pdv_spare_keys_target") == 8 and 0 <= value(after, "pdv_spare_keys") <= 8
        assert value(after, "pdv_items_capacity") == stack.settings.max_items_in_flight
        assert value(after, "pdv_items_in_flight") == 0
        wait_until(lambda: value(scrape(stack)[1], "pdv_audit_unchecked_entries") == 0, what="a checkpoint covering the log")
        assert value(after, "pdv_audit_checkpoint_failures_total") == 0
        assert value(after, "pdv_rpc_duration_seconds_bucket", method="TokenService/Detokenize", le="+Inf") == 4
    finally:
        stack.stop()


def test_the_jobs_report_their_rounds(openbao: OpenBaoServer, tmp_path: Path) -> None:
    root = openbao.client()
    kek = f"pdv-kek-{uuid.uuid4().hex[:8]}"
    provision_transit(root, "transit", kek)
    stack = start_stack(openbao, f"sqlite:///{tmp_path / 'pdv.db'}", create_service_token(root, "transit", kek),
                        kek_name=kek, dek_spare_keys=0, metrics_address="127.0.0.1:0")
    jobs = []
    try:
        stack.client().tokenize([Record({"email": f"job{n}@example.org"}) for n in range(3)], purpose=PURPOSE, source="311")
        root.secrets.transit.rotate_key(kek, mount_point="transit")
        settings = stack.settings.model_copy(update={"disposal_interval_seconds": 0.05, "rewrap_interval_seconds": 0.05})
        jobs = [start_disposal_job(stack.app, settings), start_rewrap_job(stack.app, settings)]

        def rounds_done() -> bool:
            samples = scrape(stack)[1]
            return value(samples, "pdv_disposal_runs_total") >= 1 and value(samples, "pdv_rewrap_keys_rewrapped_total") >= 3

        wait_until(rounds_done, what="a disposal round and a rewrap of the three keys")
        _, samples = scrape(stack)
        assert value(samples, "pdv_disposal_last_run_ok") == 1 and value(samples, "pdv_disposal_failures_total") == 0
        assert value(samples, "pdv_disposal_last_run_timestamp_seconds") > 0
        assert value(samples, "pdv_disposal_backlog_values") == 0  # nothing has expired
        assert value(samples, "pdv_rewrap_keys_remaining") == 0 and value(samples, "pdv_kek_latest_version") == 2
        assert value(samples, "pdv_vault_request_duration_seconds_count", operation="rewrap") >= 1
    finally:
        for job in jobs:
            if job is not None:
                job.stop()
        stack.stop()
