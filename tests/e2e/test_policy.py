"""The access policy end to end: the matrix role x RPC x field x purpose, generated from
tests/e2e/policy_matrix.yaml (never hand-listed), masking, oracle resistance, purpose
limitation, consent and rate limits, on a real OpenBao and SQLite."""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from pdv.v1 import token_pb2
from pdv_client import Record
from pdv_client.errors import InvalidArgument, PermissionDenied, ResourceExhausted
from pdv_client.raw import RawTokenCalls

from tests.conftest import DATABASES
from tests.support.access_log import logged_items
from tests.support.databases import database
from tests.support.stack import PRINCIPAL, Stack, stack_with_policy, start_stack
from vault.catalog import load_catalog
from vault.crypto import tokens as tk
from vault.keys.openbao import OpenBaoServer
from vault.policy import MASKED, PLAIN, load_policy
from vault.services.common import Caller

POLICY_FILE = Path(__file__).with_name("policy_matrix.yaml")
CATALOG = load_catalog()
POLICY = load_policy(POLICY_FILE, CATALOG)
TODAY = datetime.date.today()
# Everyone the policy names, plus one principal it does not know at all.
PRINCIPALS = sorted({*POLICY.grants, *POLICY.partners, "stranger"})
FIELDS = ("email", "phone", "ssn", "date_of_birth")
ACCESS_PURPOSES = ("service_delivery", "benefits_eligibility", "identity_verification")
OK, NOT_FOUND, PERMISSION_DENIED = 0, 5, 7


def sample(field: str, n: int) -> str:
    """A distinct valid value per (field, n), so deterministic tokens never collide across tests."""
    return {
        "email": f"matrix{n}@example.org",
        "phone": f"(212) 555-{1000 + n:04d}",
        "ssn": f"123-45-{1000 + n:04d}",
        "date_of_birth": f"19{50 + n % 40}-0{1 + n % 9}-1{n % 10}",
    }[field]


_counter = itertools.count(1)


@pytest.fixture(scope="module", params=DATABASES)
def policy_stack(
    request: pytest.FixtureRequest, openbao: OpenBaoServer, vault_token: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, dict[str, str]]]:
    """One stack per database for the whole module: the checks' SQL runs on both."""
    tmp = tmp_path_factory.mktemp("policy")
    with stack_with_policy(openbao, vault_token, request.param, tmp, POLICY_FILE, PRINCIPALS) as s:
        yield s


def logged(stack: Stack, where: str, value: str) -> list[str]:
    """Outcomes of the access-log items whose `where` equals `value`, oldest first."""
    return [r["outcome"] for r in logged_items(stack.app.store, **{where: value})]


def outcomes(stack: Stack, token: str) -> list[str]:
    return logged(stack, "token", token)


def load(stack: Stack, keys: dict[str, str], fields: dict[str, str], purpose: str) -> tuple[str, dict[str, str]]:
    (result,) = stack.client(keys["loader-svc"]).tokenize([Record(fields)], purpose=purpose, source="test")
    return result.subject_id, result.tokens


# --- the matrix ----------------------------------------------------------------------

COLLECTED = [(f, p) for f in FIELDS for p in sorted(CATALOG.field(f).purposes) if p in ACCESS_PURPOSES]


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_tokenize_matrix_matches_the_policy(policy_stack: tuple[Stack, dict[str, str]], principal: str) -> None:
    stack, keys = policy_stack
    client = stack.client(keys[principal])
    for field, purpose in COLLECTED:
        record = Record({field: sample(field, next(_counter))})
        if POLICY.allows(principal, "tokenize", field, purpose, TODAY):
            (result,) = client.tokenize([record], purpose=purpose, source="test")
            assert field in result.tokens, (field, purpose)
        else:
            with pytest.raises(PermissionDenied, match="not permitted to tokenize"):
                client.tokenize([record], purpose=purpose, source="test")


@pytest.fixture(scope="module")
def collected(policy_stack: tuple[Stack, dict[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
    """(field, collection purpose) -> (token, normalized value), loaded by the loader role."""
    stack, keys = policy_stack
    out = {}
    for field, purpose in COLLECTED:
        value = sample(field, 500 + len(out))
        _, tokens = load(stack, keys, {field: value}, purpose)
        out[(field, purpose)] = (tokens[field], CATALOG.field(field).normalize(value))
    return out


def same_domain(principal: str) -> bool:
    """Whether `principal` reads tokens of the loader's domain (a partner has a domain of its own)."""
    return POLICY.domain_of(principal) == POLICY.domain_of("loader-svc")


def expected_read(principal: str, field: str, access: str, collected_for: str, normalized: str) -> tuple[int, str]:
    view = POLICY.view(principal, field, access, TODAY)
    if view is None:
        return PERMISSION_DENIED, ""
    if not CATALOG.compatible(access, collected_for) or not same_domain(principal):
        return NOT_FOUND, ""
    return OK, normalized if view == PLAIN else CATALOG.field(field).masked(normalized)


@pytest.mark.parametrize("principal", [p for p in PRINCIPALS if p != "stranger"])
def test_detokenize_matrix_matches_the_policy(
    policy_stack: tuple[Stack, dict[str, str]], collected: dict, principal: str
) -> None:
    stack, keys = policy_stack
    client = stack.client(keys[principal])
    refs = [(token, field) for (field, _), (token, _) in collected.items()]
    for access in ACCESS_PURPOSES:
        results = client.detokenize(refs, purpose=access)
        for ((field, collected_for), (token, normalized)), result in zip(collected.items(), results):
            code, value = expected_read(principal, field, access, collected_for, normalized)
            assert (result.code, result.value) == (code, value), (principal, field, access, collected_for)
            if code == OK and POLICY.view(principal, field, access, TODAY) == MASKED and field != "date_of_birth":
                assert normalized not in result.value


@pytest.mark.parametrize("principal", [p for p in PRINCIPALS if p != "stranger"])
def test_lookup_matrix_matches_the_policy(
    policy_stack: tuple[Stack, dict[str, str]], collected: dict, principal: str
) -> None:
    stack, keys = policy_stack
    client = stack.client(keys[principal])
    for (field, collected_for), (token, normalized) in collected.items():
        if not CATALOG.field(field).searchable:
            continue
        for access in ACCESS_PURPOSES:
            if not POLICY.allows(principal, "lookup", field, access, TODAY):
                with pytest.raises(PermissionDenied, match="not permitted to look up"):
                    client.lookup(field, normalized, purpose=access)
                continue
            found = [m.token for m in client.lookup(field, normalized, purpose=access)]
            expected = [token] if CATALOG.compatible(access, collected_for) and same_domain(principal) else []
            assert found == expected, (field, access)


def test_the_matrix_covers_allowed_and_denied_cells() -> None:
    """Guard against a policy file edit that makes the generated matrix trivial."""
    views = {POLICY.view(p, f, a, TODAY) for p in PRINCIPALS for f in FIELDS for a in ACCESS_PURPOSES}
    assert views == {PLAIN, MASKED, None}
    assert not POLICY.may_read_any("old-vendor", "benefits_eligibility", TODAY)  # expired partner
    assert POLICY.view("acme-mail", "email", "service_delivery", TODAY) == PLAIN
    assert not same_domain("acme-mail")  # a partner's own token domain: the loader's tokens are not its


# --- masking and oracle resistance ---------------------------------------------------

def raw_detokenize(stack: Stack, api_key: str, purpose: str, items: list[tuple[str, str]]) -> bytes:
    body = token_pb2.DetokenizeRequest(
        purpose=purpose, items=[token_pb2.DetokenizeItem(token=t, field=f) for t, f in items]
    ).SerializeToString()
    with RawTokenCalls(stack.target, api_key=api_key) as raw:
        return raw.call("Detokenize", body)


def test_a_masked_caller_never_receives_the_plaintext(policy_stack: tuple[Stack, dict[str, str]]) -> None:
    stack, keys = policy_stack
    _, tokens = load(stack, keys, {"ssn": "123-45-9876"}, "benefits_eligibility")
    # The clerk holds only detokenize_masked on ssn for benefits_eligibility.
    body = raw_detokenize(stack, keys[PRINCIPAL], "benefits_eligibility", [(tokens["ssn"], "ssn")])
    for leak in (b"123459876", b"123-45-9876", b"12345"):
        assert leak not in body
    (result,) = token_pb2.DetokenizeResponse.FromString(body).results
    assert (result.code, result.value) == (OK, "***-**-9876")
    assert outcomes(stack, tokens["ssn"])[-1] == "ok_masked"


def _item(body: bytes) -> bytes:
    (result,) = token_pb2.DetokenizeResponse.FromString(body).results
    result.token = ""  # the token as asked is echoed; everything else must match byte for byte
    return result.SerializeToString()


def test_forbidden_unknown_and_shredded_tokens_answer_byte_identically(policy_stack: tuple[Stack, dict[str, str]]) -> None:
    stack, keys = policy_stack
    subject, tokens = load(stack, keys, {"date_of_birth": "1961-02-03", "email": "oracle@example.org"}, "benefits_eligibility")
    shredded_subject, shredded = load(stack, keys, {"date_of_birth": "1962-02-03"}, "benefits_eligibility")
    stack.app.shredder.shred_subjects(Caller("privacy-officer", "shred-1"), [shredded_subject], "test")
    unknown = tk.random_token()
    clerk = keys[PRINCIPAL]
    # Value-level refusal: the clerk may read email/phone for service_delivery, not date_of_birth.
    forbidden = _item(raw_detokenize(stack, clerk, "service_delivery", [(tokens["date_of_birth"], "")]))
    assert forbidden == _item(raw_detokenize(stack, clerk, "service_delivery", [(unknown, "")]))
    assert forbidden == _item(raw_detokenize(stack, clerk, "service_delivery", [(shredded["date_of_birth"], "")]))
    assert token_pb2.DetokenizeResult.FromString(forbidden).code == NOT_FOUND
    # Caller-level refusal: no read grant for the purpose at all -> PERMISSION_DENIED for any token.
    loader = keys["loader-svc"]
    denied = _item(raw_detokenize(stack, loader, "benefits_eligibility", [(tokens["email"], "")]))
    assert denied == _item(raw_detokenize(stack, loader, "benefits_eligibility", [(unknown, "")]))
    assert token_pb2.DetokenizeResult.FromString(denied).code == PERMISSION_DENIED
    assert outcomes(stack, tokens["date_of_birth"])[-1] == "denied"
    assert outcomes(stack, tokens["email"])[-1] == "denied"
    assert outcomes(stack, unknown) == ["not_found", "denied"]


# --- purpose limitation and consent ----------------------------------------------------

def test_an_incompatible_purpose_is_denied_and_logged_as_such(policy_stack: tuple[Stack, dict[str, str]]) -> None:
    stack, keys = policy_stack
    _, tokens = load(stack, keys, {"email": "purpose@example.org"}, "service_delivery")
    # benefits-app may read email for benefits_eligibility, but this email was collected for
    # service_delivery, which the catalog does not make compatible with benefits_eligibility.
    (result,) = stack.client(keys["benefits-app"]).detokenize([tokens["email"]], purpose="benefits_eligibility")
    assert (result.code, result.value) == (NOT_FOUND, "")
    assert not stack.client(keys["benefits-app"]).lookup("email", "purpose@example.org", purpose="benefits_eligibility")
    assert outcomes(stack, tokens["email"])[-2:] == ["denied_purpose", "denied_purpose"]


def test_a_consent_opt_out_denies_reads_and_is_logged(policy_stack: tuple[Stack, dict[str, str]]) -> None:
    stack, keys = policy_stack
    subject, tokens = load(stack, keys, {"ssn": "123-45-4321"}, "benefits_eligibility")
    officer, reader = stack.client(keys["privacy-officer"]), stack.client(keys["benefits-app"])
    with pytest.raises(PermissionDenied):
        stack.client(keys[PRINCIPAL]).set_consent(subject, "benefits_eligibility", opted_out=True)
    with pytest.raises(InvalidArgument, match="purpose is not declared in the field catalog; declared purposes: benefits_eligibility, billing, "):
        officer.set_consent(subject, "marketing", opted_out=True)

    assert officer.set_consent(subject, "benefits_eligibility", opted_out=True) is True
    assert officer.get_consent(subject) == ["benefits_eligibility"]
    (result,) = reader.detokenize([(tokens["ssn"], "ssn")], purpose="benefits_eligibility")
    assert (result.code, result.value) == (NOT_FOUND, "")
    assert reader.lookup("ssn", "123-45-4321", purpose="benefits_eligibility") == []
    assert outcomes(stack, tokens["ssn"])[-2:] == ["denied_consent", "denied_consent"]

    assert officer.set_consent(subject, "benefits_eligibility", opted_out=False) is True
    assert officer.get_consent(subject) == []
    (result,) = reader.detokenize([(tokens["ssn"], "ssn")], purpose="benefits_eligibility")
    assert (result.code, result.value) == (OK, "123454321")
    # The clerk's refused opt-out is logged too.
    assert [r["outcome"] for r in logged_items(stack.app.store, action="consent", subject_id=subject)] == [
        "denied", "opt_out", "ok", "opt_in", "ok"]


# --- rate limits -------------------------------------------------------------------------

def test_detokenize_and_lookup_are_rate_limited_per_principal(
    openbao: OpenBaoServer, vault_token: str, tmp_path: Path
) -> None:
    stack = start_stack(openbao, f"sqlite:///{tmp_path / 'pdv.db'}", vault_token,
                        rate_limit_per_second=0.001, rate_limit_burst=3)
    try:
        client = stack.client()
        (result,) = client.tokenize([Record({"email": "rate@example.org"})], purpose="service_delivery", source="t")
        token = result.tokens["email"]
        assert [r.code for r in client.detokenize([token, token], purpose="service_delivery")] == [OK, OK]
        assert client.lookup("email", "rate@example.org", purpose="service_delivery")
        with pytest.raises(ResourceExhausted, match="rate limit"):
            client.detokenize([token], purpose="service_delivery")
        with pytest.raises(ResourceExhausted):
            client.lookup("email", "rate@example.org", purpose="service_delivery")
    finally:
        stack.stop()
