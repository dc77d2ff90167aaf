"""The field catalog: the shipped catalog, the built-in rules, masks and load errors."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from vault import catalog_rules
from vault.catalog import Catalog, FieldSpec, TokenKind, load_catalog, parse_catalog
from vault.errors import ConfigError, InvalidInput, InvalidValue, UnknownField

CANARY = "CANARY-7731"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def spec(normalizer: str, validator: str, mask: str = "full", **extra) -> FieldSpec:
    base = dict(name="f", classification="identifier", token_kind=TokenKind.RANDOM,
                retention=datetime.timedelta(days=1), purposes=frozenset({"p"}),
                searchable=False, mask=mask, normalizer=normalizer, validator=validator)
    return FieldSpec(**{**base, **extra})


# --- the shipped catalog --------------------------------------------------------------

def test_default_catalog_loads(catalog):
    for name in ("full_name", "date_of_birth", "ssn", "drivers_license", "email", "phone",
                 "street_address", "utility_account", "device_id"):
        assert name in catalog
        assert catalog.field(name).name == name
    assert len(catalog) >= 12
    assert {"service_delivery", "billing", "court_proceedings"} <= catalog.purposes
    assert catalog.names == tuple(f.name for f in catalog)


def test_default_catalog_choices(catalog):
    ssn = catalog.field("ssn")
    assert ssn.token_kind is TokenKind.FORMAT_PRESERVING and ssn.searchable
    assert ssn.classification == "sensitive"
    assert not catalog.field("date_of_birth").searchable
    assert catalog.field("email").token_kind is TokenKind.DETERMINISTIC
    assert catalog.field("utility_account").retention == datetime.timedelta(days=2557)


def test_unknown_field(catalog):
    with pytest.raises(UnknownField) as info:
        catalog.field("shoe_size")
    assert info.value.field == "shoe_size"
    assert "shoe_size" not in catalog


def test_retention_for_purpose(catalog):
    email = catalog.field("email")
    assert email.retention_for("billing") == datetime.timedelta(days=2557)
    assert email.retention_for("service_delivery") == email.retention
    with pytest.raises(InvalidInput, match="email: 'court_proceedings'"):
        email.retention_for("court_proceedings")


def test_load_catalog_from_path(tmp_path, catalog):
    path = tmp_path / "c.yaml"
    path.write_text(minimal())
    assert load_catalog(path).names == ("f",)
    with pytest.raises(ConfigError, match="cannot read"):
        load_catalog(tmp_path / "missing.yaml")


def test_specs_are_hashable(catalog):
    assert len({f for f in catalog}) == len(catalog)


# --- normalizers and validators ---------------------------------------------------------

GOOD = [
    ("text", "nonempty", "  a \t b\n ", "a b"),
    ("email", "email", "  John.Doe@Example.ORG ", "john.doe@example.org"),
    ("digits", "ssn", "123-45-6789", "123456789"),
    ("digits", "ssn", "123 45 6789", "123456789"),
    ("digits", "utility_account", "(0012) 3456.78", "0012345678"),
    ("phone", "phone_nanp", "+1 (212) 555-0100", "2125550100"),
    ("phone", "phone_nanp", "1-212-555-0100", "2125550100"),
    ("phone", "phone_nanp", "212.555.0100", "2125550100"),
    ("date", "date_past", " 1984-02-29 ", "1984-02-29"),
    ("date", "date_past", "1900-01-01", "1900-01-01"),
    ("upper_alnum", "drivers_license", "d123-456 789", "D123456789"),
    ("upper_alnum", "device_id", "00:1a:2b:3c:4d:5e", "001A2B3C4D5E"),
    ("upper_alnum", "device_id", "123e4567-e89b-12d3-a456-426614174000",
     "123E4567E89B12D3A456426614174000"),
    ("upper_alnum", "alnum_id", "2024-cr-001234", "2024CR001234"),
    ("upper_alnum", "license_plate", "abc 1234", "ABC1234"),
    ("text", "name", "  Mary-Jane  O'Connor Jr. ", "Mary-Jane O'Connor Jr."),
    ("text", "name", "José Nuñez", "José Nuñez"),
    ("text", "name", "Zoë D’Arcy", "Zoë D’Arcy"),
    ("text", "name", "李小龍", "李小龍"),
    ("address", "address", " 12  Main st\tApt 3 ", "12 MAIN ST APT 3"),
]


@pytest.mark.parametrize(("normalizer", "validator", "raw", "expected"), GOOD)
def test_good_values_normalize(normalizer, validator, raw, expected):
    assert spec(normalizer, validator).normalize(raw) == expected


BAD = [  # every invalid value carries the canary, so the message must not echo it
    ("text", "nonempty", "   ", "must not be empty"),
    ("email", "email", f"{CANARY}", "email address"),
    ("email", "email", f"{CANARY}@@example.org", "email address"),
    ("email", "email", f"{CANARY}@localhost", "email address"),
    ("email", "email", f"{CANARY}@example..org", "email address"),
    ("email", "email", f"{CANARY} x@example.org", "email address"),
    ("email", "email", "a" * 250 + f"@{CANARY}.org".lower(), "email address"),
    ("digits", "ssn", f"{CANARY}", "only digits"),
    ("digits", "ssn", "7731-7731", "9 digits"),
    ("digits", "ssn", "000-77-3100", "area"),
    ("digits", "ssn", "666-77-3100", "area"),
    ("digits", "ssn", "977-31-7731", "area"),
    ("digits", "ssn", "773-00-7731", "group or serial"),
    ("digits", "ssn", "773-17-0000", "group or serial"),
    ("digits", "ssn", "７７３１７７３１１", "only digits"),  # full-width digits
    ("digits", "utility_account", "77317", "6-16 digits"),
    ("digits", "utility_account", "7731" * 5, "6-16 digits"),
    ("phone", "phone_nanp", f"+44 {CANARY}", "only digits"),
    ("phone", "phone_nanp", "+44 20 7731 7731", "10-digit"),
    ("phone", "phone_nanp", "773-1773", "10-digit"),
    ("date", "date_past", f"{CANARY}", "YYYY-MM-DD"),
    ("date", "date_past", "1977-31-07", "YYYY-MM-DD"),
    ("date", "date_past", "1977-02-29", "YYYY-MM-DD"),
    ("date", "date_past", "07/31/1977", "YYYY-MM-DD"),
    ("date", "date_past", "1877-07-31", "before 1900"),
    ("date", "date_past", "7731-07-31", "future"),
    ("upper_alnum", "drivers_license", f"{CANARY}!", "letters A-Z and digits"),
    ("upper_alnum", "drivers_license", "7731", "5-20"),
    ("upper_alnum", "drivers_license", "CANARY7731" * 3, "5-20"),
    ("upper_alnum", "drivers_license", "ÇANARY7731", "letters A-Z and digits"),
    ("upper_alnum", "device_id", "C7731", "8-64"),
    ("upper_alnum", "license_plate", "CANARY7731", "2-8"),
    ("upper_alnum", "alnum_id", "C77", "4-32"),
    ("text", "name", f"{CANARY}", "only letters"),
    ("text", "name", "CANARY <script>", "only letters"),
    ("text", "name", "-'.", "must contain a letter"),
    ("text", "name", "CANARY" * 40, "1-200"),
    ("address", "address", "C7", "3-300"),
    ("address", "address", f"{CANARY}\x00", "control characters"),
    ("address", "address", "---", "letter or digit"),
]


@pytest.mark.parametrize(("normalizer", "validator", "raw", "rule"), BAD)
def test_bad_values_rejected_without_echo(normalizer, validator, raw, rule):
    with pytest.raises(InvalidValue) as info:
        spec(normalizer, validator, name="somefield").normalize(raw)
    message = str(info.value)
    assert message.startswith("somefield: ")
    assert rule in message
    for part in ("CANARY", "7731", "canary", raw.strip() or "\x00"):
        assert part not in message
    # No chained exception may carry the value either.
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_ssn_message_names_field(catalog):
    with pytest.raises(InvalidValue, match=r"^ssn: must be 9 digits$"):
        catalog.field("ssn").normalize("7731")


def test_non_text_and_oversized_input():
    field = spec("text", "nonempty", max_length=5)
    with pytest.raises(InvalidValue, match="must be text"):
        field.normalize(7731)  # type: ignore[arg-type]
    with pytest.raises(InvalidValue, match="at most 5 characters"):
        field.normalize("CANARY")
    with pytest.raises(InvalidValue, match="at most 4096"):
        field.normalize("C" * 5000)


def test_every_rule_name_is_exercised():
    assert {n for n, *_ in GOOD} == set(catalog_rules.NORMALIZERS)
    assert {v for _, v, *_ in GOOD} | {v for _, v, *_ in BAD} == set(catalog_rules.VALIDATORS)


# --- format-preserving fields ------------------------------------------------------

def test_format_preserving_fields_have_fixed_shape(catalog):
    samples = {"ssn": "123-45-6789", "phone": "(212) 555-0100", "drivers_license": "d12-3456"}
    fpe = [f for f in catalog if f.token_kind is TokenKind.FORMAT_PRESERVING]
    assert fpe, "the default catalog has format-preserving fields"
    for field in fpe:
        value = field.normalize(samples[field.name])
        assert value and set(value) <= set(field.format_alphabet)
    ssn = catalog.field("ssn").normalize("123 45 6789")
    assert len(ssn) == 9 and ssn.isascii() and ssn.isdigit()
    assert catalog.field("email").format_alphabet is None


# --- masks ----------------------------------------------------------------------------

MASKS = [
    ("ssn_last4", "123456789", "***-**-6789"),
    ("email", "john@example.org", "j***@example.org"),
    ("email", "not-an-email", "****"),
    ("phone_last4", "2125550100", "***-***-0100"),
    ("year_only", "1984-07-31", "1984-**-**"),
    ("year_only", "CANARY", "****"),
    ("last4", "D123456789", "****6789"),
    ("last4", "1234567", "****"),  # would reveal more than half
    ("initials", "John Doe", "J. D."),
    ("initials", "josé  de la cruz", "J. D. L. C."),
    ("initials", "--", "****"),
    ("full", "anything", "****"),
    ("none", "anything", "****"),
]


@pytest.mark.parametrize(("mask", "value", "expected"), MASKS)
def test_masks(mask, value, expected):
    assert catalog_rules.MASKS[mask](value) == expected


def test_every_mask_is_tested_and_none_is_not_maskable(catalog):
    assert {m for m, *_ in MASKS} == set(catalog_rules.MASKS)
    assert not spec("text", "nonempty", mask="none").maskable
    assert catalog.field("date_of_birth").masked("1984-07-31") == "1984-**-**"


def test_fieldspec_refuses_unknown_rule_names():
    with pytest.raises(ConfigError, match="unknown mask"):
        spec("text", "nonempty", mask="rot13")


# --- load errors name the file and line -------------------------------------------------

def minimal(**field) -> str:
    keys = {"classification": "identifier", "token_kind": "random", "retention": "30d",
            "purposes": "[billing]", "mask": "full", "normalizer": "text",
            "validator": "nonempty", **field}
    body = "".join(f"    {k}: {v}\n" for k, v in keys.items() if v is not None)
    return f"version: 1\npurposes:\n  billing: bills\nfields:\n  f:\n{body}"


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(("field", "needle", "reason"), [
    ({"colour": "blue"}, "colour", "unknown key 'colour'"),
    ({"normalizer": "rot13"}, "normalizer", "unknown normalizer 'rot13'"),
    ({"validator": "luhn"}, "validator", "unknown validator 'luhn'"),
    ({"mask": "blur"}, "mask", "unknown mask 'blur'"),
    ({"token_kind": "magic"}, "token_kind", "unknown token_kind 'magic'"),
    ({"classification": "secret"}, "classification", "unknown classification"),
    ({"retention": "forever"}, "retention", "retention must be"),
    ({"retention": "0d"}, "retention", "retention must be"),
    ({"retention": "7 fortnights"}, "retention", "retention must be"),
    ({"purposes": "[billling]"}, "    purposes", "unknown purpose 'billling'"),
    ({"purposes": "[]"}, "    purposes", "non-empty list"),
    ({"token_kind": "format_preserving"}, "token_kind", "fixed-shape normalizer"),
    ({"mask": "year_only"}, "mask", "does not fit normalizer"),
    ({"max_length": "-1"}, "max_length", "must be positive"),
    ({"max_length": "ten"}, "max_length", "expected an integer"),
    ({"searchable": "maybe"}, "searchable", "expected true or false"),
    ({"retention_by_purpose": "{permits: 1y}"}, "retention_by_purpose", "unknown purpose"),
    ({"retention_by_purpose": "{billing: 1 eon}"}, "retention_by_purpose", "retention must be"),
    ({"disclosure": "shout"}, "disclosure", "unknown disclosure 'shout' (known: mask, public, redact)"),
    ({"disclosure": "public", "classification": "sensitive"}, "disclosure", "a sensitive field cannot be disclosed as public"),
    ({"disclosure": "mask", "mask": "none"}, "disclosure", "disclosure: mask needs a mask other than none"),
])
def test_field_errors_name_the_line(field, needle, reason):
    text = minimal(**field)
    with pytest.raises(ConfigError) as info:
        parse_catalog(text, "city.yaml")
    message = str(info.value)
    assert message.startswith(f"city.yaml, line {line_of(text, needle)}: ")
    assert reason in message


def test_missing_key_names_the_field_line():
    text = minimal(purposes=None)
    with pytest.raises(ConfigError, match=r"line 6: field 'f' is missing required key 'purposes'"):
        parse_catalog(text, "city.yaml")


def test_duplicate_field_names_the_line():
    text = minimal() + "  f:\n    classification: contact\n"
    with pytest.raises(ConfigError) as info:
        parse_catalog(text)
    assert f"line {len(text.splitlines()) - 1}: duplicate key 'f'" in str(info.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("", "catalog is empty"),
    ("version: 2\npurposes: {b: x}\nfields: {}\n", "line 1: unsupported catalog version"),
    ("version: 1\nfields: {}\n", "line 1: catalog is missing required key 'purposes'"),
    ("version: 1\npurposes: {}\nfields: {}\nextra: 1\n", "line 4: unknown key 'extra'"),
    ("version: 1\npurposes: {b: x}\nfields: {}\n", "line 3: no fields declared"),
    ("version: 1\npurposes: {Bad Purpose: x}\nfields: {}\n", "line 2: purpose 'Bad Purpose'"),
    ("version: 1\npurposes: {b: x}\nfields:\n  Full-Name: {}\n", "line 4: field name"),
    ("version: 1\npurposes: [b]\nfields: {}\n", "line 2: purposes must be a mapping"),
    ("version: 1\npurposes:\n  b: x\n  c: [\n", "line 5: not valid YAML"),
])
def test_document_errors(text, expected):
    with pytest.raises(ConfigError) as info:
        parse_catalog(text, "city.yaml")
    assert str(info.value).startswith("city.yaml")
    assert expected in str(info.value)


def test_retention_units_round_up():
    parsed = {p: parse_catalog(minimal(retention=p)).field("f").retention.days
              for p in ("30d", "2w", "18mo", "7y", "365 days", "1 year")}
    assert parsed == {"30d": 30, "2w": 14, "18mo": 558, "7y": 2557, "365 days": 365,
                      "1 year": 366}


def test_loaded_specs_are_frozen():
    field = parse_catalog(minimal()).field("f")
    with pytest.raises(dataclasses.FrozenInstanceError):
        field.searchable = True  # type: ignore[misc]


# --- public disclosure ------------------------------------------------------------------

def test_disclosure_defaults_to_redact_and_each_option_rewrites_as_documented(catalog):
    assert parse_catalog(minimal()).field("f").disclosure == "redact"
    assert {f.name: f.disclosure for f in catalog if f.disclosure != "redact"} == {
        "date_of_birth": "mask", "court_case_number": "public"}
    for f in catalog:  # nothing sensitive is public, in the shipped catalog or any other
        assert f.disclosure != "public" or f.classification != "sensitive"
    assert catalog.field("ssn").disclosed("123456789") == "[REDACTED: ssn]"
    assert catalog.field("date_of_birth").disclosed("1984-03-07") == "1984-**-**"
    assert catalog.field("court_case_number").disclosed("2024CR001234") == "2024CR001234"
    assert catalog.compatible("public_disclosure", "court_proceedings")


def test_fieldspec_refuses_an_unknown_disclosure():
    with pytest.raises(ConfigError, match="unknown disclosure 'shout'"):
        spec("text", "nonempty", disclosure="shout")
