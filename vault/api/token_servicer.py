"""TokenService: proto ⇄ domain conversion and nothing else."""

from __future__ import annotations

import uuid

import grpc
from pdv.v1 import token_pb2 as pb
from pdv.v1 import token_pb2_grpc as pb_grpc

from vault.api.auth import current_principal
from vault.api.status import abort_with, status_for
from vault.errors import PdvError
from vault.services.common import Caller
from vault.services.detokenize import DetokenizeItem, DetokenizeService
from vault.services.lookup import LookupQuery, LookupService
from vault.services.tokenize import TokenizeService
from vault.services.tokenize_model import RecordIn

_OK = grpc.StatusCode.OK.value[0]


def _caller(request_id: str) -> Caller:
    # Read calls may omit the id; the log still ties their rows together.
    return Caller(current_principal.get().name, request_id or f"gen-{uuid.uuid4().hex}")


class TokenServicer(pb_grpc.TokenServiceServicer):
    def __init__(self, tokenizer: TokenizeService, detokenizer: DetokenizeService, finder: LookupService) -> None:
        self._tokenizer, self._detokenizer, self._finder = tokenizer, detokenizer, finder

    def Tokenize(self, request: pb.TokenizeRequest, context: grpc.ServicerContext) -> pb.TokenizeResponse:
        records = [RecordIn(r.subject_id, dict(r.fields)) for r in request.records]
        try:
            outcome = self._tokenizer.tokenize(
                Caller(current_principal.get().name, request.request_id), request.purpose, request.source,
                request.notice_id, records, atomic=request.mode != pb.BATCH_MODE_PARTIAL,
            )
        except Exception as exc:  # noqa: BLE001 - every error is mapped in one place
            abort_with(context, exc, "Tokenize")
        return pb.TokenizeResponse(
            results=[pb.RecordTokens(subject_id=s, tokens=t) for s, t in outcome.results],
            errors=[
                pb.ItemError(index=p.index, field=p.field, code=status_for(p.error).value[0], message=str(p.error))
                for p in outcome.errors
            ],
        )

    def Detokenize(self, request: pb.DetokenizeRequest, context: grpc.ServicerContext) -> pb.DetokenizeResponse:
        items = [DetokenizeItem(i.token, i.field) for i in request.items]
        try:
            results = self._detokenizer.detokenize(_caller(request.request_id), request.purpose, items)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "Detokenize")
        return pb.DetokenizeResponse(results=[_detokenized(r) for r in results])

    def Lookup(self, request: pb.LookupRequest, context: grpc.ServicerContext) -> pb.LookupResponse:
        queries = [LookupQuery(q.field, q.value) for q in request.queries]
        try:
            results = self._finder.lookup(_caller(request.request_id), request.purpose, queries)
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "Lookup")
        return pb.LookupResponse(
            results=[pb.LookupResult(matches=[pb.LookupMatch(subject_id=s, token=t) for s, t in m]) for m in results]
        )


def _detokenized(result) -> pb.DetokenizeResult:  # type: ignore[no-untyped-def]
    if result.error is None:
        return pb.DetokenizeResult(token=result.token, field=result.field, value=result.value, code=_OK)
    error: PdvError = result.error
    return pb.DetokenizeResult(token=result.token, code=status_for(error).value[0], message=str(error))
