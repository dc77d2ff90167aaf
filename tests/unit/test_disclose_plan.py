"""`pdv disclose`'s choice of what to send: opaque tokens anywhere, every value of a column
named for a field, nothing else (vault/cli/disclose_cmds.py)."""

from __future__ import annotations

from vault.cli.disclose_cmds import Plan
from vault.crypto.tokens import random_token


def test_an_opaque_token_is_sent_from_any_column_and_a_named_column_sends_every_value() -> None:
    plan = Plan({"applicant_ssn": "ssn"}, frozenset({"name"}))
    token = random_token()

    assert plan.item("note", token) == token
    assert plan.item(None, token) == token  # a cell beyond the header
    assert plan.item("applicant_ssn", "482913305") == ("482913305", "ssn")
    assert plan.item("applicant_ssn", token) == (token, "ssn")


def test_anything_else_is_left_alone() -> None:
    plan = Plan({"applicant_ssn": "ssn"})
    for column, value in (("note", "482913305"), ("note", "see " + random_token()), ("note", random_token() + " "),
                          ("applicant_ssn", ""), ("applicant_ssn", None), ("count", 7), ("note", "pdv_short")):
        assert plan.item(column, value) is None
