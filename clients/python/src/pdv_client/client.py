"""PdvClient: a thin typed wrapper over the pdv.v1 TokenService stub.

It adds what every caller would otherwise rewrite: the ``x-api-key``
metadata, a default timeout, splitting large calls into batches with
deterministic per-batch request ids (so a retry of the whole call is
idempotent), and mapping gRPC status codes to :mod:`pdv_client.errors`.
"""

from __future__ import annotations

import uuid
from datetime import timezone
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, NoReturn, TypeVar

import grpc

from pdv.v1 import subject_pb2, subject_pb2_grpc, token_pb2, token_pb2_grpc
from pdv_client.errors import Internal, error_for_status
from pdv_client.models import (
    CorrectedValue, Correction, DetokenizeResult, ItemError, Match, Record, RecordTokens, ShredOutcome, TranslateResult,
)
from pdv_client.admin import Admin
from pdv_client.disclosure import Disclosure
from pdv_client.events import Events
from pdv_client.privacy_requests import PrivacyRequests

__all__ = ["PdvClient", "DEFAULT_BATCH_SIZE", "DEFAULT_TIMEOUT"]

DEFAULT_BATCH_SIZE = 1000
DEFAULT_TIMEOUT = 30.0
API_KEY_METADATA = "x-api-key"

BatchModeName = Literal["atomic", "partial"]
RecordLike = Record | Mapping[str, Any] | token_pb2.Record
TokenRef = str | tuple[str, str]

_MODES: dict[str, token_pb2.BatchMode] = {
    "atomic": token_pb2.BATCH_MODE_ATOMIC,
    "partial": token_pb2.BATCH_MODE_PARTIAL,
}
_RECORD_KEYS = frozenset({"fields", "subject_id"})
_T = TypeVar("_T")


class PdvClient:
    """Client of the PDV TokenService.

    Use it as a context manager, or call :meth:`close`. Every method raises a
    :class:`pdv_client.errors.PdvError` subclass for a failed call, and
    ``ValueError``/``TypeError`` for arguments it can reject locally (before
    anything is sent).

    Calls larger than ``batch_size`` items are sent as several requests, one
    after the other. Each batch ``i`` carries the request id
    ``f"{request_id}/{i}"``, so repeating a call with the same ``request_id``
    (and the same items and batch size) repeats the same requests. When no
    ``request_id`` is given a random one is made per call. If a batch fails,
    the batches before it have already been applied; the exception's
    ``request_id`` names the failed batch.
    """

    def __init__(
        self,
        target: str,
        *,
        api_key: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        options: Sequence[tuple[str, Any]] | None = None,
    ) -> None:
        """Open a channel to target, e.g. "127.0.0.1:50051".

        Args:
            target: host:port of the PDV server.
            api_key: sent as ``x-api-key`` metadata on every call, if given.
            credentials: TLS (optionally with a client certificate) via
                ``grpc.ssl_channel_credentials(...)``; None for plaintext.
            timeout: default deadline in seconds for each request; None waits
                forever.
            options: extra gRPC channel options.
        """
        channel_options = list(options or ())
        if credentials is None:
            channel = grpc.insecure_channel(target, options=channel_options)
        else:
            channel = grpc.secure_channel(target, credentials, options=channel_options)
        self._setup(channel, target, api_key, timeout, owns_channel=True, tls=credentials is not None)

    @classmethod
    def from_channel(
        cls,
        channel: grpc.Channel,
        *,
        api_key: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        owns_channel: bool = False,
    ) -> PdvClient:
        """Wrap an existing channel.

        The channel is closed by :meth:`close` only when ``owns_channel`` is
        true; by default whoever made it keeps closing it.
        """
        client = cls.__new__(cls)
        client._setup(channel, "<channel>", api_key, timeout, owns_channel=owns_channel, tls=None)
        return client

    def _setup(
        self,
        channel: grpc.Channel,
        target: str,
        api_key: str | None,
        timeout: float | None,
        *,
        owns_channel: bool,
        tls: bool | None,
    ) -> None:
        if api_key is not None and not api_key:
            raise ValueError("api_key must be non-empty or None")
        self._channel = channel
        self._target = target
        self._has_api_key = api_key is not None
        self._metadata: tuple[tuple[str, str], ...] = (
            ((API_KEY_METADATA, api_key),) if api_key is not None else ()
        )
        self._timeout = timeout
        self._owns_channel = owns_channel
        self._tls = tls
        self._closed = False
        # The generated grpc module has no type stubs (protoc --pyi_out covers _pb2 only).
        self._stub = token_pb2_grpc.TokenServiceStub(channel)  # type: ignore[no-untyped-call]
        self._subjects = subject_pb2_grpc.SubjectServiceStub(channel)  # type: ignore[no-untyped-call]
        #: Residents' privacy requests and complaints (RequestService).
        self.requests = PrivacyRequests(self)
        #: Public-disclosure rewriting of exported records (DisclosureService).
        self.disclosure = Disclosure(self)
        #: Events to token holders: shreds, corrections, consent and hold changes (EventService).
        self.events = Events(self)
        #: Administering the vault: keys, disposal, the access log, holds, policy (AdminService).
        self.admin = Admin(self)

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> None:
        """Close the channel if this client owns it. Safe to call twice."""
        if not self._closed:
            self._closed = True
            if self._owns_channel:
                self._channel.close()

    def __enter__(self) -> PdvClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        key = "<redacted>" if self._has_api_key else None
        tls = "" if self._tls is None else f", tls={self._tls}"
        return f"PdvClient(target={self._target!r}, api_key={key}{tls})"

    def __getstate__(self) -> NoReturn:
        # The state holds the API key; a pickled client would carry it to disk.
        raise TypeError("PdvClient cannot be pickled")

    # -- TokenService --------------------------------------------------------

    def tokenize(
        self,
        records: Sequence[RecordLike],
        *,
        purpose: str,
        source: str,
        notice_id: str | None = None,
        notice_given: bool | None = None,
        request_id: str | None = None,
        mode: BatchModeName = "atomic",
        batch_size: int = DEFAULT_BATCH_SIZE,
        timeout: float | None = None,
    ) -> list[RecordTokens]:
        """Store records' fields encrypted and return their tokens.

        Args:
            records: each a :class:`Record`, or a mapping
                ``{"fields": {name: value, ...}, "subject_id": "..."}`` where
                ``subject_id`` is optional (absent or None creates a new
                subject). A ``pdv.v1.token_pb2.Record`` is accepted as well.
            purpose: why the data was collected.
            source: the system it came from, e.g. "311".
            notice_id: the collection notice shown to the person, if any.
            notice_given: whether the person was told of the collection; None
                (default) means "exactly when notice_id names a notice".
            request_id: base id for idempotent retries (see the class doc).
                Optional: without it each call gets a random id, so repeating
                the call is a new collection (new subjects and random tokens),
                not a retry. Pass your own id whenever you may retry.
            mode: "atomic" (one invalid record fails its whole batch) or
                "partial" (invalid records come back with ``errors`` set).
            batch_size: records per request.
            timeout: per-request deadline; None uses the client default.

        Returns:
            One RecordTokens per record, in order.

        Raises:
            PdvError: subclass for the failed request, e.g. InvalidArgument in
                atomic mode, PermissionDenied for the purpose.
            TypeError, ValueError: for malformed records or arguments.
        """
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {sorted(_MODES)}")
        messages = [_record_message(index, record) for index, record in enumerate(records)]
        results: list[RecordTokens] = []
        for start, batch_id, batch in _batches(messages, request_id, batch_size):
            request = token_pb2.TokenizeRequest(
                request_id=batch_id,
                purpose=purpose,
                source=source,
                notice_id=notice_id or "",
                records=batch,
                mode=_MODES[mode],
            )
            if notice_given is not None:
                request.notice_given = notice_given
            response = self._call(self._stub.Tokenize, request, batch_id, timeout)
            _check_count(len(response.results), len(batch), batch_id)
            errors: dict[int, list[ItemError]] = {}
            for error in response.errors:
                errors.setdefault(error.index, []).append(
                    ItemError(start + error.index, error.field, error.code, error.message)
                )
            results.extend(
                RecordTokens(item.subject_id, dict(item.tokens), tuple(errors.get(offset, ())))
                for offset, item in enumerate(response.results)
            )
        return results

    def detokenize(
        self,
        tokens: Sequence[TokenRef],
        *,
        purpose: str,
        request_id: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        timeout: float | None = None,
    ) -> list[DetokenizeResult]:
        """Return the field and value behind each token.

        Args:
            tokens: each a token string, or a ``(token, field)`` pair (the
                field is required for format-preserving tokens).
            purpose: why the values are needed.
            request_id: base id recorded in the access log (see the class doc).
            batch_size: tokens per request.
            timeout: per-request deadline; None uses the client default.

        Returns:
            One DetokenizeResult per token, in order. A token that cannot be
            read is not an exception here: its result has a non-zero ``code``
            (see :meth:`DetokenizeResult.to_exception`).

        Raises:
            PdvError: subclass when the whole request fails.
        """
        items = [_detokenize_item(index, ref) for index, ref in enumerate(tokens)]
        results: list[DetokenizeResult] = []
        for _, batch_id, batch in _batches(items, request_id, batch_size):
            request = token_pb2.DetokenizeRequest(purpose=purpose, items=batch, request_id=batch_id)
            response = self._call(self._stub.Detokenize, request, batch_id, timeout)
            _check_count(len(response.results), len(batch), batch_id)
            results.extend(
                DetokenizeResult(r.token, r.field, r.value, r.code, r.message) for r in response.results
            )
        return results

    def detokenize_one(
        self,
        token: str,
        *,
        purpose: str,
        field: str | None = None,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """Return the value behind one token.

        Raises:
            NotFound: the token does not exist (or was shredded).
            PdvError: subclass for any other failure of the item or the call.
        """
        ref: TokenRef = token if field is None else (token, field)
        (result,) = self.detokenize([ref], purpose=purpose, request_id=request_id, timeout=timeout)
        error = result.to_exception()
        if error is not None:
            raise error
        return result.value

    def lookup(
        self,
        field: str,
        value: str,
        *,
        purpose: str,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> list[Match]:
        """Return the tokens (and subjects) holding value in field; [] if none."""
        (matches,) = self.lookup_many(
            [(field, value)], purpose=purpose, request_id=request_id, timeout=timeout
        )
        return matches

    def lookup_many(
        self,
        queries: Sequence[tuple[str, str]],
        *,
        purpose: str,
        request_id: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        timeout: float | None = None,
    ) -> list[list[Match]]:
        """Run several lookups; one list of matches per ``(field, value)`` query, in order.

        Raises:
            PdvError: subclass when the request fails, e.g. InvalidArgument for
                a field that is not searchable.
        """
        messages = [_lookup_query(index, query) for index, query in enumerate(queries)]
        results: list[list[Match]] = []
        for _, batch_id, batch in _batches(messages, request_id, batch_size):
            request = token_pb2.LookupRequest(purpose=purpose, queries=batch, request_id=batch_id)
            response = self._call(self._stub.Lookup, request, batch_id, timeout)
            _check_count(len(response.results), len(batch), batch_id)
            results.extend(
                [Match(m.subject_id, m.token) for m in result.matches] for result in response.results
            )
        return results

    def translate(
        self,
        tokens: Sequence[TokenRef],
        *,
        from_domain: str,
        purpose: str,
        request_id: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        timeout: float | None = None,
    ) -> list[TranslateResult]:
        """Convert tokens issued in token domain ``from_domain`` into tokens of the caller's own
        domain (needs the ``translate`` grant on their fields for ``purpose``).

        Args:
            tokens: each a token string, or a ``(token, field)`` pair (the field is
                required for format-preserving tokens).
            from_domain: the domain the tokens were issued in, e.g. ``partner:acme``.
            purpose: why the tokens are translated.

        Returns:
            One TranslateResult per token, in order; a token that cannot be translated
            has a non-zero ``code`` (an unknown, shredded or other-domain token is
            NOT_FOUND, exactly alike).

        Raises:
            PdvError: subclass when the whole request fails (InvalidArgument for an
                unknown ``from_domain`` or the caller's own).
        """
        items = [_detokenize_item(index, ref) for index, ref in enumerate(tokens)]
        results: list[TranslateResult] = []
        for _, batch_id, batch in _batches(items, request_id, batch_size):
            request = token_pb2.TranslateRequest(purpose=purpose, from_domain=from_domain, items=batch,
                                                 request_id=batch_id)
            response = self._call(self._stub.Translate, request, batch_id, timeout)
            _check_count(len(response.results), len(batch), batch_id)
            results.extend(
                TranslateResult(r.token, r.field, r.translated_token, r.code, r.message) for r in response.results
            )
        return results

    # -- subjects (admin principals only) ---------------------------------------

    def shred_subjects(
        self, subject_ids: Sequence[str], *, reason: str, batch_size: int = DEFAULT_BATCH_SIZE,
        timeout: float | None = None, progress: Callable[[int], None] | None = None, case_id: str | None = None,
    ) -> list[ShredOutcome]:
        """Crypto-shred each subject (idempotent); a legal hold blocks it and says so.

        `progress`, if given, is called with the number of subjects done after each batch.
        `case_id` links the shred to that open privacy request (``requests.show`` lists it).
        """
        outcomes: list[ShredOutcome] = []
        for _, batch_id, batch in _batches(list(subject_ids), None, batch_size):
            request = subject_pb2.ShredSubjectsRequest(subject_ids=batch, reason=reason, case_id=case_id or "")
            response = self._call(self._subjects.ShredSubjects, request, batch_id, timeout)
            _check_count(len(response.outcomes), len(batch), batch_id)
            outcomes.extend(_shred_outcome(o) for o in response.outcomes)
            if progress is not None:
                progress(len(batch))
        return outcomes

    def shred_fields(
        self, subject_id: str, fields: Sequence[str], *, reason: str, timeout: float | None = None,
        case_id: str | None = None,
    ) -> ShredOutcome:
        """Crypto-shred some fields of one subject; `case_id` as for shred_subjects."""
        request = subject_pb2.ShredFieldsRequest(subject_id=subject_id, fields=list(fields), reason=reason,
                                                 case_id=case_id or "")
        return _shred_outcome(self._call(self._subjects.ShredFields, request, "", timeout).outcome)

    def place_hold(self, subject_id: str, *, case_id: str, reason: str, timeout: float | None = None) -> bool:
        """Block disposal of the subject; False if this case already held it."""
        request = subject_pb2.PlaceHoldRequest(subject_id=subject_id, case_id=case_id, reason=reason)
        return self._call(self._subjects.PlaceHold, request, "", timeout).placed

    def release_hold(self, subject_id: str, *, case_id: str, timeout: float | None = None) -> int:
        """Release this case's hold; returns how many holds ended (0 or 1)."""
        request = subject_pb2.ReleaseHoldRequest(subject_id=subject_id, case_id=case_id)
        return self._call(self._subjects.ReleaseHold, request, "", timeout).released

    def verify_receipt(self, receipt: str, signature: str, *, timeout: float | None = None) -> bool:
        """True only for an untampered shred receipt signed by the vault's key."""
        request = subject_pb2.VerifyReceiptRequest(receipt=receipt, signature=signature)
        return self._call(self._subjects.VerifyReceipt, request, "", timeout).valid

    def set_consent(self, subject_id: str, purpose: str, *, opted_out: bool, timeout: float | None = None,
                    case_id: str | None = None) -> bool:
        """Opt the subject out of `purpose` (or back in); False if it was already so.
        `case_id` links the change to that open privacy request."""
        request = subject_pb2.SetConsentRequest(subject_id=subject_id, purpose=purpose, opted_out=opted_out,
                                                case_id=case_id or "")
        return self._call(self._subjects.SetConsent, request, "", timeout).changed

    def get_consent(self, subject_id: str, *, timeout: float | None = None) -> list[str]:
        """The purposes the subject opted out of, sorted."""
        request = subject_pb2.GetConsentRequest(subject_id=subject_id)
        return list(self._call(self._subjects.GetConsent, request, "", timeout).opted_out_purposes)

    def correct_value(
        self, subject_id: str, field: str, new_value: str, *, reason: str, case_id: str | None = None,
        request_id: str | None = None, timeout: float | None = None,
    ) -> list[CorrectedValue]:
        """Correct every value the subject holds of `field` (one per collection purpose).

        Args:
            new_value: the corrected value; never logged or echoed back.
            reason: why (kept in the correction history; no personal data).
            case_id: the open privacy request (req_…) the correction answers; it is
                linked to it (``requests.show`` lists it).
            request_id: idempotency key; a retry with the same id and content gets the
                first answer, different content raises AlreadyExists. Default: a fresh id.

        Raises:
            NotFound: the subject holds no value of the field (unknown, shredded or never
                collected), or `case_id` names no open privacy request.
            PermissionDenied: no `correct` grant on the field for each of its purposes.
            InvalidArgument: the value breaks the field's rules (named, not echoed).
        """
        request_id = request_id or uuid.uuid4().hex
        request = subject_pb2.CorrectValueRequest(subject_id=subject_id, field=field, new_value=new_value,
                                                  reason=reason, case_id=case_id or "", request_id=request_id)
        response = self._call(self._subjects.CorrectValue, request, request_id, timeout)
        return [CorrectedValue(v.purpose, v.token, v.token_changed) for v in response.values]

    def list_corrections(self, subject_id: str, *, timeout: float | None = None) -> list[Correction]:
        """The subject's correction history (of the fields the caller may correct), oldest first."""
        request = subject_pb2.ListCorrectionsRequest(subject_id=subject_id)
        response = self._call(self._subjects.ListCorrections, request, "", timeout)
        return [
            Correction(c.field, c.purpose, c.token, c.corrected_at.ToDatetime(tzinfo=timezone.utc), c.corrected_by,
                       c.reason, c.case_id, c.request_id, c.old_value_fingerprint)
            for c in response.corrections
        ]

    def access_report(
        self, subject_id: str, *, case_id: str | None = None, include_values: bool = False,
        timeout: float | None = None,
    ) -> subject_pb2.AccessReport:
        """The subject's access report: every value held and why, every access to it from the
        access log (each entry checked), and every shred or disposal with its receipt.

        Args:
            case_id: the open privacy request (req_…) the report answers; it is linked to it.
            include_values: include the values, plain where the caller has `export` for
                purpose subject_access on the field, masked where it has a detokenize grant.

        Raises:
            NotFound: PDV never held data of this subject, or `case_id` names no open request.
            PermissionDenied: no export or detokenize grant for subject_access on every field.
        """
        request = subject_pb2.GetAccessReportRequest(subject_id=subject_id, case_id=case_id or "",
                                                     include_values=include_values)
        return self._call(self._subjects.GetAccessReport, request, "", timeout).report

    # -- helpers ---------------------------------------------------------------

    def _call(
        self, method: Callable[..., _T], request: Any, request_id: str, timeout: float | None
    ) -> _T:
        if self._closed:
            raise ValueError("PdvClient is closed")
        try:
            return method(
                request,
                timeout=self._timeout if timeout is None else timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as err:
            raise error_for_status(err, request_id=request_id) from err


_SHRED_STATUS = {
    subject_pb2.SHRED_STATUS_SHREDDED: "shredded",
    subject_pb2.SHRED_STATUS_ALREADY_SHREDDED: "already_shredded",
    subject_pb2.SHRED_STATUS_ON_HOLD: "on_hold",
    subject_pb2.SHRED_STATUS_NOT_FOUND: "not_found",
}


def _shred_outcome(o: Any) -> ShredOutcome:
    return ShredOutcome(o.subject_id, _SHRED_STATUS.get(o.status, "unknown"), tuple(o.hold_case_ids), o.receipt, o.signature)


def _batches(
    items: list[_T], request_id: str | None, batch_size: int
) -> Iterator[tuple[int, str, list[_T]]]:
    """Yield (start index, request id, items) per batch."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    base = request_id or str(uuid.uuid4())
    for number, start in enumerate(range(0, len(items), batch_size)):
        yield start, f"{base}/{number}", items[start : start + batch_size]


def _check_count(got: int, sent: int, request_id: str) -> None:
    if got != sent:
        raise Internal(f"server returned {got} results for {sent} items", request_id=request_id)


def _record_message(index: int, record: RecordLike) -> token_pb2.Record:
    """Convert one tokenize input to a proto Record; errors name keys, never values."""
    if isinstance(record, token_pb2.Record):
        return record
    if isinstance(record, Record):
        fields, subject_id = record.fields, record.subject_id
    elif isinstance(record, Mapping):
        unknown = set(record) - _RECORD_KEYS
        if unknown or "fields" not in record:
            raise ValueError(
                f"record {index}: expected {{'fields': {{name: value}}, 'subject_id': optional}}"
                f" or a Record; got keys {sorted(map(str, record))}"
            )
        fields, subject_id = record["fields"], record.get("subject_id")
    else:
        raise TypeError(f"record {index}: expected a Record or a mapping, not {type(record).__name__}")
    if not isinstance(fields, Mapping):
        raise TypeError(f"record {index}: fields must be a mapping, not {type(fields).__name__}")
    if subject_id is not None and not isinstance(subject_id, str):
        raise TypeError(f"record {index}: subject_id must be a str or None")
    for name, value in fields.items():
        if not isinstance(name, str) or not isinstance(value, str):
            where = f" (field {name!r})" if isinstance(name, str) else ""
            raise TypeError(f"record {index}: field names and values must be str{where}")
    return token_pb2.Record(subject_id=subject_id or "", fields=dict(fields))


def _detokenize_item(index: int, ref: TokenRef) -> token_pb2.DetokenizeItem:
    if isinstance(ref, str):
        return token_pb2.DetokenizeItem(token=ref)
    if isinstance(ref, tuple) and len(ref) == 2 and all(isinstance(part, str) for part in ref):
        return token_pb2.DetokenizeItem(token=ref[0], field=ref[1])
    raise TypeError(f"token {index}: expected a str or a (token, field) pair of str")


def _lookup_query(index: int, query: tuple[str, str]) -> token_pb2.LookupQuery:
    if isinstance(query, tuple) and len(query) == 2 and all(isinstance(part, str) for part in query):
        return token_pb2.LookupQuery(field=query[0], value=query[1])
    raise TypeError(f"query {index}: expected a (field, value) pair of str")
