"""DisclosureService: proto ⇄ domain for public-disclosure rewriting (vault/services/rights/
disclosure.py), inside the call's share of the item budget."""

from __future__ import annotations

import uuid

import grpc
from pdv.v1 import disclosure_pb2 as pb
from pdv.v1 import disclosure_pb2_grpc as pb_grpc

from vault.api.status import abort_with
from vault.api.auth import current_principal
from vault.api.token_servicer import share
from vault.services.common import Caller
from vault.services.rights.disclosure import MASKED, NOT_A_TOKEN, PUBLIC_OUT, REDACTED, DiscloseItem, DisclosureService
from vault.services.runtime.budget import ItemBudget

_OUTCOMES = {
    PUBLIC_OUT: pb.DISCLOSURE_OUTCOME_PUBLIC, MASKED: pb.DISCLOSURE_OUTCOME_MASKED,
    REDACTED: pb.DISCLOSURE_OUTCOME_REDACTED, NOT_A_TOKEN: pb.DISCLOSURE_OUTCOME_NOT_A_TOKEN,
}


def _caller(request_id: str) -> Caller:
    return Caller(current_principal.get().name, request_id or f"gen-{uuid.uuid4().hex}")


class DisclosureServicer(pb_grpc.DisclosureServiceServicer):
    def __init__(self, disclosure: DisclosureService, budget: ItemBudget | None = None) -> None:
        self._disclosure = disclosure
        self._budget = budget or ItemBudget(1 << 62, 0)

    def Disclose(self, request: pb.DiscloseRequest, context: grpc.ServicerContext) -> pb.DiscloseResponse:
        try:
            with share(self._budget, context, "Disclose", len(request.items)):
                items = [DiscloseItem(i.token, i.field) for i in request.items]
                results = self._disclosure.disclose(_caller(request.request_id), request.purpose, request.case_id, items)
                return pb.DiscloseResponse(results=[pb.DiscloseResult(outcome=_OUTCOMES[r.outcome], text=r.text)
                                                    for r in results])
        except Exception as exc:  # noqa: BLE001 - every error is mapped in one place
            abort_with(context, exc, "Disclose")
