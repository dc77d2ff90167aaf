"""Adding fields to an existing subject takes the `append` grant: `tokenize` alone collects
new subjects only, and a caller without the grant gets the same answer for a subject that
exists and one that does not (no existence oracle); every refusal is logged. Through the
generated client against a real OpenBao, on both databases."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from pdv_client import PdvClient, Record
from pdv_client.errors import NotFound, PdvError, PermissionDenied
from sqlalchemy import text

from tests.conftest import DATABASES
from tests.support.stack import Stack, stack_with_policy
from vault.keys.openbao import OpenBaoServer
from vault.services.tokenize_model import new_subject_id

POLICY_FILE = Path(__file__).with_name("append_policy.yaml")
PURPOSE = "service_delivery"
_n = itertools.count(1)


@pytest.fixture(scope="module", params=DATABASES)
def appending(
    request: pytest.FixtureRequest, openbao: OpenBaoServer, vault_token: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, dict[str, PdvClient]]]:
    named = ("loader-svc", "enricher-svc")
    with stack_with_policy(openbao, vault_token, request.param, tmp_path_factory.mktemp("append"), POLICY_FILE, named) as (
            stack, keys):
        yield stack, {p: stack.client(keys[p]) for p in named}


def new_subject(clients: dict[str, PdvClient]) -> str:
    (result,) = clients["loader-svc"].tokenize([Record({"full_name": "Grace Hopper"})], purpose=PURPOSE, source="t")
    return result.subject_id


def email() -> str:
    return f"append{next(_n)}@example.org"


def values_of(stack: Stack, subject_id: str) -> int:
    with stack.app.store.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM field_values WHERE subject_id = :s"), {"s": subject_id}).scalar_one()


def denials(stack: Stack, principal: str) -> int:
    with stack.app.store.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM access_log WHERE principal = :p AND action = 'tokenize' "
                                 "AND outcome = 'denied' AND field = 'email'"), {"p": principal}).scalar_one()


def refusal(call: object) -> tuple[type, str]:
    with pytest.raises(PdvError) as caught:
        call()  # type: ignore[operator]
    return type(caught.value), caught.value.message


def test_tokenize_alone_cannot_add_to_a_subject_and_cannot_tell_whether_it_exists(
    appending: tuple[Stack, dict[str, PdvClient]]
) -> None:
    stack, clients = appending
    loader, existing, unknown = clients["loader-svc"], new_subject(clients), new_subject_id()
    before = denials(stack, "loader-svc")
    answers = [
        refusal(lambda: loader.tokenize([Record({"email": email()}, subject_id=s)], purpose=PURPOSE, source="t"))
        for s in (existing, unknown)
    ]
    assert answers[0] == answers[1]
    assert answers[0][0] is PermissionDenied and "not permitted to add field 'email' to an existing subject" in answers[0][1]
    partial = [loader.tokenize([Record({"email": email()}, subject_id=s)], purpose=PURPOSE, source="t", mode="partial")[0]
               for s in (existing, unknown)]
    assert [(r.subject_id, r.tokens, [(e.field, e.code, e.message) for e in r.errors]) for r in partial] == [
        ("", {}, [("email", 7, partial[0].errors[0].message)])] * 2
    assert values_of(stack, existing) == 1  # only the name it was created with
    assert denials(stack, "loader-svc") == before + 4  # each refusal logged


def test_an_append_grant_adds_only_its_fields_for_its_purposes(appending: tuple[Stack, dict[str, PdvClient]]) -> None:
    stack, clients = appending
    enricher, subject = clients["enricher-svc"], new_subject(clients)
    address = email()
    (added,) = enricher.tokenize([Record({"email": address}, subject_id=subject)], purpose=PURPOSE, source="t")
    assert added.subject_id == subject
    assert clients["loader-svc"].detokenize_one(added.tokens["email"], purpose=PURPOSE) == address
    with pytest.raises(PermissionDenied, match="not permitted to add field 'street_address'"):
        enricher.tokenize([Record({"street_address": "1 Navy Way"}, subject_id=subject)], purpose=PURPOSE, source="t")
    with pytest.raises(PermissionDenied, match="for purpose 'billing'"):
        enricher.tokenize([Record({"email": email()}, subject_id=subject)], purpose="billing", source="t")
    with pytest.raises(PermissionDenied, match="not permitted to tokenize field 'email'"):
        enricher.tokenize([Record({"email": email()})], purpose=PURPOSE, source="t")  # append creates nothing
    with pytest.raises(NotFound, match="unknown subject_id"):  # it may append, so it may learn the id is unknown
        enricher.tokenize([Record({"email": email()}, subject_id=new_subject_id())], purpose=PURPOSE, source="t")
    assert values_of(stack, subject) == 2
