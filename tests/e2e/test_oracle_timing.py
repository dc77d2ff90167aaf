"""No timing oracle: unknown, shredded and forbidden tokens cost the same work to answer.

Their answers are byte-identical (test_policy.py, test_shred.py); here, the work behind
them, on a real OpenBao and a real gRPC server, on both databases: the SQL each case sends
and the Vault calls it makes, recorded on the server, must be the same statement for
statement. A refusal that skipped the read, or unwrapped a key for a refused row, fails.

Why not assert on latency: on the shared 2-core machine the shortcut this guards against
(deciding a refusal without the read) saves 3-7% of a single call on SQLite and 6-10% on
PostgreSQL, while the medians of equal-work cases wander by up to ±4.5% under load. No
bound both never trips and always catches it. `pdv bench` reports the latencies
(oracle_*_p50_us / _p99_us) for a person to read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pdv_client import Record
from sqlalchemy import event

from tests.conftest import DATABASES
from tests.support.databases import database
from tests.support.stack import Stack, start_stack
from vault.config import ApiKey, hash_api_key
from vault.crypto import tokens as tk
from vault.keys.openbao import OpenBaoServer
from vault.services.common import Caller

# The clerk (intake-311, the stack's own key) reads email for service_delivery and may not
# read date_of_birth; the loader may only tokenize, it has no read grant at all.
POLICY_FILE = Path(__file__).with_name("policy_matrix.yaml")
LOADER, LOADER_KEY = "loader-svc", "pdvk_oracle-loader-key-for-tests-only"
PURPOSE = "service_delivery"
OK, NOT_FOUND, PERMISSION_DENIED = 0, 5, 7
REFUSED = ("shredded", "forbidden_value", "forbidden_caller")


@dataclass
class Work:
    """What the server did for a call: SQL statements (text, and the values bound to each) and KeyProvider calls."""

    statements: list[str] = field(default_factory=list)
    bound: list[list[object]] = field(default_factory=list, compare=False)  # differ with the tokens
    vault_calls: list[str] = field(default_factory=list)


@pytest.fixture(scope="module", params=DATABASES)
def oracle_stack(
    request: pytest.FixtureRequest, openbao: OpenBaoServer, vault_token: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, dict[str, str]]]:
    """A stack under the matrix policy and one token per case."""
    with database(request.param, tmp_path_factory.mktemp("oracle")) as url:
        stack = start_stack(
            openbao, url, vault_token, dev_policy=False, policy_path=POLICY_FILE,
            api_keys=[ApiKey(principal=LOADER, sha256=hash_api_key(LOADER_KEY))],
            # No signed checkpoint (a Vault call and statements of its own) may fall inside a recorded call.
            audit_checkpoint_entries=10_000_000, audit_checkpoint_seconds=86_400,
        )
        try:
            yield stack, _tokens(stack)
        finally:
            stack.stop()


def _tokens(stack: Stack) -> dict[str, str]:
    loader = stack.client(LOADER_KEY)
    live, doomed = loader.tokenize([Record({"email": "oracle1@example.org"}), Record({"email": "oracle2@example.org"})],
                                   purpose=PURPOSE, source="test")
    birth, other_birth = loader.tokenize([Record({"date_of_birth": "1961-02-03"}), Record({"date_of_birth": "1962-02-03"})],
                                         purpose="benefits_eligibility", source="test")
    stack.app.shredder.shred_subjects(Caller("privacy-officer", "oracle-shred"), [doomed.subject_id], "test")
    return {
        "allowed": live.tokens["email"],
        "unknown": tk.random_token(),
        "shredded": doomed.tokens["email"],
        "forbidden_value": birth.tokens["date_of_birth"],  # a live value of a field the clerk may not read
        "forbidden_caller": live.tokens["email"],  # a live value the loader may not read (no read grant at all)
        "forbidden_field": other_birth.tokens["date_of_birth"],  # asked for by the clerk naming its field
    }


@contextmanager
def _recorded(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Work]:
    work = Work()

    def statement(conn, cursor, text, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        work.statements.append(" ".join(text.split()))
        # A list bound as one parameter (PostgreSQL's `= ANY(%s)`) counts as its items.
        values = parameters if isinstance(parameters, (list, tuple)) else []
        work.bound.append([v for p in values for v in (p if isinstance(p, list) else [p])])

    def counted(name: str, real: Callable) -> Callable:  # type: ignore[type-arg]
        def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            work.vault_calls.append(name)
            return real(*args, **kwargs)
        return call

    with monkeypatch.context() as patch:
        for name in ("wrap_keys", "unwrap_keys"):
            patch.setattr(stack.app.keys, name, counted(name, getattr(stack.app.keys, name)))
        event.listen(stack.app.store.engine, "before_cursor_execute", statement)
        try:
            yield work
        finally:
            event.remove(stack.app.store.engine, "before_cursor_execute", statement)


def test_every_refusal_does_the_work_of_a_miss(
    oracle_stack: tuple[Stack, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, tokens = oracle_stack
    clients = {"clerk": stack.client(), "loader": stack.client(LOADER_KEY)}
    expected = {"allowed": OK, "unknown": NOT_FOUND, "shredded": NOT_FOUND, "forbidden_value": NOT_FOUND,
                "forbidden_caller": PERMISSION_DENIED}
    work = {}
    for case, code in expected.items():
        stack.app.keyring.clear()  # cold: a key unwrapped on behalf of a refused row would show
        with _recorded(stack, monkeypatch) as work[case]:
            client = clients["loader" if case == "forbidden_caller" else "clerk"]
            (result,) = client.detokenize([tokens[case]], purpose=PURPOSE)
        assert result.code == code, case

    miss = work["unknown"]
    assert [s for s in miss.statements if "FROM field_values" in s], miss.statements
    assert miss.vault_calls == []
    for case in REFUSED:
        assert work[case] == miss, case
    # The recording can tell work apart: a readable token with a cold key reads, unwraps once, reads again.
    assert work["allowed"].vault_calls == ["unwrap_keys"]
    assert len(work["allowed"].statements) > len(miss.statements)


def test_refused_tokens_go_into_the_one_batched_read(
    oracle_stack: tuple[Stack, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, tokens = oracle_stack
    clerk = stack.client()
    clerk.detokenize([tokens["allowed"]], purpose=PURPOSE)  # the key is cached: one round only
    batch = [
        tokens["allowed"], tokens["unknown"], tokens["shredded"], tokens["forbidden_value"],
        # The clerk names a field it may not read: refused at the caller level, like the loader.
        (tokens["forbidden_field"], "date_of_birth"),
    ]
    with _recorded(stack, monkeypatch) as work:
        results = clerk.detokenize(batch, purpose=PURPOSE)
    assert [r.code for r in results] == [OK, NOT_FOUND, NOT_FOUND, NOT_FOUND, PERMISSION_DENIED]
    (read,) = [b for s, b in zip(work.statements, work.bound) if "FROM field_values" in s]  # one read for the batch
    # Every token, what each opens to as a sequential token (vault/services/locators), the purpose
    # and the caller's token domain (a row of another domain is left out in the read; PostgreSQL
    # binds it once for each probe).
    asked = [t if isinstance(t, str) else t[0] for t in batch]
    located = sorted({loc for loc, _ in stack.app.detokenizer.tokens.locate("city", asked)})
    assert len(located) == len(asked) and "city" in read
    assert sorted([v for v in read if v != "city"], key=repr) == sorted([PURPOSE, *asked, *located], key=repr)
    assert work.vault_calls == []
