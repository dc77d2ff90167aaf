"""Every label is checked against the column it lands in, the same on both databases: one
character over is INVALID_ARGUMENT naming the label, logged as a refusal, with no database
error and no new audit chain (PostgreSQL had refused the insert, after the chain was sealed)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from pdv.v1 import token_pb2 as pb
from pdv.v1 import token_pb2_grpc as pb_grpc
from pdv_client import Record
from pdv_client.errors import InvalidArgument
from sqlalchemy import text

from tests.support.stack import PRINCIPAL, Stack, start_stack
from vault.keys.openbao import OpenBaoServer
from vault.services.common import MAX_FIELD, MAX_LABEL, MAX_PURPOSE, MAX_REASON, MAX_REQUEST_ID

PURPOSE = "benefits_eligibility"
CANARY = "QzvCanaryXkw"


@pytest.fixture
def stub(stack: Stack) -> Iterator[pb_grpc.TokenServiceStub]:
    with grpc.insecure_channel(stack.target) as channel:
        yield pb_grpc.TokenServiceStub(channel)  # type: ignore[no-untyped-call]


def tokenize(purpose: str = PURPOSE, source: str = "311", notice_id: str = "", request_id: str = "req-1",
             field: str = "email", value: str = "ada@example.org") -> tuple[str, pb.TokenizeRequest]:
    return "Tokenize", pb.TokenizeRequest(request_id=request_id, purpose=purpose, source=source, notice_id=notice_id,
                                          records=[pb.Record(fields={field: value})])


def detokenize(token: str, purpose: str = PURPOSE, request_id: str = "", field: str = "") -> tuple[str, pb.DetokenizeRequest]:
    return "Detokenize", pb.DetokenizeRequest(purpose=purpose, request_id=request_id,
                                              items=[pb.DetokenizeItem(token=token, field=field)])


def lookup(purpose: str = PURPOSE, request_id: str = "", field: str = "email") -> tuple[str, pb.LookupRequest]:
    return "Lookup", pb.LookupRequest(purpose=purpose, request_id=request_id,
                                      queries=[pb.LookupQuery(field=field, value="ada@example.org")])


def over(limit: int, stem: str = "x") -> str:
    """A printable label one character longer than `limit`."""
    return (stem * (limit + 1))[: limit + 1]


def chains(stack: Stack) -> int:
    with stack.app.store.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM audit_chains")).scalar_one()


def refusals(stack: Stack) -> list[tuple]:
    with stack.app.store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT action, principal, request_id, purpose, field, outcome FROM access_log"
            " WHERE outcome = 'invalid' ORDER BY id"))]


def case_list(token: str) -> list[tuple[str, tuple[str, object], str, str]]:
    """(case id, (method, request), named in the message, logged as the item) for each label."""
    long_name = over(MAX_FIELD, "a")  # catalog-shaped, but longer than any field name may be
    return [
        ("tokenize purpose 65", tokenize(purpose=over(MAX_PURPOSE)), "purpose", "purpose"),
        ("tokenize purpose 200", tokenize(purpose="p" * 200), "purpose", "purpose"),
        ("tokenize source", tokenize(source=over(MAX_LABEL)), "source", "source"),
        ("tokenize notice_id", tokenize(notice_id=over(MAX_LABEL)), "notice_id", "notice_id"),
        ("tokenize request_id", tokenize(request_id=over(MAX_REQUEST_ID)), "request_id", "request_id"),
        ("tokenize field", tokenize(field=long_name), "<65 characters, not a field name>", "tokenize-item"),
        ("detokenize purpose", detokenize(token, purpose=over(MAX_PURPOSE)), "purpose", "purpose"),
        ("detokenize request_id", detokenize(token, request_id=over(MAX_REQUEST_ID)), "request_id", "request_id"),
        ("detokenize field", detokenize(token, field=long_name), "items[0]", "items[0]"),
        ("lookup purpose", lookup(purpose=over(MAX_PURPOSE)), "purpose", "purpose"),
        ("lookup request_id", lookup(request_id=over(MAX_REQUEST_ID)), "request_id", "request_id"),
        ("lookup field", lookup(field=long_name), "queries[0]", "queries[0]"),
    ]


def test_each_label_over_its_column_is_refused_named_and_logged(stack: Stack, stub: pb_grpc.TokenServiceStub) -> None:
    metadata = [("x-api-key", stack.api_key)]
    (ok,) = stub.Tokenize(tokenize(request_id="warm-up")[1], metadata=metadata).results
    token, started = ok.tokens["email"], chains(stack)
    assert started == 1
    for case, (method, request), named, item in case_list(token):
        before = len(refusals(stack))
        with pytest.raises(grpc.RpcError) as exc_info:
            getattr(stub, method)(request, metadata=metadata)
        error = exc_info.value
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, f"{case}: {error.code()} {error.details()}"
        assert named in error.details(), f"{case}: {error.details()!r}"
        new = refusals(stack)[before:]
        assert new, f"{case}: no refusal in the access log"
        action, principal, request_id, purpose, field, outcome = new[0]
        assert (action, principal, outcome) == (method.lower(), PRINCIPAL, "invalid"), case
        if item == "tokenize-item":  # an item problem: logged under the field, shown as its length only
            assert field == "<65 characters, not a field name>", case
        else:
            assert field == item, case
        # Labels that were at fault are not written; the others are, whole.
        assert len(purpose) <= MAX_PURPOSE and len(request_id) <= MAX_REQUEST_ID, case
        assert chains(stack) == started, f"{case}: a new audit chain was started"
    assert "database error" not in stack.log.getvalue()


def test_an_unknown_field_name_is_never_echoed_or_logged_whole(stack: Stack, stub: pb_grpc.TokenServiceStub) -> None:
    metadata = [("x-api-key", stack.api_key)]
    field = f"Ada Lovelace {CANARY}"
    for method, request in (tokenize(field=field), lookup(field=field), detokenize("pdv_" + "A" * 43, field=field)):
        with pytest.raises(grpc.RpcError) as exc_info:
            getattr(stub, method)(request, metadata=metadata)
        assert exc_info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "unknown field '<25 characters, not a field name>'" in exc_info.value.details()
        assert CANARY not in exc_info.value.details()
    # Partial mode reports the item under the same stand-in.
    request = tokenize(field=field)[1]
    request.mode = pb.BATCH_MODE_PARTIAL
    (item_error,) = stub.Tokenize(request, metadata=metadata).errors
    assert item_error.field == "<25 characters, not a field name>"
    assert CANARY not in stack.log.getvalue()
    with stack.app.store.engine.connect() as conn:
        logged = conn.execute(text("SELECT count(*) FROM access_log WHERE field LIKE :c OR purpose LIKE :c"),
                              {"c": f"%{CANARY}%"}).scalar_one()
    assert logged == 0
    # A field-shaped unknown name is still named, so a typo is easy to see.
    with pytest.raises(grpc.RpcError) as exc_info:
        stub.Tokenize(tokenize(field="shoe_size")[1], metadata=metadata)
    assert "unknown field 'shoe_size'" in exc_info.value.details()


@pytest.fixture
def admin_stack(openbao: OpenBaoServer, vault_token: str, database_url: str) -> Iterator[Stack]:
    s = start_stack(openbao, database_url, vault_token, admin_principals=[PRINCIPAL])
    try:
        yield s
    finally:
        s.stop()


def test_subject_service_labels_over_their_limit_are_refused_named_and_logged(admin_stack: Stack) -> None:
    client = admin_stack.client()
    (record,) = client.tokenize([Record({"email": "ada@example.org"})], purpose=PURPOSE, source="311")
    subject, started = record.subject_id, chains(admin_stack)
    calls: list[tuple[str, Callable[[], object], str, str]] = [
        ("hold", lambda: client.place_hold(subject, case_id=over(MAX_LABEL), reason="court order"), "case_id", "case_id"),
        ("hold", lambda: client.place_hold(subject, case_id="C-1", reason=over(MAX_REASON)), "reason", "reason"),
        ("release_hold", lambda: client.release_hold(subject, case_id=over(MAX_LABEL)), "case_id", "case_id"),
        ("shred", lambda: client.shred_subjects([subject], reason=over(MAX_REASON)), "reason", "reason"),
        ("shred", lambda: client.shred_fields(subject, ["email"], reason=over(MAX_REASON)), "reason", "reason"),
    ]
    for action, call, named, item in calls:
        before = len(refusals(admin_stack))
        with pytest.raises(InvalidArgument) as exc_info:
            call()
        assert named in exc_info.value.message, f"{action}: {exc_info.value.message!r}"
        (row,) = refusals(admin_stack)[before:]
        assert (row[0], row[1], row[4], row[5]) == (action, PRINCIPAL, item, "invalid")
        assert chains(admin_stack) == started, f"{action}: a new audit chain was started"
    assert client.detokenize_one(record.tokens["email"], purpose=PURPOSE) == "ada@example.org"  # nothing was shredded
