"""Detokenize: resolve tokens to values, logging every item before any plaintext leaves.

Each call is one unit of a group-committed transaction that reads the values with
their data-key rows, decrypts with cached DEKs and appends the access log, so the
log commits before the answer leaves and a shredded key is never used. When a DEK
is not cached, the unit stops without writing, the DEK is unwrapped by Vault outside
any transaction, and the unit runs again.

Access control, per item, inside the same unit: the caller needs `detokenize` (plain) or
`detokenize_masked` on the field for the purpose; a masked caller gets the catalog mask
computed here, never the plaintext. Two kinds of refusal, chosen so that neither tells
whether a token exists:
- a caller with no read grant for the purpose (on the item's named field, or on any field
  when none is named) is refused whatever is stored: PERMISSION_DENIED, the same for
  every token, known or not;
- a refusal that depends on the stored value (its field is not granted, it was collected
  for an incompatible purpose, its subject opted out) answers exactly like an unknown
  token: NOT_FOUND "token not found". The access log says which it was.
Nor does their timing: every item's token, refused or not, goes into the one batched read,
so a caller-level refusal costs what a miss or a value-level refusal costs (`pdv bench`
reports the oracle_* latencies). A refused row is then dropped unused: no key is unwrapped
and nothing is decrypted for it, since an unwrap on its behalf would itself be a tell (a
miss has no key to unwrap). Token syntax is still checked strictly before that read.

A deterministic token is shared by every subject holding the same normalized value in its
field, so one item can find several rows. They are read row by row: each row is judged on
its own collection purpose and its own subject's opt-out, and each is logged against its own
subject (one access-log entry per row, with that row's outcome). The caller gets the value
if at least one row may be read — one value, since every row holds the same normalized
value — and otherwise the answer of a miss. The answer does not say which subjects hold it:
that is what Lookup, a grant of its own, answers.

A random-kind token is a sequential one (vault/services/locators): it opens, under the caller's
domain's key, to a locator and a check, and its row is read by the locator in the same batched
read, beside the token-index probe of every other token; a row whose stored check differs is
dropped there, unread. Every token goes into both probes, whatever it is, so a guessed or
altered token costs and answers what an unknown one does.

A token is read only in the token domain it was issued in (vault/services/domains): the
read asks for rows of the caller's domain, so another domain's token is not found, in the
same statement and with the same answer as an unknown one.

The answer must fit in one gRPC message (max_message_bytes, Limits.max_answer_bytes). It is
measured inside the unit, before the log is written: one that would not fit is refused as a
whole (AnswerTooLarge, RESOURCE_EXHAUSTED) and its rows are logged with outcome "too_large",
nothing delivered. Before, the access was logged as delivered and the send then failed. The
refusal is no existence oracle: it depends only on the answer the caller would have been
given (an answer that fits tells hits from misses outright), and misses and refused rows
weigh the same fixed amount.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime

from vault.catalog import Catalog, FieldSpec, TokenKind
from vault.crypto import tokens as tk
from vault.crypto.aead import DataKey, row_aad
from vault.errors import (
    AnswerTooLarge, DecryptionFailed, InvalidInput, KeyUnavailable, NotFound, PdvError, PermissionDenied, Unavailable,
    UnknownField,
)
from vault.policy import MASKED, PLAIN
from vault.services.access import DENIED, AccessControl
from vault.services.common import (
    MAX_PURPOSE, MAX_REQUEST_ID, Caller, Limits, access_row, refusals_logged, require_batch, require_label,
)
from vault.services.group_commit import GroupCommitter
from vault.services.keyring import KeyId, KeyRing
from vault.services.locators import SequentialTokens
from vault.storage.rows import ValueRow
from vault.storage.store import Tx

# One message for every miss, whatever the reason: no existence oracle.
NOT_FOUND = "token not found"
# One message for every caller-level refusal: it depends on (principal, purpose, field) only.
NOT_PERMITTED = "not permitted to read this field for this purpose"
# Unwrap-and-retry rounds before giving up (a key can fall out of the cache in between).
ROUNDS = 3
# Protobuf framing of one DetokenizeResult inside the answer, at most: a tag byte and a length
# varint (<= 5 bytes) for each of its four strings and for the result itself, and for the code.
RESULT_FRAMING = 6 * 6
TOO_LARGE = "too_large"  # log outcome of a row whose value an over-large answer did not deliver
_READABLE = (PLAIN, MASKED)


# Per-item values are plain slotted dataclasses: a frozen one costs three times as much to make,
# and a batch makes one of each per item.
@dataclass(slots=True)
class DetokenizeItem:
    token: str
    field: str = ""


@dataclass(slots=True)
class Detokenized:
    token: str
    field: str = ""
    value: str = dc_field(default="", repr=False)
    error: PdvError | None = None


class DetokenizeService:
    def __init__(
        self, committer: GroupCommitter, keyring: KeyRing, catalog: Catalog, limits: Limits,
        clock: Callable[[], datetime], access: AccessControl, tokens: SequentialTokens,
    ) -> None:
        self.committer, self.keyring, self.tokens = committer, keyring, tokens
        self.catalog, self.limits, self.clock, self.access = catalog, limits, clock, access
        self._field_names = frozenset(catalog.names)

    def detokenize(self, caller: Caller, purpose: str, items: list[DetokenizeItem]) -> list[Detokenized]:
        """The value (or its mask) behind each token, in order; a miss is a per-item NotFound,
        a caller-level refusal a per-item PermissionDenied (see the module doc).

        Raises:
            InvalidInput: missing or undeclared purpose (the message lists the declared ones), batch too
                large, a malformed token or unknown field (named by index).
            RateLimited: the principal's rate is exceeded; nothing was read.
            KeyUnavailable, StoreUnavailable: nothing is returned; the attempt is logged if the log can be.
        """
        now = self.clock()
        with refusals_logged(self.committer.run, now, caller, "detokenize", purpose):
            require_label("request_id", caller.request_id, MAX_REQUEST_ID)
            require_label("purpose", purpose, MAX_PURPOSE)
        self.access.require_purpose(self.committer, caller, "detokenize", purpose, now)
        with refusals_logged(self.committer.run, now, caller, "detokenize", purpose):
            require_batch("items", len(items), self.limits)
            fields, opaque = self._field_names, tk.is_opaque_token
            for i, item in enumerate(items):
                if not (opaque(item.token) and (not item.field or item.field in fields)):
                    check_token_syntax(self.catalog, i, item)  # the common case passed above; this names what is wrong
        self.access.limiter.spend(caller.principal, len(items))
        policy, today = self.access.policy, now.date()
        may_read_any = policy.may_read_any(caller.principal, purpose, today)
        views: dict[str, str | None] = {}  # field -> PLAIN, MASKED or None: asked once a call

        def view(field: str) -> str | None:
            if field not in views:
                views[field] = policy.view(caller.principal, field, purpose, today)
            return views[field]

        cleared = [view(it.field) is not None if it.field else may_read_any for it in items]
        tokens = sorted({it.token for it in items})  # the refused ones too: see the module doc
        domain = policy.domain_of(caller.principal)
        # What each opaque token opens to under the domain's key: a sequential token's row is read by its locator.
        read = (tokens, domain, self.tokens.locate(domain, tokens))
        for round_ in range(ROUNDS):
            first = round_ == 0  # later rounds re-read keys already counted as cache misses
            answer = self.committer.run(
                lambda tx: self._resolve(tx, caller, purpose, view, items, cleared, read, now, first))
            if isinstance(answer, list):
                return answer
            if isinstance(answer, AnswerTooLarge):
                raise answer
            try:
                self.keyring.data_keys(answer, count=False)  # unwrap what was missing, outside any transaction
            except KeyUnavailable:
                self._log_failure(caller, purpose, items, now)
                raise
        raise Unavailable("data keys keep expiring from the cache; retry")

    def _resolve(
        self, tx: Tx, caller: Caller, purpose: str, view: Callable[[str], str | None], items: list[DetokenizeItem],
        cleared: list[bool], read: tuple[list[str], str, list[tuple[int, bytes]]], now: datetime, first: bool = True,
    ) -> list[Detokenized] | dict[KeyId, str] | AnswerTooLarge:
        """Inside the shared transaction: the results (logged), the wrapped DEKs still needed, or,
        for an answer over max_answer_bytes, the refusal (logged, nothing delivered). `read`:
        every token asked for, the caller's token domain, and what the tokens open to in it."""
        tokens, domain, located = read
        judged, wanted = self._judge(items, cleared, _rows_by_token(tx.values_for_tokens(tokens, purpose, domain, located)),
                                     view, purpose)
        keys, missing = self.keyring.cached(wanted, count=first)
        if missing:
            return {key_id: wanted[key_id] for key_id in missing}
        # Every log row of the call starts the same way (ACCESS_COLUMNS order).
        head = (now, caller.request_id, caller.principal, "detokenize", purpose)
        results, log, size = [], [], 0
        for item, item_rows in zip(items, judged):
            token = item.token
            if item_rows is None:  # the caller may read no such field for the purpose
                result = Detokenized(token, "", "", PermissionDenied(NOT_PERMITTED))
                log.append(head + (None, item.field or None, token, DENIED))
            elif not item_rows:
                result = Detokenized(token, "", "", NotFound(NOT_FOUND))
                log.append(head + (None, item.field or None, token, "not_found"))
            elif len(item_rows) == 1:  # every token but a shared deterministic one
                row, verdict = item_rows[0]
                result, outcome = self._read_row(token, row, verdict, keys)
                log.append(head + (row.subject_id, row.field, token, outcome))
            else:
                result, outcomes = self._read_rows(token, item_rows, keys)
                log += [head + (row.subject_id, row.field, token, outcome) for (row, _), outcome in zip(item_rows, outcomes)]
            results.append(result)
            if result.error is None:  # tokens and field names are ASCII (syntax check, catalog names)
                value = result.value
                size += len(token) + len(result.field) + (len(value) if value.isascii() else len(value.encode())) + RESULT_FRAMING
            else:
                size += _result_bytes(result)
        if size > self.limits.max_answer_bytes:
            tx.log_access([row[:-1] + (TOO_LARGE,) if row[-1] in ("ok", "ok_masked") else row for row in log])
            return AnswerTooLarge(f"items: the answer would be about {size} bytes, over the "
                                  f"{self.limits.max_answer_bytes}-byte message limit; send fewer items per call")
        tx.log_access(log)
        return results

    def _judge(
        self, items: list[DetokenizeItem], cleared: list[bool], by_token: dict[str, list[ValueRow]],
        view: Callable[[str], str | None], purpose: str,
    ) -> tuple[list[list[tuple[ValueRow, str]] | None], dict[KeyId, str]]:
        """Per item: None if the caller is refused outright, else each row under its token (and
        field, if the item names one), oldest first, with its verdict: PLAIN, MASKED or the
        refusal's log outcome. Rows of refused items were read all the same (see the module doc).
        And the wrapped DEKs of the rows that may be read, by key id."""
        verdicts: dict[tuple[str, str, bool], str] = {}  # (field, collection purpose, opted out): one answer a call
        judged: list[list[tuple[ValueRow, str]] | None] = []
        wanted: dict[KeyId, str] = {}
        for item, ok in zip(items, cleared):
            if not ok:
                judged.append(None)
                continue
            item_rows = []
            for row in by_token.get(item.token, ()):
                if item.field and row.field != item.field:
                    continue
                key = (row.field, row.purpose, row.opted_out)
                verdict = verdicts.get(key)
                if verdict is None:
                    verdict = verdicts[key] = self._verdict(view, purpose, row)
                item_rows.append((row, verdict))
                if verdict in _READABLE:
                    wanted[(row.subject_id, row.key_version)] = row.wrapped
            judged.append(item_rows)
        return judged, wanted

    def _read_row(self, token: str, row: ValueRow, verdict: str, keys: dict[KeyId, DataKey]) -> tuple[Detokenized, str]:
        """The answer from one row under the token, and its log outcome."""
        if verdict not in _READABLE:
            return Detokenized(token, "", "", NotFound(NOT_FOUND)), verdict  # refused for the row's own reason: a miss's answer
        try:
            plain = keys[(row.subject_id, row.key_version)].open(
                row.ciphertext, row_aad(row.subject_id, row.field, row.token, row.key_version))
        except DecryptionFailed as exc:
            return Detokenized(token, row.field, "", exc), "decryption_failed"
        if verdict == MASKED:
            return Detokenized(token, row.field, self.catalog.field(row.field).masked(plain.decode())), "ok_masked"
        return Detokenized(token, row.field, plain.decode()), "ok"

    def _read_rows(
        self, token: str, rows: list[tuple[ValueRow, str]], keys: dict[KeyId, DataKey]
    ) -> tuple[Detokenized, list[str]]:
        """One item's answer from the rows stored under its token (several subjects' rows for a
        shared deterministic token, see the module doc), and each row's log outcome."""
        answer: Detokenized | None = None
        outcomes = []
        for row, verdict in rows:
            opened, outcome = self._read_row(token, row, verdict, keys)
            outcomes.append(outcome)
            if opened.error is None:
                if answer is None or answer.error is not None:
                    answer = opened
            elif verdict in _READABLE:
                answer = answer or opened  # a row that failed to open is reported only if no other row opens
        return answer or Detokenized(token, "", "", NotFound(NOT_FOUND)), outcomes

    def _verdict(self, view: Callable[[str], str | None], purpose: str, row: ValueRow) -> str:
        """PLAIN or MASKED if this stored value may be read, else the refusal's log outcome."""
        granted = view(row.field)
        if granted is None:
            return DENIED
        return self.access.refusal(purpose, row.purpose, row.opted_out) or granted

    def _log_failure(self, caller: Caller, purpose: str, items: list[DetokenizeItem], now: datetime) -> None:
        try:
            self.committer.run(lambda tx: tx.log_access([
                access_row(now, caller, "detokenize", purpose, "unavailable", field=it.field or None, token=it.token)
                for it in items
            ]))
        except PdvError:
            pass  # the request fails either way; the operational log says why


def check_token_syntax(catalog: Catalog, index: int, item: DetokenizeItem) -> None:
    """Strict token syntax before any lookup (Detokenize and Translate); the token itself is never echoed.

    Syntax only, never the database: a well-formed token that is unknown, shredded or
    forbidden gets past this check alike (no existence oracle). "needs its field" is said
    only of text some format-preserving field could have issued; anything no field could
    have issued is "malformed token".
    """
    spec = None
    if item.field:
        try:
            spec = catalog.field(item.field)
        except UnknownField as exc:
            raise InvalidInput(f"items[{index}]: {exc}", f"items[{index}]") from None
    if tk.is_opaque_token(item.token):
        return
    if spec is None:
        if any(shaped_like(s, item.token) for s in catalog if s.token_kind is TokenKind.FORMAT_PRESERVING):
            raise InvalidInput(f"items[{index}]: a format-preserving token needs its field", f"items[{index}]")
        raise InvalidInput(f"items[{index}]: malformed token", f"items[{index}]")
    # A format-preserving token is drawn from its field's alphabet; anything else (a name or an
    # email sent by mistake) is refused here, before it could be looked up or written to the access log.
    if spec.token_kind is not TokenKind.FORMAT_PRESERVING or not shaped_like(spec, item.token):
        raise InvalidInput(f"items[{index}]: malformed token", f"items[{index}]")


def answer_bytes(results: list[Detokenized]) -> int:
    """An upper bound on the encoded size of the DetokenizeResponse holding `results`."""
    return sum(_result_bytes(r) for r in results)


def _result_bytes(r: Detokenized) -> int:
    # len() of an ASCII str is its UTF-8 length, and isascii() is a flag test: most values need no encoding.
    token, field, value = r.token, r.field, r.value
    return (
        (len(token) if token.isascii() else len(token.encode()))
        + (len(field) if field.isascii() else len(field.encode()))
        + (len(value) if value.isascii() else len(value.encode()))
        + (len(str(r.error).encode()) if r.error is not None else 0) + RESULT_FRAMING
    )


def _rows_by_token(rows: list[ValueRow]) -> dict[str, list[ValueRow]]:
    """The rows read, by token, oldest first (as read)."""
    by_token: dict[str, list[ValueRow]] = {}
    for row in rows:
        same = by_token.get(row.token)
        if same is None:
            by_token[row.token] = [row]
        else:
            same.append(row)
    return by_token


def shaped_like(spec: FieldSpec, token: str) -> bool:
    """Whether `token` could be a format-preserving token of the field `spec` (its alphabet, its length)."""
    return (
        tk.is_plausible_format_preserving(token)
        and set(token) <= set(spec.format_alphabet or "")
        and (spec.max_length is None or len(token) <= spec.max_length)
    )
