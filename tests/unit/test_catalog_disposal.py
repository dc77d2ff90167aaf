"""The catalog's disposal keys: on_expiry and deidentify_keep, checked with line numbers."""

from __future__ import annotations

import pytest

from vault.catalog import load_catalog, parse_catalog
from vault.errors import ConfigError


def catalog_text(normalizer: str = "text", **extra: str) -> str:
    keys = {"classification": "identifier", "token_kind": "random", "retention": "30d",
            "purposes": "[billing]", "mask": "full", "normalizer": normalizer, "validator": "nonempty", **extra}
    body = "".join(f"    {k}: {v}\n" for k, v in keys.items())
    return f"version: 1\npurposes:\n  billing: bills\nfields:\n  f:\n{body}"


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_shipped_catalog_keeps_the_birth_year_and_shreds_the_rest() -> None:
    catalog = load_catalog()
    dob = catalog.field("date_of_birth")
    assert (dob.on_expiry, dob.deidentify_keep) == ("deidentify", "year")
    assert {f.on_expiry for f in catalog if f.name != "date_of_birth"} == {"shred"}


@pytest.mark.parametrize(("normalizer", "extra", "keep"), [
    ("text", {}, ("shred", None)),
    ("text", {"on_expiry": "shred"}, ("shred", None)),
    ("text", {"on_expiry": "deidentify", "deidentify_keep": "pseudonym"}, ("deidentify", "pseudonym")),
    ("date", {"on_expiry": "deidentify", "deidentify_keep": "year"}, ("deidentify", "year")),
    ("digits", {"on_expiry": "deidentify", "deidentify_keep": "zip3"}, ("deidentify", "zip3")),
])
def test_valid_disposal_keys(normalizer: str, extra: dict, keep: tuple) -> None:
    spec = parse_catalog(catalog_text(normalizer, **extra)).field("f")
    assert (spec.on_expiry, spec.deidentify_keep) == keep


@pytest.mark.parametrize(("normalizer", "extra", "needle", "reason"), [
    ("text", {"on_expiry": "burn"}, "on_expiry", "unknown on_expiry 'burn'"),
    ("text", {"on_expiry": "deidentify"}, "on_expiry", "needs deidentify_keep"),
    ("text", {"deidentify_keep": "year"}, "deidentify_keep", "needs on_expiry: deidentify"),
    ("text", {"on_expiry": "deidentify", "deidentify_keep": "everything"}, "deidentify_keep",
     "unknown deidentify_keep 'everything'"),
    ("text", {"on_expiry": "deidentify", "deidentify_keep": "year"}, "deidentify_keep", "needs normalizer date"),
    ("date", {"on_expiry": "deidentify", "deidentify_keep": "zip3"}, "deidentify_keep", "needs normalizer digits"),
])
def test_disposal_key_errors_name_the_line(normalizer: str, extra: dict, needle: str, reason: str) -> None:
    text = catalog_text(normalizer, **extra)
    with pytest.raises(ConfigError) as info:
        parse_catalog(text, "city.yaml")
    assert str(info.value).startswith(f"city.yaml, line {line_of(text, needle)}: ")
    assert reason in str(info.value)
