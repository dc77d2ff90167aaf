"""The field catalog: which personal fields PDV accepts, and how each is handled.

A field's spec names its classification, token kind, retention, allowed
collection purposes, whether it may be looked up by value, and the built-in
normalizer, validator and mask (vault/catalog_rules.py) applied to its values.
The shipped catalog is vault/catalog.yaml; its header documents the format.
"""

from __future__ import annotations

import datetime
import importlib.resources
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import yaml

from vault import catalog_rules as rules
from vault.errors import ConfigError, InvalidInput, InvalidValue, UnknownField
from vault.yaml_nodes import NodeReader

# Bounds the work done on a hostile input before any rule looks at it.
MAX_INPUT_CHARS = 4096

CLASSIFICATIONS = frozenset(
    {"identifier", "contact", "sensitive", "device_id", "demographic", "financial", "location"}
)


# A field's `disclosure` option: what a public-disclosure answer (pdv disclose) shows of it.
REDACT, MASK, PUBLIC = "redact", "mask", "public"
DISCLOSURES = frozenset({REDACT, MASK, PUBLIC})


def redaction(field: str | None) -> str:
    """The text published in place of a redacted value: it names the field, if known."""
    return f"[REDACTED: {field}]" if field else "[REDACTED]"


class TokenKind(str, Enum):
    RANDOM = "random"
    DETERMINISTIC = "deterministic"
    FORMAT_PRESERVING = "format_preserving"


@dataclass(frozen=True)
class FieldSpec:
    """One catalog entry. Holds names and rules only, never a personal value."""

    name: str
    classification: str
    token_kind: TokenKind
    retention: datetime.timedelta
    purposes: frozenset[str]
    searchable: bool
    mask: str
    normalizer: str
    validator: str
    max_length: int | None = None
    # (purpose, retention) pairs overriding `retention`; a tuple keeps the spec hashable.
    retention_by_purpose: tuple[tuple[str, datetime.timedelta], ...] = ()
    description: str = ""
    # Plain words for the field, for a resident reading their access report ("Email address").
    label: str = ""
    # What disposal does once a value expires: "shred", or "deidentify" keeping only
    # `deidentify_keep` (a DEIDENTIFY_KEEP rule) of the value.
    on_expiry: str = "shred"
    deidentify_keep: str | None = None
    # What a public-disclosure answer shows in place of this field's tokens (DISCLOSURE).
    disclosure: str = "redact"

    def __post_init__(self) -> None:
        for kind, name, table in (("normalizer", self.normalizer, rules.NORMALIZERS),
                                  ("validator", self.validator, rules.VALIDATORS),
                                  ("mask", self.mask, rules.MASKS)):
            if name not in table:
                raise ConfigError(f"field {self.name!r}: unknown {kind} {name!r}")
        if self.disclosure not in DISCLOSURES:
            raise ConfigError(f"field {self.name!r}: unknown disclosure {self.disclosure!r}")

    def disclosed(self, normalized_value: str) -> str:
        """What the public may see of an already normalized value: the value itself, its mask,
        or the redaction label, as the field's `disclosure` option says."""
        if self.disclosure == PUBLIC:
            return normalized_value
        if self.disclosure == MASK:
            return self.masked(normalized_value)
        return redaction(self.name)

    @property
    def plain_name(self) -> str:
        """The field's label, or its name in words when the catalog gives none."""
        return self.label or self.name.replace("_", " ").capitalize()

    def normalize(self, value: str) -> str:
        """Return the canonical form of `value`, the form that is encrypted and indexed.

        Raises:
            InvalidValue: naming the field and the rule broken, never the value.
        """
        if not isinstance(value, str):
            raise InvalidValue(f"{self.name}: must be text")
        if len(value) > MAX_INPUT_CHARS:
            raise InvalidValue(f"{self.name}: must be at most {MAX_INPUT_CHARS} characters")
        reason = None
        try:
            canonical = rules.NORMALIZERS[self.normalizer](value)
            rules.VALIDATORS[self.validator](canonical)
        except rules.RuleViolation as exc:
            reason = exc.reason
        # Raised outside the except block: nothing that saw the value is chained.
        if reason is not None:
            raise InvalidValue(f"{self.name}: {reason}")
        if self.max_length is not None and len(canonical) > self.max_length:
            raise InvalidValue(f"{self.name}: must be at most {self.max_length} characters")
        return canonical

    def masked(self, normalized_value: str) -> str:
        """Return the masked view of an already normalized value (never raises)."""
        return rules.MASKS[self.mask](normalized_value)

    @property
    def maskable(self) -> bool:
        """False when the field declares mask "none": a masked view shows nothing."""
        return self.mask != "none"

    @property
    def format_alphabet(self) -> str | None:
        """For format-preserving fields, the characters a token may be drawn from."""
        if self.token_kind is not TokenKind.FORMAT_PRESERVING:
            return None
        return rules.FIXED_SHAPE[self.normalizer]

    def retention_for(self, purpose: str) -> datetime.timedelta:
        """How long a value collected for `purpose` is kept.

        Raises:
            InvalidInput: the purpose is not an allowed collection purpose of this field.
        """
        if purpose not in self.purposes:
            raise InvalidInput(f"{self.name}: {purpose!r} is not an allowed collection purpose")
        return dict(self.retention_by_purpose).get(purpose, self.retention)


class Catalog:
    """The set of accepted fields, by name, in catalog order."""

    def __init__(
        self, fields: Mapping[str, FieldSpec], purposes: frozenset[str],
        compatible: Mapping[str, frozenset[str]] | None = None, descriptions: Mapping[str, str] | None = None,
    ) -> None:
        self._fields = dict(fields)
        self._purposes = frozenset(purposes).union(*(f.purposes for f in self._fields.values()))
        self._compatible = dict(compatible or {})
        self._descriptions = dict(descriptions or {})

    def describe_purpose(self, purpose: str) -> str:
        """The purpose in plain words (its one-line description in the catalog), or its name."""
        return self._descriptions.get(purpose) or purpose.replace("_", " ")

    def compatible(self, access_purpose: str, collection_purpose: str) -> bool:
        """Whether a value collected for `collection_purpose` may be used for `access_purpose`:
        the same purpose, or one the catalog's compatible_purposes lists for it."""
        return access_purpose == collection_purpose or collection_purpose in self._compatible.get(access_purpose, ())

    def field(self, name: str) -> FieldSpec:
        """Return the spec of `name`. Raises UnknownField if the catalog has no such field."""
        try:
            return self._fields[name]
        except (KeyError, TypeError):
            pass
        raise UnknownField(str(name))

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def __iter__(self) -> Iterator[FieldSpec]:
        return iter(self._fields.values())

    def __len__(self) -> int:
        return len(self._fields)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._fields)

    @property
    def purposes(self) -> frozenset[str]:
        """Every purpose the catalog declares or a field allows."""
        return self._purposes


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and validate a catalog file; None reads the shipped vault/catalog.yaml.

    Raises:
        ConfigError: the file cannot be read or is invalid (message names file and line).
    """
    if path is None:
        text = importlib.resources.files("vault").joinpath("catalog.yaml").read_text("utf-8")
        return parse_catalog(text, "vault/catalog.yaml")
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read catalog: {exc.__class__.__name__}") from None
    return parse_catalog(text, str(path))


def parse_catalog(text: str, source: str = "<catalog>") -> Catalog:
    """Build a Catalog from YAML text. Raises ConfigError naming `source` and the line."""
    return _Parser(source).catalog(text)


# --- parsing -----------------------------------------------------------------------

_TOP_KEYS = {"version", "purposes", "fields", "compatible_purposes"}
_REQUIRED_TOP = {"version", "purposes", "fields"}
_REQUIRED = {"classification", "token_kind", "retention", "purposes", "mask", "normalizer",
             "validator"}
_OPTIONAL = {"searchable", "max_length", "retention_by_purpose", "description", "label", "on_expiry",
             "deidentify_keep", "disclosure"}
ON_EXPIRY = frozenset({"shred", "deidentify"})
# What de-identification may keep, and the normalizers each rule needs (None: any).
DEIDENTIFY_KEEP: dict[str, frozenset[str] | None] = {
    "pseudonym": None,                  # keyed HMAC of the value (the token, if deterministic)
    "year": frozenset({"date"}),        # YYYY of a date, e.g. birth year
    "zip3": frozenset({"digits"}),      # first three digits (a ZIP code's area)
}
_RETENTION = re.compile(r"([0-9]+)\s*(d|days?|w|weeks?|mo|months?|y|years?)")
# Units are rounded up so that disposal never comes before the calendar period ends:
# a month is 31 days, a year 365.25 days (so n years cover every leap day in them).
_UNIT_DAYS = {"d": 1, "w": 7, "m": 31, "y": 365.25}


class _Parser(NodeReader):
    def catalog(self, text: str) -> Catalog:
        root = self.compose(text, "catalog")
        top = self.mapping(root, "catalog", _TOP_KEYS, _REQUIRED_TOP)
        if self.scalar(top["version"][1], int) != 1:
            raise self.fail(top["version"][1], "unsupported catalog version (expected 1)")
        purposes, descriptions = set(), {}
        for key, description in self.mapping(top["purposes"][1], "purposes").values():
            name = self.identifier(key, "purpose")
            descriptions[name] = self.scalar(description, str)
            purposes.add(name)
        if not purposes:
            raise self.fail(top["purposes"][1], "no purposes declared")
        fields = {}
        for key, value in self.mapping(top["fields"][1], "fields").values():
            name = self.identifier(key, "field name")
            fields[name] = self.field(name, value, purposes)
        if not fields:
            raise self.fail(top["fields"][1], "no fields declared")
        compatible = {}
        if "compatible_purposes" in top:
            for key, value in self.mapping(top["compatible_purposes"][1], "compatible_purposes").values():
                access = self.choice(key, purposes, "purpose")
                if not isinstance(value, yaml.SequenceNode):
                    raise self.fail(value, f"compatible_purposes of {access!r} must be a list of purposes")
                compatible[access] = frozenset(self.choice(item, purposes, "purpose") for item in value.value)
        return Catalog(fields, frozenset(purposes), compatible, descriptions)

    def retention(self, node):
        match = _RETENTION.fullmatch(str(self.scalar(node, object)).strip())
        if not match or int(match[1]) == 0:
            raise self.fail(node, "retention must be a positive count and unit, "
                                  "e.g. 30d, 6w, 18mo, 7y")
        return datetime.timedelta(days=math.ceil(int(match[1]) * _UNIT_DAYS[match[2][0]]))

    def field(self, name, node, declared):
        what = f"field {name!r}"
        keys = self.mapping(node, what, _REQUIRED | _OPTIONAL, _REQUIRED)
        value = {k: v for k, (_, v) in keys.items()}
        purposes_node = value["purposes"]
        if not isinstance(purposes_node, yaml.SequenceNode) or not purposes_node.value:
            raise self.fail(purposes_node, f"{what}: purposes must be a non-empty list")
        purposes = set()
        for item in purposes_node.value:
            purposes.add(self.choice(item, declared, "purpose"))
        overrides = {}
        if "retention_by_purpose" in value:
            for key, period in self.mapping(value["retention_by_purpose"],
                                            f"{what} retention_by_purpose").values():
                overrides[self.choice(key, purposes, f"purpose of {what}")] = self.retention(period)
        kind = TokenKind(self.choice(value["token_kind"], {k.value for k in TokenKind}, "token_kind"))
        normalizer = self.choice(value["normalizer"], rules.NORMALIZERS, "normalizer")
        mask = self.choice(value["mask"], rules.MASKS, "mask")
        if kind is TokenKind.FORMAT_PRESERVING and normalizer not in rules.FIXED_SHAPE:
            raise self.fail(value["token_kind"], f"{what}: format_preserving needs a fixed-shape "
                            f"normalizer ({', '.join(sorted(rules.FIXED_SHAPE))})")
        if normalizer not in rules.MASK_NORMALIZERS.get(mask, {normalizer}):
            raise self.fail(value["mask"], f"{what}: mask {mask!r} does not fit normalizer "
                            f"{normalizer!r}")
        max_length = None
        if "max_length" in value:
            max_length = self.scalar(value["max_length"], int)
            if max_length <= 0:
                raise self.fail(value["max_length"], f"{what}: max_length must be positive")
        on_expiry, keep = self.expiry(what, value, normalizer)
        classification = self.choice(value["classification"], CLASSIFICATIONS, "classification")
        disclosure = self.disclosure(what, value, classification, mask)
        return FieldSpec(
            name=name,
            classification=classification,
            token_kind=kind,
            retention=self.retention(value["retention"]),
            purposes=frozenset(purposes),
            searchable=self.scalar(value["searchable"], bool) if "searchable" in value else False,
            mask=mask,
            normalizer=normalizer,
            validator=self.choice(value["validator"], rules.VALIDATORS, "validator"),
            max_length=max_length,
            retention_by_purpose=tuple(sorted(overrides.items())),
            description=self.scalar(value["description"], str) if "description" in value else "",
            label=self.scalar(value["label"], str) if "label" in value else "",
            on_expiry=on_expiry,
            deidentify_keep=keep,
            disclosure=disclosure,
        )

    def disclosure(self, what, value, classification, mask):
        if "disclosure" not in value:
            return REDACT
        node = value["disclosure"]
        disclosure = self.choice(node, DISCLOSURES, "disclosure")
        # Refused rather than warned about: a sensitive value (an SSN, a benefits id) in an
        # open-records answer cannot be undone.
        if disclosure == PUBLIC and classification == "sensitive":
            raise self.fail(node, f"{what}: a sensitive field cannot be disclosed as public (use mask or redact)")
        if disclosure == MASK and mask == "none":
            raise self.fail(node, f"{what}: disclosure: mask needs a mask other than none (or use redact)")
        return disclosure

    def expiry(self, what, value, normalizer):
        on_expiry = self.choice(value["on_expiry"], ON_EXPIRY, "on_expiry") if "on_expiry" in value else "shred"
        if on_expiry == "shred":
            if "deidentify_keep" in value:
                raise self.fail(value["deidentify_keep"], f"{what}: deidentify_keep needs on_expiry: deidentify")
            return on_expiry, None
        if "deidentify_keep" not in value:
            raise self.fail(value["on_expiry"], f"{what}: on_expiry: deidentify needs deidentify_keep "
                            f"({', '.join(sorted(DEIDENTIFY_KEEP))})")
        keep = self.choice(value["deidentify_keep"], DEIDENTIFY_KEEP, "deidentify_keep")
        needs = DEIDENTIFY_KEEP[keep]
        if needs is not None and normalizer not in needs:
            raise self.fail(value["deidentify_keep"], f"{what}: deidentify_keep {keep!r} needs normalizer "
                            f"{', '.join(sorted(needs))}")
        return on_expiry, keep
