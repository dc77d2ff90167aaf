"""Bad input, end to end: the right status, a message naming the item, never the value.

Every bad value carries a distinctive canary; no error message (nor the server's own log)
may contain it. After every rejected tokenize, nothing may have been stored.
"""

from __future__ import annotations

import re
from typing import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pdv.v1 import token_pb2, token_pb2_grpc
from pdv_client import PdvClient, Record
from pdv_client.errors import InvalidArgument, NotFound, PdvError, Unauthenticated
from sqlalchemy import text

from tests.support.stack import Stack, start_stack
from vault.crypto.tokens import random_token
from vault.keys.openbao import OpenBaoServer

PURPOSE = "benefits_eligibility"
CANARY = "QzvCanaryXkw"  # planted inside every bad value; must never come back
STORED_TABLES = ("subjects", "data_keys", "field_values", "tokenize_requests")


# --- helpers ---------------------------------------------------------------------------

def counts(stack: Stack) -> dict[str, int]:
    with stack.app.store.engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in STORED_TABLES}


def assert_nothing_stored(stack: Stack) -> None:
    assert counts(stack) == {t: 0 for t in STORED_TABLES}


def assert_no_echo(stack: Stack, message: str, canary: str = CANARY) -> None:
    """Neither the caller's message, the operator's log nor the access log holds the canary (in any case)."""
    assert canary.lower() not in message.lower(), f"value echoed in error message: {message!r}"
    assert canary.lower() not in stack.log.getvalue().lower(), "value written to the server log"
    with stack.app.store.engine.connect() as conn:
        leaked = conn.execute(
            text("SELECT count(*) FROM access_log WHERE lower(request_id || purpose || coalesce(field, '')"
                 " || coalesce(token, '') || outcome) LIKE :pattern"),
            {"pattern": f"%{canary.lower()}%"},
        ).scalar_one()
    assert leaked == 0, "value written to the access log"


def rejected(stack: Stack, exc_info: pytest.ExceptionInfo[PdvError], *names: str, canary: str = CANARY) -> str:
    """The error's message names every one of `names` and echoes no value."""
    message = exc_info.value.message
    for name in names:
        assert name in message, f"{name!r} not named in {message!r}"
    assert_no_echo(stack, str(exc_info.value), canary)
    return message


def raw_stub(stack: Stack) -> Iterator[token_pb2_grpc.TokenServiceStub]:
    channel = grpc.insecure_channel(stack.target)
    try:
        yield token_pb2_grpc.TokenServiceStub(channel)  # type: ignore[no-untyped-call]
    finally:
        channel.close()


@pytest.fixture
def stub(stack: Stack) -> Iterator[token_pb2_grpc.TokenServiceStub]:
    yield from raw_stub(stack)


@pytest.fixture
def small_stack(openbao: OpenBaoServer, vault_token: str, database_url: str) -> Iterator[Stack]:
    """A stack with tiny limits: 64-byte values, 3 items per batch."""
    s = start_stack(openbao, database_url, vault_token, max_value_bytes=64, max_batch_items=3)
    try:
        yield s
    finally:
        s.stop()


# --- tokenize: the values --------------------------------------------------------------

def test_unknown_field_names_the_record_and_field(stack: Stack) -> None:
    client = stack.client()
    records = [
        Record({"email": f"ok{CANARY}@example.org"}),
        Record({"full_name": "Ada Lovelace"}),
        Record({"full_name": "Ada Lovelace", "shoe_size": f"9 {CANARY}"}),
    ]
    with pytest.raises(InvalidArgument) as exc_info:
        client.tokenize(records, purpose=PURPOSE, source="311")
    message = rejected(stack, exc_info, "records[2]", "shoe_size", "unknown field")
    assert "records[0]" not in message and "records[1]" not in message
    assert_nothing_stored(stack)


@pytest.mark.parametrize(
    ("field", "bad_value", "purpose"),
    [
        ("email", f"{CANARY}-not-an-email", PURPOSE),
        ("ssn", f"12-{CANARY}", PURPOSE),
        ("ssn", "1234567890123", PURPOSE),  # digits only: the canary is the value itself
        ("phone", f"555-{CANARY}", PURPOSE),
        ("date_of_birth", f"1985-{CANARY}", PURPOSE),
        ("date_of_birth", "2999-01-01", PURPOSE),  # well-formed, but in the future
        ("medicaid_id", f"{CANARY}!!", PURPOSE),
        ("license_plate", f"PLATE{CANARY}", "permits"),  # longer than a plate
    ],
)
def test_value_failing_its_validator(stack: Stack, field: str, bad_value: str, purpose: str) -> None:
    canary = CANARY if CANARY in bad_value else bad_value
    client = stack.client()
    with pytest.raises(InvalidArgument) as exc_info:
        client.tokenize([Record({field: bad_value})], purpose=purpose, source="311")
    rejected(stack, exc_info, f"records[0].fields[{field!r}]", canary=canary)
    assert_nothing_stored(stack)
    # Partial mode reports the same per item, still without the value.
    (result,) = client.tokenize([Record({field: bad_value})], purpose=purpose, source="311", mode="partial")
    assert not result.ok and not result.tokens
    (error,) = result.errors
    assert (error.index, error.field, error.code) == (0, field, grpc.StatusCode.INVALID_ARGUMENT.value[0])
    assert_no_echo(stack, error.message, canary)
    assert counts(stack)["field_values"] == 0


def test_empty_value(stack: Stack) -> None:
    client = stack.client()
    with pytest.raises(InvalidArgument) as exc_info:
        client.tokenize([Record({"full_name": f"Ada {CANARY}", "email": ""})], purpose=PURPOSE, source="311")
    rejected(stack, exc_info, "records[0].fields['email']", "empty")
    assert_nothing_stored(stack)


def test_purpose_not_allowed_for_the_field(stack: Stack) -> None:
    client = stack.client()
    # ssn may only be collected for benefits_eligibility and court_proceedings.
    with pytest.raises(InvalidArgument) as exc_info:
        client.tokenize([Record({"full_name": "Ada Lovelace", "ssn": f"123-45-{CANARY}"})],
                        purpose="service_delivery", source="311")
    rejected(stack, exc_info, "records[0].fields['ssn']", "service_delivery")
    assert_nothing_stored(stack)


def test_oversized_value(small_stack: Stack) -> None:
    client = small_stack.client()
    big = "Ada " + CANARY * 8  # > 64 bytes, a valid name otherwise
    with pytest.raises(InvalidArgument) as exc_info:
        client.tokenize([Record({"email": "a@example.org"}), Record({"full_name": big})], purpose=PURPOSE, source="311")
    rejected(small_stack, exc_info, "records[1].fields['full_name']", "64 bytes")
    assert_nothing_stored(small_stack)
    with pytest.raises(InvalidArgument) as exc_info:
        client.lookup("email", f"{CANARY * 6}@example.org", purpose=PURPOSE)
    rejected(small_stack, exc_info, "queries[0]", "64 bytes")


def test_batch_over_the_limit(small_stack: Stack) -> None:
    client = small_stack.client()
    four = [Record({"email": f"u{i}{CANARY}@example.org"}) for i in range(4)]
    with pytest.raises(InvalidArgument) as exc_info:
        client.tokenize(four, purpose=PURPOSE, source="311")
    rejected(small_stack, exc_info, "records", "limit is 3")
    # Few records, but too many fields in the batch.
    two_by_two = [Record({"email": f"u{i}{CANARY}@example.org", "full_name": "Ada Lovelace"}) for i in range(2)]
    with pytest.raises(InvalidArgument) as exc_info:
        client.tokenize(two_by_two, purpose=PURPOSE, source="311")
    rejected(small_stack, exc_info, "fields in the batch", "limit is 3")
    assert_nothing_stored(small_stack)

    with pytest.raises(InvalidArgument) as exc_info:
        client.detokenize([random_token() for _ in range(4)], purpose=PURPOSE)
    rejected(small_stack, exc_info, "items", "limit is 3")
    with pytest.raises(InvalidArgument) as exc_info:
        client.lookup_many([("email", f"u{i}{CANARY}@example.org") for i in range(4)], purpose=PURPOSE)
    rejected(small_stack, exc_info, "queries", "limit is 3")


# --- missing labels ----------------------------------------------------------------------

def test_missing_purpose_on_every_call(stack: Stack) -> None:
    client = stack.client()
    with pytest.raises(InvalidArgument) as exc_info:
        client.tokenize([Record({"email": f"{CANARY}@example.org"})], purpose="", source="311")
    rejected(stack, exc_info, "purpose")
    assert_nothing_stored(stack)

    (ok,) = client.tokenize([Record({"email": "kept@example.org"})], purpose=PURPOSE, source="311")
    with pytest.raises(InvalidArgument) as exc_info:
        client.detokenize([ok.tokens["email"]], purpose="")
    rejected(stack, exc_info, "purpose")
    with pytest.raises(InvalidArgument) as exc_info:
        client.lookup("email", f"{CANARY}@example.org", purpose="")
    rejected(stack, exc_info, "purpose")


@pytest.mark.parametrize(("request_id", "source", "named"), [("req-1", "", "source")])
def test_missing_source_on_tokenize(  # request_id is optional (tests/e2e/test_roundtrip.py)
    stack: Stack, stub: token_pb2_grpc.TokenServiceStub, request_id: str, source: str, named: str
) -> None:
    request = token_pb2.TokenizeRequest(
        request_id=request_id, purpose=PURPOSE, source=source,
        records=[token_pb2.Record(fields={"email": f"{CANARY}@example.org"})],
    )
    with pytest.raises(grpc.RpcError) as exc_info:
        stub.Tokenize(request, metadata=(("x-api-key", stack.api_key),), timeout=10)
    assert exc_info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = exc_info.value.details()
    assert named in details and "required" in details
    assert_no_echo(stack, details)
    assert_nothing_stored(stack)


# --- detokenize and lookup input --------------------------------------------------------

def test_malformed_tokens_in_detokenize(stack: Stack) -> None:
    client = stack.client()
    (ok,) = client.tokenize([Record({"email": "kept@example.org", "ssn": "123-45-6789"})], purpose=PURPOSE, source="311")
    good = ok.tokens["email"]
    cases = [
        ([good, f"pdv_{CANARY}"], "items[1]", "malformed token"),  # opaque prefix, wrong shape
        ([good, good, (f"pdv_{CANARY}", "email")], "items[2]", "malformed token"),
        ([(f"{CANARY}123", "email")], "items[0]", "malformed token"),  # email tokens are opaque
        ([good, (ok.tokens["ssn"], "ssn"), f"\n{CANARY}\x00"], "items[2]", "malformed token"),
        ([(f"{CANARY}", "shoe_size")], "items[0]", "unknown field"),
    ]
    for tokens, where, what in cases:
        with pytest.raises(InvalidArgument) as exc_info:
            client.detokenize(tokens, purpose=PURPOSE)
        rejected(stack, exc_info, where, what)


def test_format_preserving_token_without_its_field(stack: Stack) -> None:
    client = stack.client()
    (ok,) = client.tokenize([Record({"ssn": "123-45-6789"})], purpose=PURPOSE, source="311")
    # "needs its field" only for text a format-preserving field could have issued (ssn: up to 9 digits) …
    for shaped in ("999123456", "0042"):
        with pytest.raises(InvalidArgument) as exc_info:
            client.detokenize([(ok.tokens["ssn"], "ssn"), shaped], purpose=PURPOSE)
        rejected(stack, exc_info, "items[1]", "format-preserving token needs its field", canary=shaped)
    # … anything no field could have issued is a malformed token, with or without a field.
    for text in (f"999{CANARY}", "1234567890", f"{CANARY} with spaces", "hello"):
        with pytest.raises(InvalidArgument) as exc_info:
            client.detokenize([text], purpose=PURPOSE)
        message = rejected(stack, exc_info, "items[0]", "malformed token", canary=CANARY if CANARY in text else text)
        assert "field" not in message
    # A real format-preserving token is refused the same way without its field, read with it.
    with pytest.raises(InvalidArgument) as exc_info:
        client.detokenize([ok.tokens["ssn"]], purpose=PURPOSE)
    rejected(stack, exc_info, "items[0]", "needs its field")
    assert client.detokenize_one(ok.tokens["ssn"], purpose=PURPOSE, field="ssn") == "123456789"


def test_a_well_formed_unknown_token_and_a_shredded_one_answer_alike(openbao: OpenBaoServer, vault_token: str,
                                                                     database_url: str) -> None:
    """The syntax check never looks anything up: past it, unknown and shredded tokens get one answer."""
    s = start_stack(openbao, database_url, vault_token, admin_principals=["intake-311"])
    try:
        client = s.client()
        (gone,) = client.tokenize([Record({"email": "gone@example.org", "ssn": "123-45-6789"})], purpose=PURPOSE, source="311")
        client.shred_subjects([gone.subject_id], reason="test")
        unused = next(t for t in ("000000001", "000000002") if t != gone.tokens["ssn"])
        results = client.detokenize(
            [gone.tokens["email"], random_token(), (gone.tokens["ssn"], "ssn"), (unused, "ssn")], purpose=PURPOSE
        )
        assert {(r.code, r.field, r.value, r.message) for r in results} == {(5, "", "", "token not found")}
    finally:
        s.stop()


# --- purposes ----------------------------------------------------------------------------

def test_an_undeclared_purpose_is_invalid_and_names_the_declared_ones(stack: Stack) -> None:
    client = stack.client()
    (ok,) = client.tokenize([Record({"email": "kept@example.org"})], purpose=PURPOSE, source="311")
    declared = sorted(stack.app.catalog.purposes)
    purpose = f"marketing{CANARY}"
    calls = [
        lambda: client.tokenize([Record({"email": "new@example.org"})], purpose=purpose, source="311"),
        lambda: client.detokenize([ok.tokens["email"]], purpose=purpose),
        lambda: client.lookup("email", "kept@example.org", purpose=purpose),
    ]
    for call in calls:
        with pytest.raises(InvalidArgument) as exc_info:
            call()
        message = rejected(stack, exc_info, "purpose is not declared in the field catalog")
        assert message.endswith("declared purposes: " + ", ".join(declared))
    assert counts(stack)["field_values"] == 1  # the tokenize stored nothing
    with stack.app.store.engine.connect() as conn:
        refusals = conn.execute(text("SELECT action, purpose FROM access_log WHERE outcome = 'invalid_purpose' ORDER BY id")).all()
    assert [tuple(r) for r in refusals] == [(a, "(undeclared)") for a in ("tokenize", "detokenize", "lookup")]


# --- atomic mode names every bad item -------------------------------------------------------

def test_atomic_mode_names_every_bad_field_of_every_record(stack: Stack) -> None:
    client = stack.client()
    records = [
        Record({"email": f"{CANARY}-not-an-email", "phone": f"555-{CANARY}", "full_name": "Ada Lovelace"}),
        Record({"full_name": "Grace Hopper"}),
        Record({"ssn": f"12-{CANARY}", "date_of_birth": "2999-01-01", "email": ""}),
    ]
    bad = ["records[0].fields['email']", "records[0].fields['phone']", "records[2].fields['date_of_birth']",
           "records[2].fields['email']", "records[2].fields['ssn']"]
    with pytest.raises(InvalidArgument) as exc_info:
        client.tokenize(records, purpose=PURPOSE, source="311")
    message = rejected(stack, exc_info, *bad)
    assert [m.group(0) for m in re.finditer(r"records\[\d\]\.fields\['\w+'\]", message)] == bad  # in order, each once
    assert_nothing_stored(stack)
    # Partial mode lists the same items, one error each, and stores the good record.
    results = client.tokenize(records, purpose=PURPOSE, source="311", mode="partial")
    assert [f"records[{e.index}].fields[{e.field!r}]" for r in results for e in r.errors] == bad
    assert [r.ok for r in results] == [False, True, False]


def test_atomic_mode_lists_items_until_the_status_message_is_full_and_counts_the_rest(stack: Stack) -> None:
    client = stack.client()
    records = [Record({"email": f"{CANARY}{i}-not-an-email"}) for i in range(400)]
    with pytest.raises(InvalidArgument) as exc_info:  # not RESOURCE_EXHAUSTED: the message fits a trailer
        client.tokenize(records, purpose=PURPOSE, source="311")
    message = rejected(stack, exc_info, "records[0].fields['email']")
    listed = re.findall(r"records\[(\d+)\]", message)
    (rest,) = re.findall(r"\(and (\d+) more; BATCH_MODE_PARTIAL lists every one in errors\)$", message)
    assert [int(i) for i in listed] == list(range(len(listed))) and len(listed) + int(rest) == 400
    assert len(message.encode()) < 8000
    assert_nothing_stored(stack)


def test_lookup_on_a_field_that_is_not_searchable(stack: Stack) -> None:
    client = stack.client()
    client.tokenize([Record({"full_name": f"Ada {CANARY}"})], purpose=PURPOSE, source="311")
    cases = [
        ([("email", "a@example.org"), ("full_name", f"Ada {CANARY}")], "queries[1]", "not searchable"),
        ([("date_of_birth", "1985-12-10")], "queries[0]", "not searchable"),
        ([("shoe_size", CANARY)], "queries[0]", "unknown field"),
        ([("ssn", f"12-{CANARY}")], "queries[0]", "ssn"),  # fails the field's normalizer
    ]
    for queries, where, what in cases:
        with pytest.raises(InvalidArgument) as exc_info:
            client.lookup_many(queries, purpose=PURPOSE)
        rejected(stack, exc_info, where, what)


# --- unknown tokens: one message for every miss -----------------------------------------------

def test_unknown_tokens_are_per_item_not_found_with_one_message(stack: Stack) -> None:
    client = stack.client()
    (ok,) = client.tokenize(
        [Record({"email": "kept@example.org", "phone": "212-555-0100", "ssn": "123-45-6789"})],
        purpose=PURPOSE, source="311",
    )
    before = counts(stack)
    misses = [
        random_token(),                     # never issued
        (random_token(), "email"),          # never issued, field given
        (ok.tokens["email"], "phone"),      # a real token, of another field
        (ok.tokens["phone"], "email"),
        ("000000000" if ok.tokens["ssn"] != "000000000" else "111111111", "ssn"),  # never issued
    ]
    results = client.detokenize([ok.tokens["email"], *misses, (ok.tokens["ssn"], "ssn")], purpose=PURPOSE)
    hit, *missed, fp_hit = results
    assert (hit.code, hit.value) == (0, "kept@example.org")
    assert (fp_hit.code, fp_hit.value) == (0, "123456789")
    assert [r.code for r in missed] == [grpc.StatusCode.NOT_FOUND.value[0]] * len(misses)
    messages = {r.message.encode() for r in missed}
    assert len(messages) == 1, f"misses are distinguishable: {messages!r}"
    assert all(r.value == "" and r.field == "" for r in missed)  # a miss says nothing of the token's field
    # The same message through detokenize_one, for a never-issued token and a wrong-field token.
    for token, field in [(random_token(), None), (ok.tokens["email"], "phone")]:
        with pytest.raises(NotFound) as exc_info:
            client.detokenize_one(token, purpose=PURPOSE, field=field)
        assert exc_info.value.message.encode() in messages
    assert counts(stack) == before


# --- authentication, health, reflection ---------------------------------------------------------

@pytest.mark.parametrize("api_key", [None, "pdvk_" + CANARY + "wrongwrongwrong"])
def test_no_or_wrong_api_key_is_unauthenticated(stack: Stack, api_key: str | None) -> None:
    (ok,) = stack.client().tokenize([Record({"email": "kept@example.org"})], purpose=PURPOSE, source="311")
    before = counts(stack)
    with PdvClient(stack.target, api_key=api_key) as client:
        calls = [
            lambda: client.tokenize([Record({"email": f"{CANARY}@example.org"})], purpose=PURPOSE, source="311"),
            lambda: client.detokenize([ok.tokens["email"]], purpose=PURPOSE),
            lambda: client.lookup("email", "kept@example.org", purpose=PURPOSE),
        ]
        for call in calls:
            with pytest.raises(Unauthenticated) as exc_info:
                call()
            assert_no_echo(stack, str(exc_info.value))
            assert "kept@example.org" not in str(exc_info.value)
    assert counts(stack) == before


def test_health_check_needs_no_api_key(stack: Stack) -> None:
    with grpc.insecure_channel(stack.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "pdv.v1.TokenService"):
            response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_token_service(stack: Stack) -> None:
    with grpc.insecure_channel(stack.target) as channel:
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        (response,) = list(reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        ))
        names = {s.name for s in response.list_services_response.service}
    assert "pdv.v1.TokenService" in names
    assert "grpc.health.v1.Health" in names


@pytest.fixture
def admin_stack(openbao: OpenBaoServer, vault_token: str, database_url: str) -> Iterator[Stack]:
    s = start_stack(openbao, database_url, vault_token, admin_principals=["intake-311"])
    try:
        yield s
    finally:
        s.stop()


def test_every_call_naming_a_subject_refuses_a_malformed_id_the_same_way(admin_stack: Stack) -> None:
    """One check, one message: a caller learns the same thing from every call that names a subject."""
    bad, stack = f"sub_{CANARY}", admin_stack
    client = stack.client()
    calls = {
        "shred_fields": lambda: client.shred_fields(bad, ["email"], reason="test"),
        "place_hold": lambda: client.place_hold(bad, case_id="case-1", reason="test"),
        "release_hold": lambda: client.release_hold(bad, case_id="case-1"),
        "set_consent": lambda: client.set_consent(bad, PURPOSE, opted_out=True),
        "get_consent": lambda: client.get_consent(bad),
        "correct_value": lambda: client.correct_value(bad, "email", "a@example.org", reason="test"),
        "list_corrections": lambda: client.list_corrections(bad),
        "access_report": lambda: client.access_report(bad),
        "open_request": lambda: client.requests.open("access", subject_id=bad, description="test"),
        "list_requests": lambda: client.requests.list(subject_id=bad),
    }
    for name, call in calls.items():
        with pytest.raises(InvalidArgument) as exc_info:
            call()
        assert "malformed subject id" in str(exc_info.value), name
        assert CANARY not in str(exc_info.value), name
    assert CANARY not in stack.log.getvalue()
