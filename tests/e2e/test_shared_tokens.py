"""A deterministic token shared by several subjects is read row by row (DESIGN §5): the
caller gets what it may see, and each access is logged against its own subject.

The same email is tokenized for two subjects under different purposes, which gives one
token: `early` collected it for benefits_eligibility, `late` (the newer row) for billing.
The catalog lets billing use only service_delivery data and benefits_eligibility only its
own, so a reader for either purpose may see exactly one of the rows; identity_verification
may use both. On a real OpenBao and gRPC server, on both databases.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from pdv_client import Match, Record

from tests.conftest import DATABASES
from tests.support.access_log import logged_items
from tests.support.stack import PRINCIPAL, Stack, stack_with_policy
from vault.crypto import tokens as tk
from vault.keys.openbao import OpenBaoServer
from vault.services.common import Caller

POLICY_FILE = Path(__file__).with_name("shared_token_policy.yaml")
READERS = ("billing-app", "benefits-app", "both-app", "masked-app", "privacy-officer")
OK, NOT_FOUND = 0, 5
_emails = itertools.count(1)
_requests = itertools.count(1)


@pytest.fixture(scope="module", params=DATABASES)
def shared_stack(
    request: pytest.FixtureRequest, openbao: OpenBaoServer, vault_token: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("shared")
    with stack_with_policy(openbao, vault_token, request.param, tmp, POLICY_FILE, READERS) as s:
        yield s


def share(stack: Stack, keys: dict[str, str]) -> tuple[str, str, str, str]:
    """One email for two new subjects: (early, late, the one token, the normalized email)."""
    email = f"Shared{next(_emails)}@Example.org"
    loader = stack.client(keys[PRINCIPAL])
    (early,) = loader.tokenize([Record({"email": email})], purpose="benefits_eligibility", source="benefits")
    (late,) = loader.tokenize([Record({"email": email})], purpose="billing", source="utility")
    assert early.tokens["email"] == late.tokens["email"]  # deterministic: one token for both
    return early.subject_id, late.subject_id, early.tokens["email"], email.lower()


def logged(stack: Stack, request_id: str) -> dict[str | None, str]:
    """subject id -> outcome of the access-log items of one request."""
    rows = [(r["subject_id"], r["outcome"])  # the client numbers its batches
            for r in logged_items(stack.app.store, request_id=f"{request_id}/0")]
    out = dict(rows)
    assert len(out) == len(rows), rows  # one row per subject
    return out


def read(stack: Stack, keys: dict[str, str], reader: str, purpose: str, token: str, email: str):  # type: ignore[no-untyped-def]
    """Detokenize and look up as `reader`: the result, the matches, and each call's log by subject."""
    client = stack.client(keys[reader])
    detokenize_id, lookup_id = f"shared-d{next(_requests)}", f"shared-l{next(_requests)}"
    (result,) = client.detokenize([token], purpose=purpose, request_id=detokenize_id)
    matches = client.lookup("email", email, purpose=purpose, request_id=lookup_id)
    return result, matches, logged(stack, detokenize_id), logged(stack, lookup_id)


@pytest.mark.parametrize(
    ("reader", "purpose", "sees"),
    [
        ("billing-app", "billing", {"late"}),
        ("benefits-app", "benefits_eligibility", {"early"}),
        ("both-app", "billing", {"late"}),
        ("both-app", "benefits_eligibility", {"early"}),
        ("both-app", "identity_verification", {"early", "late"}),
    ],
)
def test_a_reader_gets_the_value_if_it_may_see_any_row_and_each_row_is_logged_against_its_subject(
    shared_stack: tuple[Stack, dict[str, str]], reader: str, purpose: str, sees: set[str]
) -> None:
    stack, keys = shared_stack
    early, late, token, email = share(stack, keys)
    subjects = {"early": early, "late": late}
    result, matches, detokenize_log, lookup_log = read(stack, keys, reader, purpose, token, email)

    assert (result.code, result.field, result.value) == (OK, "email", email)  # one value: the rows hold the same one
    assert sorted(matches, key=lambda m: m.subject_id) == sorted(
        (Match(subjects[s], token) for s in sees), key=lambda m: m.subject_id
    )
    expected = {subjects[s]: "ok" if s in sees else "denied_purpose" for s in ("early", "late")}
    assert detokenize_log == expected
    assert lookup_log == expected


def test_a_masked_reader_gets_one_mask_and_both_rows_are_logged(shared_stack: tuple[Stack, dict[str, str]]) -> None:
    stack, keys = shared_stack
    early, late, token, email = share(stack, keys)
    request_id = f"shared-m{next(_requests)}"
    (result,) = stack.client(keys["masked-app"]).detokenize([token], purpose="identity_verification", request_id=request_id)
    assert result.code == OK and result.value != email and result.value.endswith("@example.org")
    assert logged(stack, request_id) == {early: "ok_masked", late: "ok_masked"}


def test_each_holders_opt_out_is_checked_on_its_own_row(shared_stack: tuple[Stack, dict[str, str]]) -> None:
    stack, keys = shared_stack
    early, late, token, email = share(stack, keys)
    officer = stack.client(keys["privacy-officer"])
    assert officer.set_consent(late, "billing", opted_out=True)
    assert officer.set_consent(early, "identity_verification", opted_out=True)
    unknown = stack.client(keys["billing-app"]).detokenize([tk.random_token()], purpose="billing")[0]

    # The newer holder opted out of billing: a billing reader finds nothing, exactly as for an unknown token.
    result, matches, detokenize_log, lookup_log = read(stack, keys, "billing-app", "billing", token, email)
    assert (result.code, result.field, result.value, result.message) == (NOT_FOUND, "", "", unknown.message)
    assert matches == []
    assert detokenize_log == {early: "denied_purpose", late: "denied_consent"}
    assert lookup_log == {**detokenize_log, None: "not_found"}  # and a row for the empty answer

    # The older holder opted out of identity_verification: the other row is still read, and both are logged.
    result, matches, detokenize_log, lookup_log = read(stack, keys, "both-app", "identity_verification", token, email)
    assert (result.code, result.value) == (OK, email)
    assert matches == [Match(late, token)]
    assert detokenize_log == lookup_log == {early: "denied_consent", late: "ok"}

    # benefits_eligibility may use only the older row, whose holder did not opt out of it.
    result, matches, detokenize_log, _ = read(stack, keys, "benefits-app", "benefits_eligibility", token, email)
    assert (result.code, result.value) == (OK, email) and matches == [Match(early, token)]
    assert detokenize_log == {early: "ok", late: "denied_purpose"}


def test_a_shredded_holder_leaves_the_other_rows_readable(shared_stack: tuple[Stack, dict[str, str]]) -> None:
    stack, keys = shared_stack
    early, late, token, email = share(stack, keys)
    stack.app.shredder.shred_subjects(Caller("privacy-officer", f"shared-s{next(_requests)}"), [early], "test")
    result, matches, detokenize_log, lookup_log = read(stack, keys, "both-app", "identity_verification", token, email)
    assert (result.code, result.value) == (OK, email) and matches == [Match(late, token)]
    assert detokenize_log == lookup_log == {late: "ok"}  # the shredded row is gone, not refused
