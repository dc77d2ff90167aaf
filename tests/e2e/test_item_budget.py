"""The item budget and the answer limit, through the generated client, on both databases.

- A call whose share of max_items_in_flight does not come free within items_wait_seconds is
  RESOURCE_EXHAUSTED with a retryable message, written to the access log (action admit,
  outcome overloaded), and nothing of it is done.
- A detokenize whose answer would not fit in max_message_bytes is RESOURCE_EXHAUSTED naming
  the limit, and its rows are logged as too_large — not as delivered, as they were when the
  send failed after the commit. A smaller batch of the same tokens is answered.
"""

from __future__ import annotations

import threading

import pytest
from pdv_client import Record
from pdv_client.errors import ResourceExhausted

from tests.support.access_log import logged_items
from tests.support.stack import PRINCIPAL, start_stack
from vault.keys.openbao import OpenBaoServer

PURPOSE = "benefits_eligibility"


def log_rows(stack, action: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [(r["principal"], r["purpose"], r["field"], r["outcome"]) for r in logged_items(stack.app.store, action=action)]


def test_a_call_that_cannot_get_its_share_in_time_is_refused_and_logged(
    openbao: OpenBaoServer, vault_token: str, database_url: str,
) -> None:
    stack = start_stack(openbao, database_url, vault_token, max_items_in_flight=10, items_wait_seconds=0.2)
    try:
        client = stack.client()
        release, held = threading.Event(), threading.Event()

        def hold() -> None:  # another call's share: the whole budget
            with stack.app.budget.share("Tokenize", "other", 10):
                held.set()
                release.wait(60)

        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        assert held.wait(60)
        try:
            with pytest.raises(ResourceExhausted, match="busy.*retry"):
                client.tokenize([Record({"email": f"p{i}@example.org"}) for i in range(3)], purpose=PURPOSE,
                                source="311")
        finally:
            release.set()
            holder.join(60)
        assert log_rows(stack, "admit") == [(PRINCIPAL, "Tokenize", "over_items_in_flight", "overloaded")]
        assert log_rows(stack, "tokenize") == []  # nothing was done
        # With the budget free again, the same call goes through.
        assert len(client.tokenize([Record({"email": f"p{i}@example.org"}) for i in range(3)], purpose=PURPOSE,
                                   source="311")) == 3
    finally:
        stack.stop()


def test_a_detokenize_answer_over_the_message_limit_is_refused_before_it_is_logged_as_delivered(
    openbao: OpenBaoServer, vault_token: str, database_url: str,
) -> None:
    limit = 16 * 1024
    stack = start_stack(openbao, database_url, vault_token, max_message_bytes=limit)
    try:
        client = stack.client()
        address = "1200 LONG STREET APARTMENT BUILDING NUMBER SEVEN " * 5  # ~250 bytes, as normalized
        records = [Record({"street_address": f"{i} {address}".strip()}) for i in range(80)]
        tokens = [r.tokens["street_address"] for r in client.tokenize(records, purpose=PURPOSE, source="311",
                                                                       batch_size=20)]
        with pytest.raises(ResourceExhausted, match=f"over the {limit}-byte message limit"):
            client.detokenize(tokens, purpose=PURPOSE, batch_size=80)
        outcomes = [row[3] for row in log_rows(stack, "detokenize")]
        assert outcomes == ["too_large"] * 80  # logged, but not as delivered
        answered = client.detokenize(tokens[:20], purpose=PURPOSE, batch_size=20)
        assert [r.value for r in answered] == [f"{i} {address}".strip() for i in range(20)]
        assert [row[3] for row in log_rows(stack, "detokenize")][80:] == ["ok"] * 20
    finally:
        stack.stop()
