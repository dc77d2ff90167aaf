"""EventService: a principal's events to token holders, streamed (vault/services/events).

A subscription reads the outbox every event_poll_seconds (and at once after a full batch),
so it sees events committed by any process or replica. It ends with UNAVAILABLE when the
server stops (a client subscribes again, to this server after its restart or to another),
and with PERMISSION_DENIED if a policy reload takes the caller's `events` grant away.
"""

from __future__ import annotations

import threading
import uuid

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pdv.v1 import event_pb2 as pb
from pdv.v1 import event_pb2_grpc as pb_grpc

from vault.api.auth import current_principal
from vault.api.drain import SHUTTING_DOWN
from vault.api.status import abort_with
from vault.services.common import Caller
from vault.services.events.delivery import BATCH, EventDelivery
from vault.storage import event_kinds as kinds
from vault.storage.events import StoredEvent

KINDS = {
    kinds.SHREDDED: pb.EVENT_KIND_SHREDDED, kinds.FIELDS_SHREDDED: pb.EVENT_KIND_FIELDS_SHREDDED,
    kinds.DISPOSED: pb.EVENT_KIND_DISPOSED, kinds.DEIDENTIFIED: pb.EVENT_KIND_DEIDENTIFIED,
    kinds.CORRECTED: pb.EVENT_KIND_CORRECTED, kinds.CONSENT_WITHDRAWN: pb.EVENT_KIND_CONSENT_WITHDRAWN,
    kinds.CONSENT_GIVEN: pb.EVENT_KIND_CONSENT_GIVEN, kinds.HOLD_PLACED: pb.EVENT_KIND_HOLD_PLACED,
    kinds.HOLD_RELEASED: pb.EVENT_KIND_HOLD_RELEASED,
}
_RECEIPTS = frozenset({kinds.SHREDDED, kinds.FIELDS_SHREDDED, kinds.DISPOSED, kinds.DEIDENTIFIED})


def to_proto(event: StoredEvent) -> pb.Event:
    at = Timestamp()
    at.FromDatetime(event.at)
    return pb.Event(
        cursor=str(event.id), kind=KINDS[event.kind], at=at,
        tokens=[pb.EventToken(field=f, token=t, previous_token=p) for f, t, p in event.tokens],
        receipt_id=event.ref if event.kind in _RECEIPTS else "",
        correction_id=event.ref if event.kind == kinds.CORRECTED else "",
        fields=list(event.fields), purpose=event.purpose,
    )


class EventServicer(pb_grpc.EventServiceServicer):
    def __init__(self, delivery: EventDelivery, poll_seconds: float) -> None:
        self._delivery, self._poll = delivery, poll_seconds
        self._stopping = threading.Event()

    def stop(self) -> None:
        """End every open subscription (UNAVAILABLE) at its next look; new ones are refused by the drain."""
        self._stopping.set()

    def Subscribe(self, request: pb.SubscribeRequest, context: grpc.ServicerContext):  # type: ignore[no-untyped-def]
        caller = Caller(current_principal.get().name, f"subscribe-{uuid.uuid4().hex}")
        try:
            cursor = self._delivery.start(caller, request.cursor).cursor
        except Exception as exc:  # noqa: BLE001 - every error is mapped in one place
            abort_with(context, exc, "Subscribe")
        while context.is_active():
            if self._stopping.is_set():
                context.abort(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)
            try:
                batch = self._delivery.after(caller.principal, cursor)
            except Exception as exc:  # noqa: BLE001
                abort_with(context, exc, "Subscribe")
            for event in batch:
                yield pb.SubscribeResponse(event=to_proto(event))
                cursor = event.id
            if len(batch) < BATCH:
                if not self._delivery.still_allowed(caller):
                    context.abort(grpc.StatusCode.PERMISSION_DENIED, "not allowed: the policy no longer grants you `events`")
                self._stopping.wait(self._poll)

    def Ack(self, request: pb.AckRequest, context: grpc.ServicerContext) -> pb.AckResponse:
        caller = Caller(current_principal.get().name, f"ack-{uuid.uuid4().hex}")
        try:
            return pb.AckResponse(acked_cursor=str(self._delivery.ack(caller, request.cursor)))
        except Exception as exc:  # noqa: BLE001
            abort_with(context, exc, "Ack")
