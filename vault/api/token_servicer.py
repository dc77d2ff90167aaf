"""TokenService: proto ⇄ domain conversion, inside the call's share of the item budget.

The share is taken before the request becomes domain objects: those, and the results,
problems and log rows they lead to, are what grows with the item count."""

from __future__ import annotations

import uuid

import grpc
from pdv.v1 import token_pb2 as pb
from pdv.v1 import token_pb2_grpc as pb_grpc

from vault.api.auth import current_principal
from vault.api.status import abort_with, status_for
from vault.errors import PdvError, Unavailable
from vault.services.common import Caller
from vault.services.detokenize import DetokenizeItem, DetokenizeService
from vault.services.domains.translate import TranslateService
from vault.services.lookup import LookupQuery, LookupService
from vault.services.runtime.budget import ItemBudget
from vault.services.tokenize import TokenizeService
from vault.services.tokenize_model import RecordIn

_OK = grpc.StatusCode.OK.value[0]


def _caller(request_id: str) -> Caller:
    # Read calls may omit the id; the log still ties their rows together.
    return Caller(current_principal.get().name, request_id or f"gen-{uuid.uuid4().hex}")


class TokenServicer(pb_grpc.TokenServiceServicer):
    def __init__(self, tokenizer: TokenizeService, detokenizer: DetokenizeService, finder: LookupService,
                 budget: ItemBudget | None = None, translator: TranslateService | None = None) -> None:
        self._tokenizer, self._detokenizer, self._finder = tokenizer, detokenizer, finder
        self._translator = translator
        self._budget = budget or ItemBudget(1 << 62, 0)

    def Tokenize(self, request: pb.TokenizeRequest, context: grpc.ServicerContext) -> pb.TokenizeResponse:
        # A record's items are its fields (an empty record still costs one).
        items = sum(max(1, len(r.fields)) for r in request.records)
        try:
            with share(self._budget, context, "Tokenize", items):
                return _tokenized(self._tokenizer.tokenize(
                    Caller(current_principal.get().name, request.request_id), request.purpose, request.source,
                    request.notice_id, [RecordIn(r.subject_id, dict(r.fields)) for r in request.records],
                    atomic=request.mode != pb.BATCH_MODE_PARTIAL,
                    notice_given=request.notice_given if request.HasField("notice_given") else None,
                ))
        except Exception as exc:  # noqa: BLE001 - every error is mapped in one place
            abort_with(context, exc, "Tokenize")

    def Detokenize(self, request: pb.DetokenizeRequest, context: grpc.ServicerContext) -> pb.DetokenizeResponse:
        try:
            with share(self._budget, context, "Detokenize", len(request.items)):
                items = [DetokenizeItem(i.token, i.field) for i in request.items]
                results = self._detokenizer.detokenize(_caller(request.request_id), request.purpose, items)
                return _detokenize_response(results)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "Detokenize")

    def Lookup(self, request: pb.LookupRequest, context: grpc.ServicerContext) -> pb.LookupResponse:
        try:
            with share(self._budget, context, "Lookup", len(request.queries)):
                queries = [LookupQuery(q.field, q.value) for q in request.queries]
                results = self._finder.lookup(_caller(request.request_id), request.purpose, queries)
                response = pb.LookupResponse()
                add_result = response.results.add
                for matches in results:
                    add_match = add_result().matches.add
                    for subject_id, token in matches:
                        add_match(subject_id=subject_id, token=token)
                return response
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "Lookup")


    def Translate(self, request: pb.TranslateRequest, context: grpc.ServicerContext) -> pb.TranslateResponse:
        try:
            with share(self._budget, context, "Translate", len(request.items)):
                if self._translator is None:
                    raise Unavailable("translation is not served here")
                items = [DetokenizeItem(i.token, i.field) for i in request.items]
                domain, results = self._translator.translate(
                    _caller(request.request_id), request.purpose, request.from_domain, items)
                return pb.TranslateResponse(domain=domain, results=[_translated(r) for r in results])
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "Translate")


def share(budget: ItemBudget, context: grpc.ServicerContext, method: str, items: int):  # type: ignore[no-untyped-def]
    """The call's share of the item budget, waited for no longer than the call's deadline."""
    return budget.share(method, current_principal.get().name, items, context.time_remaining())


# Answers are built in place (repeated.add): a message made first and passed to its parent's
# constructor is copied into it, which cost more than making it.
def _tokenized(outcome) -> pb.TokenizeResponse:  # type: ignore[no-untyped-def]
    response = pb.TokenizeResponse()
    add = response.results.add
    for subject_id, tokens in outcome.results:
        add(subject_id=subject_id, tokens=tokens)
    for p in outcome.errors:
        response.errors.add(index=p.index, field=p.field, code=status_for(p.error).value[0], message=str(p.error))
    return response


def _detokenize_response(results) -> pb.DetokenizeResponse:  # type: ignore[no-untyped-def]
    response = pb.DetokenizeResponse()
    add = response.results.add
    for r in results:
        if r.error is None:
            add(token=r.token, field=r.field, value=r.value, code=_OK)
        else:
            error: PdvError = r.error
            add(token=r.token, code=status_for(error).value[0], message=str(error))
    return response


def _translated(result) -> pb.TranslateResult:  # type: ignore[no-untyped-def]
    if result.error is None:
        return pb.TranslateResult(token=result.token, field=result.field, translated_token=result.translated_token, code=_OK)
    return pb.TranslateResult(token=result.token, code=status_for(result.error).value[0], message=str(result.error))


def _detokenized(result) -> pb.DetokenizeResult:  # type: ignore[no-untyped-def]
    """One result as its own message (what _detokenize_response adds in place)."""
    response = _detokenize_response([result])
    return response.results[0]
