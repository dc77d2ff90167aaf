"""Sequential storage keys behind random tokens, end to end, on SQLite and PostgreSQL.

A random-kind token is AES-256 of its row's locator and a random check stored only in the
row. Even with the token key leaked (taken here from the running server), a token made for a
real row's locator, a token altered by one character, or the token of a locator never issued
answers exactly as an unknown token does, and is logged as one; a shred leaves no row to find.
"""

from __future__ import annotations

from pdv_client import Record
from sqlalchemy import text

from tests.support.access_log import logged_items
from tests.support.stack import Stack
from vault.crypto import tokens as tk
from vault.crypto.locators import LocatorCipher
from vault.services.common import Caller

PURPOSE = "benefits_eligibility"
OK, NOT_FOUND = 0, 5
RECORD = {"full_name": "Grace Hopper", "phone": "(212) 555-0199", "email": "grace@example.org", "ssn": "123-45-6780"}


def _rows(stack: Stack, subject_id: str) -> dict[str, tuple]:
    with stack.app.store.engine.connect() as conn:
        rows = conn.execute(text("SELECT field, token, locator, token_check FROM field_values WHERE subject_id = :s"),
                            {"s": subject_id})
        return {r[0]: (r[1], r[2], None if r[3] is None else bytes(r[3])) for r in rows}


def test_random_kind_tokens_are_sealed_locators_and_the_others_keep_the_token_index(stack: Stack) -> None:
    (result,) = stack.client().tokenize([Record(RECORD)], purpose=PURPOSE, source="311")
    rows = _rows(stack, result.subject_id)
    cipher = LocatorCipher(stack.app.tokenizer.index_keys.locator_key("city"))
    for field in ("full_name", "phone"):  # random kind: the row is found by its locator
        token, locator, check = rows[field]
        assert token == result.tokens[field] and tk.is_opaque_token(token)
        assert cipher.open([token]) == [(locator, check)]
    assert rows["full_name"][1] != rows["phone"][1]
    for field in ("email", "ssn"):  # deterministic and format-preserving: by the token index
        assert rows[field][1:] == (None, None)
    values = {r.field: r.value for r in stack.client().detokenize(
        [(t, f) for f, t in result.tokens.items()], purpose=PURPOSE)}
    assert values == {"full_name": "Grace Hopper", "phone": "2125550199", "email": "grace@example.org",
                      "ssn": "123456780"}


def test_with_the_key_leaked_no_token_but_the_issued_one_reads_the_row(stack: Stack) -> None:
    client = stack.client()
    (result,) = client.tokenize([Record(RECORD)], purpose=PURPOSE, source="311")
    token, locator, _ = _rows(stack, result.subject_id)["full_name"]
    cipher = LocatorCipher(stack.app.tokenizer.index_keys.locator_key("city"))  # as if leaked
    forged = [t for t, _ in cipher.seal([locator, locator])]  # the row's locator, checks of our own
    (unissued, _), = cipher.seal([locator + 10**9])
    altered = token[:8] + ("B" if token[8] != "B" else "C") + token[9:]
    unknown = tk.random_token()
    asked = [unknown, *forged, unissued, altered]
    answers = client.detokenize(asked, purpose=PURPOSE)
    miss = answers[0]
    assert (miss.code, miss.field, miss.value) == (NOT_FOUND, "", "")
    for answer in answers[1:]:
        assert (answer.code, answer.field, answer.value, answer.message) == (NOT_FOUND, "", "", miss.message)
    logged = [(i["token"], i["subject_id"], i["outcome"]) for i in logged_items(stack.app.store, action="detokenize")]
    assert [item for item in logged if item[0] in asked] == [(t, None, "not_found") for t in asked]
    assert client.detokenize([token], purpose=PURPOSE)[0].value == "Grace Hopper"  # the issued token still reads it


def test_a_shred_leaves_nothing_under_the_locator(stack: Stack) -> None:
    client = stack.client()
    (result,) = client.tokenize([Record(RECORD)], purpose=PURPOSE, source="311")
    token, locator, check = _rows(stack, result.subject_id)["phone"]
    stack.app.shredder.shred_subjects(Caller("privacy-officer", "seq-shred"), [result.subject_id], "test")
    with stack.app.store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM field_values WHERE locator = :l OR token_check = :c"),
                            {"l": locator, "c": check}).scalar_one() == 0
    unknown = client.detokenize([tk.random_token()], purpose=PURPOSE)[0]
    gone = client.detokenize([token], purpose=PURPOSE)[0]
    assert (gone.code, gone.value, gone.message) == (NOT_FOUND, "", unknown.message)

