"""The access policy: roles of grants, principals and partners mapped to roles. Default deny.

A grant names fields, actions and purposes; a principal may do an action on a field for a
purpose only if one of its roles grants exactly that (``*`` expands to every catalog field
or purpose). SubjectService calls carry no purpose and act on fields or whole subjects, so
they ask `covers` (every field touched, every purpose; see vault/services/subject_access.py),
and the parser warns about `shred` and `admin` grants too narrow for that to honour.
Partners are principals with an agreement id and an expiry date: after the date their
grants stop counting. Decisions are pure set lookups on a table built once at load; the
only I/O here is reading the file. The file format is documented in README
("Policy file") and in vault/policy.dev.yaml.

Every principal belongs to one token domain (vault/services/domains): `city`, the default,
unless the policy names another (`domain:` under a principal or a partner). A partner gets a
domain of its own, `partner:<name>`, unless its entry names one; naming the same domain
joins principals in it.
"""

from __future__ import annotations

import datetime
import importlib.resources
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from vault.catalog import Catalog
from vault.errors import ConfigError
from vault.yaml_nodes import NodeReader

TOKENIZE, DETOKENIZE, DETOKENIZE_MASKED, LOOKUP = "tokenize", "detokenize", "detokenize_masked", "lookup"
APPEND, SHRED, EXPORT, ADMIN = "append", "shred", "export", "admin"
# `requests`: open, read and update residents' privacy requests and complaints. A request
# spans a whole person and carries no purpose, so only a grant on every field for every
# purpose counts (vault/services/rights/request_access.py).
REQUESTS = "requests"
# `correct`: replace a subject's values of a field with a corrected one (CorrectValue). The
# request carries no purpose and corrects the value whatever it was collected for, so a
# grant counts on a field only where it names every purpose the catalog lets the field be
# collected for (vault/services/subject_access.py).
CORRECT = "correct"
# `disclose`: rewrite tokens in records released to the public (DisclosureService) into what
# the catalog allows for public disclosure (its value, its mask, or a redaction). Granted per
# field and purpose, like a read; it is not one: a value comes out only where the catalog
# says the field is public or masked, whatever the caller's read grants.
DISCLOSE = "disclose"
# AdminService, one action per duty so that a key custodian, a records officer and an auditor
# can each be granted their own: `keys` (KEK status, rotate, schedule, rewrap, trim; DEK
# rotation), `dispose` (retention disposal, dry or real), `audit` (verify the access log),
# `holds` (list legal holds) and `policy` (reload, check). They act on the whole vault and
# carry no purpose, so like `requests` they count only on every field for every purpose
# (vault/services/admin/access.py).
KEYS, DISPOSE, AUDIT, HOLDS, POLICY = "keys", "dispose", "audit", "holds", "policy"
ADMIN_ACTIONS = (KEYS, DISPOSE, AUDIT, HOLDS, POLICY)
# `export` for purpose `subject_access` (declared in the catalog): hand a resident's own values
# back to them in the access report (vault/services/rights/report.py). No other purpose serves.
SUBJECT_ACCESS = "subject_access"
# Reading or exporting for subject_access makes whole-person access reports (every value and
# every access of a subject, by subject id): only a grant naming the purpose gives it, never
# `purposes: "*"`, so a broad reader role does not become a report maker by accident.
_NAMED_ONLY = frozenset({"detokenize", "detokenize_masked", "export"})
# `translate`: convert a token of another domain into one of the caller's own domain
# (TokenService.Translate). It links what domains keep apart, so it is meant for city-internal
# hubs, or a partner whose agreement provides for reading values collected elsewhere; the
# parser warns when a partner is granted it.
TRANSLATE = "translate"
# `events`: receive the events to token holders (EventService): a shred, disposal, correction,
# consent or hold change of a subject the caller was handed tokens of, with its own tokens.
# It reveals nothing the caller does not hold already, so a grant on any field for any
# purpose counts (vault/services/events).
EVENTS = "events"
# The city-internal token domain: every principal the policy puts in no other. Its keys are
# the ones derived before domains existed (vault/services/index_keys.py).
DEFAULT_DOMAIN = "city"
PARTNER_DOMAIN_PREFIX = "partner:"
# `detokenize` is the plain view and includes the masked one. `tokenize` collects a record
# as a new subject; `append` adds a record's fields to the subject it names. Neither implies
# the other, so a grant of tokenize alone cannot write to a subject id it guessed or learned.
ACTIONS = (TOKENIZE, APPEND, DETOKENIZE, DETOKENIZE_MASKED, LOOKUP, SHRED, EXPORT, ADMIN, REQUESTS, CORRECT, DISCLOSE,
           TRANSLATE, EVENTS, *ADMIN_ACTIONS)
PLAIN, MASKED = "plain", "masked"
ANY = "*"
MAX_REMEMBERED = 4096  # answers a Policy keeps (see Policy._answers)

_TOP = {"version", "roles", "principals", "partners"}
_ROLE = {"description", "grants"}
_GRANT = {"fields", "actions", "purposes"}
_PARTNER = {"agreement", "expires", "roles", "description", "domain"}
_PRINCIPAL = {"roles", "domain", "description"}


@dataclass(frozen=True)
class Partner:
    name: str
    agreement: str
    expires: datetime.date
    roles: tuple[str, ...]
    domain: str = ""  # "" until the parser fills in the default, partner:<name>
    description: str = ""  # who the partner is, in plain words (the access report shows it)


@dataclass(frozen=True)
class Policy:
    """Who may do what to which field for which purpose. Anything not granted is denied."""

    # principal (or "*": every authenticated principal) -> {(action, field, purpose)}
    grants: dict[str, frozenset[tuple[str, str, str]]]
    partners: dict[str, Partner] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    source: str = "<policy>"
    # principal -> token domain, for those not in DEFAULT_DOMAIN
    domains: dict[str, str] = field(default_factory=dict)
    # principal or partner -> who it is, in plain words (policy `description`), where given
    descriptions: dict[str, str] = field(default_factory=dict)

    def domain_of(self, principal: str) -> str:
        """The token domain `principal` tokenizes, reads, looks up and translates into."""
        return self.domains.get(principal, DEFAULT_DOMAIN)

    def known_domains(self) -> frozenset[str]:
        """Every domain the policy puts a principal in, and the default one."""
        return frozenset(self.domains.values()) | {DEFAULT_DOMAIN}

    # Answers already given, by question: the policy never changes (a reload makes a new one),
    # so a verdict on (principal, action, field, purpose, day) holds for the policy's life.
    # Every call asks its questions again; this makes them dictionary lookups. Bounded.
    _answers: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _remembered(self, question: tuple, answer: Callable[[], object]) -> object:
        answers = self._answers
        try:
            return answers[question]
        except KeyError:
            pass
        if len(answers) >= MAX_REMEMBERED:
            answers.clear()  # many principals or days: start again rather than grow
        value = answers[question] = answer()
        return value

    def _granted(self, principal: str, today: datetime.date) -> frozenset[tuple[str, str, str]]:
        return self._remembered(("granted", principal, today), lambda: self._grants_of(principal, today))  # type: ignore[return-value]

    def _grants_of(self, principal: str, today: datetime.date) -> frozenset[tuple[str, str, str]]:
        partner = self.partners.get(principal)
        if partner is not None and today > partner.expires:
            return frozenset()  # an expired agreement grants nothing, not even what "*" grants
        own = self.grants.get(principal, frozenset())
        everyone = self.grants.get(ANY)
        return own | everyone if everyone else own

    def allows(self, principal: str, action: str, field_name: str, purpose: str, today: datetime.date) -> bool:
        """True if a role of `principal` grants `action` on `field_name` for `purpose`."""
        return (action, field_name, purpose) in self._granted(principal, today)

    def view(self, principal: str, field_name: str, purpose: str, today: datetime.date) -> str | None:
        """The detokenize view granted: PLAIN, MASKED or None (denied)."""
        return self._remembered(  # type: ignore[return-value]
            ("view", principal, field_name, purpose, today), lambda: self._view(principal, field_name, purpose, today))

    def _view(self, principal: str, field_name: str, purpose: str, today: datetime.date) -> str | None:
        granted = self._granted(principal, today)
        if (DETOKENIZE, field_name, purpose) in granted:
            return PLAIN
        if (DETOKENIZE_MASKED, field_name, purpose) in granted:
            return MASKED
        return None

    def may_read_any(self, principal: str, purpose: str, today: datetime.date) -> bool:
        """Whether any field may be detokenized (plain or masked) for `purpose` — a question
        whose answer does not depend on any token, so it is safe to answer before a lookup."""
        return self._remembered(  # type: ignore[return-value]
            ("read_any", principal, purpose, today), lambda: self._may_read_any(principal, purpose, today))

    def _may_read_any(self, principal: str, purpose: str, today: datetime.date) -> bool:
        return any(a in (DETOKENIZE, DETOKENIZE_MASKED) and p == purpose for a, _, p in self._granted(principal, today))

    def may_receive_events(self, principal: str, today: datetime.date) -> bool:
        """Whether `events` is granted on any field for any purpose."""
        return any(a == EVENTS for a, _, _ in self._granted(principal, today))

    def may_disclose_any(self, principal: str, purpose: str, today: datetime.date) -> bool:
        """Whether `disclose` is granted on any field for `purpose` (asked before any token is read)."""
        return any(a == DISCLOSE and p == purpose for a, _, p in self._granted(principal, today))

    def covers(
        self, principal: str, action: str, fields: Iterable[str], purposes: Iterable[str], today: datetime.date
    ) -> bool:
        """True if `action` is granted on every one of `fields` for every one of `purposes`
        (how SubjectService judges a grant: a shred of fields needs each of them, a request
        that carries no purpose needs every purpose)."""
        granted = self._granted(principal, today)
        purposes = tuple(purposes)
        return all((action, f, p) in granted for f in fields for p in purposes)

    def rows(self) -> Iterable[tuple[str, str, str, str]]:
        """Every (principal, action, field, purpose) granted, for reports and tests."""
        for principal, grants in sorted(self.grants.items()):
            for action, field_name, purpose in sorted(grants):
                yield principal, action, field_name, purpose


def open_policy(catalog: Catalog) -> Policy:
    """The shipped development policy (vault/policy.dev.yaml): every principal, everything."""
    text = importlib.resources.files("vault").joinpath("policy.dev.yaml").read_text("utf-8")
    return parse_policy(text, catalog, "vault/policy.dev.yaml")


def load_policy(path: Path, catalog: Catalog, today: datetime.date | None = None, strict: bool = False) -> Policy:
    """Read and validate a policy file against `catalog`.

    With `strict` (``pdv policy check``) an expired partner agreement is an error; when
    serving it is only a warning, since an agreement lapsing must not stop the server.

    Raises:
        ConfigError: unreadable or invalid file; the message names the file and the line.
    """
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read policy: {exc.__class__.__name__}") from None
    return parse_policy(text, catalog, str(path), today, strict)


def parse_policy(
    text: str, catalog: Catalog, source: str = "<policy>", today: datetime.date | None = None, strict: bool = False
) -> Policy:
    """Build a Policy from YAML text. Raises ConfigError naming `source` and the line."""
    return _PolicyParser(source, catalog, today or datetime.date.today(), strict).policy(text)


class _PolicyParser(NodeReader):
    def __init__(self, source: str, catalog: Catalog, today: datetime.date, strict: bool) -> None:
        super().__init__(source)
        self.catalog, self.today, self.strict = catalog, today, strict
        self.warnings: list[str] = []

    def policy(self, text: str) -> Policy:
        root = self.compose(text, "policy")
        top = self.mapping(root, "policy", _TOP, {"version", "roles"})
        if self.scalar(top["version"][1], int) != 1:
            raise self.fail(top["version"][1], "unsupported policy version (expected 1)")
        roles = {}
        for key, node in self.mapping(top["roles"][1], "roles").values():
            name = self.identifier(key, "role")
            roles[name] = self.role(name, node)
        grants: dict[str, set[tuple[str, str, str]]] = {}
        domains: dict[str, str] = {}
        descriptions: dict[str, str] = {}
        if "principals" in top:
            for key, node in self.mapping(top["principals"][1], "principals").values():
                principal = self.scalar(key, str)
                if isinstance(node, yaml.MappingNode):  # {roles: [...], domain: name}
                    entry = self.mapping(node, f"principal {principal!r}", _PRINCIPAL, {"roles"})
                    node = entry["roles"][1]
                    if "domain" in entry:
                        if principal == ANY:
                            raise self.fail(entry["domain"][1], "\"*\" grants to every principal and has no domain of its own")
                        domains[principal] = self.identifier(entry["domain"][1], "domain")
                    if "description" in entry:
                        descriptions[principal] = self.description(entry["description"][1], f"principal {principal!r}")
                grants.setdefault(principal, set()).update(*self.role_refs(node, roles, f"principal {principal!r}"))
        partners = {}
        if "partners" in top:
            for key, node in self.mapping(top["partners"][1], "partners").values():
                partner = self.partner(self.scalar(key, str), node, roles)
                if partner.name in grants:
                    raise self.fail(key, f"{partner.name!r} is listed under both principals and partners")
                partners[partner.name] = partner
                grants[partner.name] = set().union(*(roles[r] for r in partner.roles))
                domains[partner.name] = partner.domain
                if partner.description:
                    descriptions[partner.name] = partner.description
                if any(action == TRANSLATE for action, _, _ in grants[partner.name] | grants.get(ANY, set())):
                    self.warnings.append(
                        f"{self.source}, line {key.start_mark.line + 1}: partner {partner.name!r} is granted translate, "
                        "which converts other domains' tokens into its own: partners are kept in domains of their own "
                        "so that they cannot link residents; grant it to a partner only as far as its agreement "
                        "provides for reading values collected elsewhere")
        domains = {p: d for p, d in domains.items() if d != DEFAULT_DOMAIN}
        return Policy({p: frozenset(g) for p, g in grants.items()}, partners, tuple(self.warnings), self.source, domains,
                      descriptions)

    def role(self, name: str, node: yaml.Node) -> set[tuple[str, str, str]]:
        keys = self.mapping(node, f"role {name!r}", _ROLE, {"grants"})
        grants_node = keys["grants"][1]
        if not isinstance(grants_node, yaml.SequenceNode):
            raise self.fail(grants_node, f"role {name!r}: grants must be a list")
        out: set[tuple[str, str, str]] = set()
        for item in grants_node.value:
            g = self.mapping(item, f"a grant of role {name!r}", _GRANT, _GRANT)
            fields = self.names(g["fields"][1], self.catalog.names, "field")
            actions = self.names(g["actions"][1], ACTIONS, "action")
            purposes = self.names(g["purposes"][1], sorted(self.catalog.purposes), "purpose")
            if EXPORT in actions and SUBJECT_ACCESS not in purposes:
                self.warnings.append(f"{self.source}, line {g['actions'][1].start_mark.line + 1}: role {name!r} grants "
                                     f"export without naming purpose {SUBJECT_ACCESS}, the only purpose an export "
                                     "serves (the access report's values); the grant has no effect")
            wildcard = SUBJECT_ACCESS in purposes and isinstance(g["purposes"][1], yaml.ScalarNode)
            out.update((a, f, p) for a in actions for f in fields for p in purposes
                       if not (wildcard and p == SUBJECT_ACCESS and a in _NAMED_ONLY))
        self.unhonoured(name, grants_node, out)
        return out

    def unhonoured(self, name: str, node: yaml.Node, grants: set[tuple[str, str, str]]) -> None:
        """Warn about a role's grants no RPC can honour as scoped: SubjectService requests carry
        no purpose, so `shred` counts on a field only if granted for every purpose; consent
        applies to a whole subject, so `admin` counts for a purpose only if granted on every field."""
        where = f"{self.source}, line {node.start_mark.line + 1}: role {name!r}"
        purposes, fields = set(self.catalog.purposes), set(self.catalog.names)
        shred: dict[str, set[str]] = {}
        admin: dict[str, set[str]] = {}
        requests = set()
        whole: dict[str, set[tuple[str, str]]] = {}
        correct: dict[str, set[str]] = {}
        for action, f, p in grants:
            if action == SHRED:
                shred.setdefault(f, set()).add(p)
            elif action == ADMIN:
                admin.setdefault(p, set()).add(f)
            elif action == REQUESTS:
                requests.add((f, p))
            elif action in ADMIN_ACTIONS:
                whole.setdefault(action, set()).add((f, p))
            elif action == CORRECT:
                correct.setdefault(f, set()).add(p)
        if requests and requests != {(f, p) for f in fields for p in purposes}:
            self.warnings.append(
                f"{where} grants requests on some fields or purposes only; a privacy request covers a whole "
                "person and carries no purpose, so a requests grant counts only on every field for every purpose "
                "(\"*\" and \"*\"): this grants nothing")
        everything = {(f, p) for f in fields for p in purposes}
        partial = sorted(a for a, scope in whole.items() if scope != everything)
        if partial:
            self.warnings.append(
                f"{where} grants {', '.join(partial)} on some fields or purposes only; an AdminService call acts on "
                "the whole vault and carries no purpose, so such a grant counts only on every field for every "
                "purpose (\"*\" and \"*\"): this grants nothing")
        partial = sorted(f for f, ps in correct.items() if not self.catalog.field(f).purposes <= ps)
        if partial:
            self.warnings.append(
                f"{where} grants correct on {', '.join(partial)} for some of the field's purposes only; a correction "
                "carries no purpose and corrects every value of the field, so a correct grant counts only where it "
                "names every purpose the field may be collected for: these grant nothing")
        partial = sorted(f for f, ps in shred.items() if ps != purposes)
        if partial:
            self.warnings.append(
                f"{where} grants shred on {', '.join(partial)} for some purposes only; shreds carry no purpose, so "
                "a shred grant counts only where it names every purpose (\"*\"): these grant nothing")
        partial = sorted(p for p, fs in admin.items() if fs != fields)
        if partial:
            self.warnings.append(
                f"{where} grants admin for {', '.join(partial)} on some fields only; consent covers a whole subject, "
                "so an admin grant counts only for a purpose it grants on every field (\"*\"): these grant nothing")

    def names(self, node: yaml.Node, known: Iterable[str], what: str) -> list[str]:
        """A list of known names, or "*" for all of them."""
        known = list(known)
        if isinstance(node, yaml.ScalarNode) and self.scalar(node, str) == ANY:
            return known
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            raise self.fail(node, f"{what}s must be a non-empty list or \"*\"")
        return [self.choice(item, set(known), what) for item in node.value]

    def role_refs(self, node: yaml.Node, roles: dict, what: str) -> list[set]:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            raise self.fail(node, f"{what}: roles must be a non-empty list")
        return [roles[self.choice(item, set(roles), "role")] for item in node.value]

    def partner(self, name: str, node: yaml.Node, roles: dict) -> Partner:
        keys = self.mapping(node, f"partner {name!r}", _PARTNER, {"agreement", "expires", "roles"})
        agreement = self.scalar(keys["agreement"][1], str)
        expires_node = keys["expires"][1]
        try:
            expires = datetime.date.fromisoformat(str(self.scalar(expires_node, object)))
        except ValueError:
            raise self.fail(expires_node, f"partner {name!r}: expires must be a date, YYYY-MM-DD") from None
        if expires < self.today:
            message = f"partner {name!r}: agreement {agreement!r} expired on {expires.isoformat()}"
            if self.strict:
                raise self.fail(expires_node, message)
            self.warnings.append(f"{self.source}, line {expires_node.start_mark.line + 1}: {message}; it grants nothing")
        role_nodes = keys["roles"][1]
        self.role_refs(role_nodes, roles, f"partner {name!r}")
        # A partner is kept in a domain of its own unless the policy joins it to a named one.
        domain = self.identifier(keys["domain"][1], "domain") if "domain" in keys else PARTNER_DOMAIN_PREFIX + name
        description = self.description(keys["description"][1], f"partner {name!r}") if "description" in keys else ""
        return Partner(name, agreement, expires, tuple(self.scalar(n, str) for n in role_nodes.value), domain,
                       description)

    def description(self, node: yaml.Node, what: str) -> str:
        """A principal's or partner's description: one line of plain words a resident reads."""
        text = self.scalar(node, str).strip()
        if not text or len(text) > 200 or not text.isprintable():
            raise self.fail(node, f"{what}: description must be one line of 1 to 200 printable characters")
        return text


class PolicyHolder:
    """The policy in force, swapped whole on reload (SIGHUP); readers never see half of one."""

    def __init__(self, policy: Policy, path: Path | None = None, catalog: Catalog | None = None) -> None:
        self._policy, self.path, self._catalog = policy, path, catalog
        self._lock = threading.Lock()

    @property
    def current(self) -> Policy:
        return self._policy

    def reload(self) -> Policy:
        """Re-read the policy file; on any error the old policy stays in force.

        Raises:
            ConfigError: the file is invalid, or there is no file to reload (development policy).
        """
        if self.path is None or self._catalog is None:
            raise ConfigError("no policy_path: the development policy has no file to reload")
        with self._lock:
            self._policy = load_policy(self.path, self._catalog)
        return self._policy
