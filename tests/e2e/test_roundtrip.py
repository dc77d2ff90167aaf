"""Tokenize → detokenize → lookup through the generated client, on SQLite and PostgreSQL."""

from __future__ import annotations

import grpc
import pytest
from pdv.v1 import token_pb2, token_pb2_grpc
from pdv_client import Record
from pdv_client.errors import AlreadyExists, NotFound
from sqlalchemy import text

from tests.support.access_log import logged_items
from tests.support.stack import Stack

PURPOSE = "benefits_eligibility"


def person(n: int = 0) -> dict[str, str]:
    return {
        "full_name": "Ada Lovelace",
        "email": f"ada{n}@Example.org",
        "phone": "(212) 555-0100",
        "ssn": "123-45-6789",
        "date_of_birth": "1985-12-10",
    }


def test_round_trip(stack: Stack) -> None:
    client = stack.client()
    (result,) = client.tokenize([Record(person())], purpose=PURPOSE, source="311")
    assert result.subject_id.startswith("sub_")
    assert set(result.tokens) == set(person())
    values = {r.field: r.value for r in client.detokenize(list(result.tokens.values()) and
              [(t, f) for f, t in result.tokens.items()], purpose=PURPOSE)}
    assert values == {
        "full_name": "Ada Lovelace", "email": "ada0@example.org", "phone": "2125550100",
        "ssn": "123456789", "date_of_birth": "1985-12-10",
    }
    matches = client.lookup("email", "ADA0@example.org ", purpose=PURPOSE)
    assert [(m.subject_id, m.token) for m in matches] == [(result.subject_id, result.tokens["email"])]


def test_tokens_are_opaque_and_unlinkable(stack: Stack) -> None:
    client = stack.client()
    a, b = client.tokenize([Record(person(1)), Record(person(2))], purpose=PURPOSE, source="311")
    assert a.subject_id != b.subject_id
    assert a.tokens["full_name"] != b.tokens["full_name"]  # random tokens, same value
    for token in (a.tokens["full_name"], a.tokens["phone"]):
        assert token.startswith("pdv_") and len(token) == 26
        assert "Ada" not in token and "212" not in token


def test_deterministic_tokens_are_equal_across_calls_and_subjects(stack: Stack) -> None:
    client = stack.client()
    (a,) = client.tokenize([Record({"email": "same@example.org"})], purpose=PURPOSE, source="311")
    (b,) = client.tokenize([Record({"email": "SAME@example.org"})], purpose=PURPOSE, source="web")
    assert a.tokens["email"] == b.tokens["email"]
    assert a.subject_id != b.subject_id
    matches = client.lookup("email", "same@example.org", purpose=PURPOSE)
    assert {m.subject_id for m in matches} == {a.subject_id, b.subject_id}
    assert client.detokenize_one(a.tokens["email"], purpose=PURPOSE) == "same@example.org"


def test_format_preserving_tokens_keep_the_shape(stack: Stack) -> None:
    client = stack.client()
    results = client.tokenize([Record({"ssn": f"123-45-{6000 + i}"}) for i in range(50)], purpose=PURPOSE, source="311")
    tokens = [r.tokens["ssn"] for r in results]
    assert all(len(t) == 9 and t.isdigit() for t in tokens)
    assert len(set(tokens)) == 50
    assert all(t != f"12345{6000 + i}" for i, t in enumerate(tokens))
    assert client.detokenize_one(tokens[7], purpose=PURPOSE, field="ssn") == "123456007"
    assert [m.token for m in client.lookup("ssn", "123 45 6007", purpose=PURPOSE)] == [tokens[7]]


def test_retry_with_same_request_id_returns_same_tokens(stack: Stack) -> None:
    client = stack.client()
    records = [Record(person(i)) for i in range(3)]
    first = client.tokenize(records, purpose=PURPOSE, source="311", request_id="batch-42")
    again = client.tokenize(records, purpose=PURPOSE, source="311", request_id="batch-42")
    assert [(r.subject_id, r.tokens) for r in again] == [(r.subject_id, r.tokens) for r in first]
    assert len(client.lookup("email", "ada1@example.org", purpose=PURPOSE)) == 1


def raw_tokenize(stack: Stack, request_id: str, email: str) -> token_pb2.TokenizeResponse:
    """One Tokenize through the generated stub, as a non-Python caller would send it."""
    request = token_pb2.TokenizeRequest(
        request_id=request_id, purpose=PURPOSE, source="311",
        records=[token_pb2.Record(fields={"email": email, "full_name": "Ada Lovelace"})],
    )
    with grpc.insecure_channel(stack.target) as channel:
        stub = token_pb2_grpc.TokenServiceStub(channel)  # type: ignore[no-untyped-call]
        return stub.Tokenize(request, metadata=(("x-api-key", stack.api_key),), timeout=10)


def tokenize_log(stack: Stack) -> list[tuple[str, str]]:
    """(request id, token) of every tokenize item of the access log, oldest first."""
    return [(r["request_id"], r["token"]) for r in logged_items(stack.app.store, action="tokenize")]


def kept_answers(stack: Stack) -> list[str]:
    with stack.app.store.engine.connect() as conn:
        return list(conn.execute(text("SELECT request_id FROM tokenize_requests ORDER BY request_id")).scalars())


def test_tokenize_without_request_id_is_not_idempotent_but_logged(stack: Stack) -> None:
    first = raw_tokenize(stack, "", "noid@example.org")
    again = raw_tokenize(stack, "", "noid@example.org")
    (a,), (b,) = first.results, again.results
    # No id, nothing to recognise a retry by: the second call is a new collection.
    assert a.subject_id != b.subject_id
    assert a.tokens["full_name"] != b.tokens["full_name"]
    assert a.tokens["email"] == b.tokens["email"]  # deterministic field: same value, same token
    assert kept_answers(stack) == []
    log = tokenize_log(stack)
    assert {token for _, token in log} >= {a.tokens["full_name"], b.tokens["full_name"]}
    ids = {request_id for request_id, _ in log}
    # Each call's rows share one generated id, and the two calls' ids differ.
    assert len(ids) == 2 and all(i.startswith("gen-") for i in ids)
    assert len(stack.client().lookup("email", "noid@example.org", purpose=PURPOSE)) == 2


def test_tokenize_with_request_id_through_the_stub_is_idempotent(stack: Stack) -> None:
    first = raw_tokenize(stack, "intake-9", "withid@example.org")
    again = raw_tokenize(stack, "intake-9", "withid@example.org")
    assert [(r.subject_id, dict(r.tokens)) for r in again.results] == [(r.subject_id, dict(r.tokens)) for r in first.results]
    assert kept_answers(stack) == ["intake-9"]
    assert {request_id for request_id, _ in tokenize_log(stack)} == {"intake-9"}
    assert len(stack.client().lookup("email", "withid@example.org", purpose=PURPOSE)) == 1


def test_reused_request_id_with_other_content_is_refused(stack: Stack) -> None:
    client = stack.client()
    client.tokenize([Record(person(1))], purpose=PURPOSE, source="311", request_id="batch-7")
    with pytest.raises(AlreadyExists, match="request_id"):
        client.tokenize([Record(person(2))], purpose=PURPOSE, source="311", request_id="batch-7")


def test_fields_added_to_an_existing_subject(stack: Stack) -> None:
    client = stack.client()
    (first,) = client.tokenize([Record({"full_name": "Grace Hopper"})], purpose=PURPOSE, source="311")
    (more,) = client.tokenize(
        [Record({"email": "grace@example.org"}, subject_id=first.subject_id)], purpose=PURPOSE, source="311"
    )
    assert more.subject_id == first.subject_id
    assert client.detokenize_one(more.tokens["email"], purpose=PURPOSE) == "grace@example.org"


def test_unknown_subject_is_not_found(stack: Stack) -> None:
    client = stack.client()
    with pytest.raises(NotFound, match=r"records\[0\]"):
        client.tokenize([Record({"full_name": "Grace Hopper"}, subject_id="sub_" + "A" * 21 + "A")],
                        purpose=PURPOSE, source="311")


def test_partial_mode_commits_the_valid_records(stack: Stack) -> None:
    client = stack.client()
    results = client.tokenize(
        [Record({"email": "ok@example.org"}), Record({"email": "not-an-email"}), Record({"shoe_size": "9"})],
        purpose=PURPOSE, source="311", mode="partial",
    )
    assert results[0].ok and results[0].tokens
    assert not results[1].ok and results[1].errors[0].field == "email"
    assert not results[2].ok and "unknown field" in results[2].errors[0].message
    assert client.detokenize_one(results[0].tokens["email"], purpose=PURPOSE) == "ok@example.org"


def test_atomic_mode_stores_nothing_when_one_record_is_invalid(stack: Stack) -> None:
    client = stack.client()
    from pdv_client.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match=r"records\[1\]\.fields\['email'\]"):
        client.tokenize([Record({"email": "kept@example.org"}), Record({"email": "nope"})], purpose=PURPOSE, source="311")
    assert client.lookup("email", "kept@example.org", purpose=PURPOSE) == []


def test_batch_of_thousands(stack: Stack) -> None:
    client = stack.client()
    records = [Record({"email": f"user{i}@example.org", "full_name": "Alan Turing"}) for i in range(2500)]
    results = client.tokenize(records, purpose=PURPOSE, source="bulk")
    tokens = [(r.tokens["email"], "email") for r in results]
    values = client.detokenize(tokens, purpose=PURPOSE)
    assert [v.value for v in values] == [f"user{i}@example.org" for i in range(2500)]


def test_worn_data_key_is_replaced_and_old_values_still_decrypt(openbao, vault_token, database_url) -> None:  # type: ignore[no-untyped-def]
    """Past dek_max_encryptions a subject gets a new DEK version; its tokens stay valid."""
    from sqlalchemy import text

    from tests.support.stack import start_stack

    stack = start_stack(openbao, database_url, vault_token, dek_max_encryptions=3)
    try:
        client = stack.client()
        (first,) = client.tokenize([Record({"full_name": "Ada Lovelace", "email": "a@example.org"})], purpose=PURPOSE, source="311")
        subject = first.subject_id
        later = [
            client.tokenize([Record({"phone": f"212555010{i}"}, subject_id=subject)], purpose=PURPOSE, source="311")[0]
            for i in range(4)
        ]
        with stack.app.store.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT version, encryptions FROM data_keys WHERE subject_id = :s ORDER BY version"), {"s": subject}
            ).all()
        assert [tuple(r) for r in rows] == [(1, 3), (2, 3)]  # 2 + 1 under v1, then 3 under v2
        assert client.detokenize_one(first.tokens["email"], purpose=PURPOSE) == "a@example.org"
        assert [client.detokenize_one(r.tokens["phone"], purpose=PURPOSE) for r in later] == [f"212555010{i}" for i in range(4)]
    finally:
        stack.stop()
