"""Events to token holders (pdv.v1 EventService), as ``PdvClient.events``.

    with PdvClient(target, api_key=key) as pdv:
        for event in pdv.events.subscribe():
            for t in event.tokens:
                forget(t.field, t.token)      # your own copy: the token is dead (kind "shredded")
            # returning to the loop acknowledges the event

``subscribe()`` yields typed events in order, at least once: it acknowledges an event once
the loop asks for the next one (every ``ack_every`` events; the ones handled but not yet
acknowledged when the loop ends, too). Leaving the loop, by ``break`` or an exception, leaves
the event in hand unacknowledged (call ``events.ack(event.cursor)`` if it was handled), and
when the stream breaks (the server stopped or restarted, the network dropped) it subscribes
again after the last event handled, waiting a little longer each time. An event handled but
not yet acknowledged when the process dies comes again: make handling one idempotent (its
``receipt_id`` or ``correction_id`` names the change). A cursor older than what the server
keeps raises ``OutOfRange``, whose message says what to do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import grpc
from pdv.v1 import event_pb2, event_pb2_grpc

from pdv_client.errors import error_for_status

if TYPE_CHECKING:
    from pdv_client.client import PdvClient

__all__ = ["Event", "EventToken", "Events", "KINDS"]

_KINDS = {
    event_pb2.EVENT_KIND_SHREDDED: "shredded", event_pb2.EVENT_KIND_FIELDS_SHREDDED: "fields_shredded",
    event_pb2.EVENT_KIND_DISPOSED: "disposed", event_pb2.EVENT_KIND_DEIDENTIFIED: "deidentified",
    event_pb2.EVENT_KIND_CORRECTED: "corrected", event_pb2.EVENT_KIND_CONSENT_WITHDRAWN: "consent_withdrawn",
    event_pb2.EVENT_KIND_CONSENT_GIVEN: "consent_given", event_pb2.EVENT_KIND_HOLD_PLACED: "hold_placed",
    event_pb2.EVENT_KIND_HOLD_RELEASED: "hold_released",
}
KINDS = tuple(_KINDS.values())
# A broken stream is subscribed to again; these end the subscription instead (the caller must act).
_RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED,
                      grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})


@dataclass(frozen=True)
class EventToken:
    """A token of the subject as you were issued it; `previous_token` for a correction that changed it."""

    field: str
    token: str
    previous_token: str = ""


@dataclass(frozen=True)
class Event:
    cursor: str
    kind: str  # one of KINDS ("unknown" for a kind newer than this client)
    at: datetime
    tokens: tuple[EventToken, ...]
    receipt_id: str = ""
    correction_id: str = ""
    fields: tuple[str, ...] = ()
    purpose: str = ""


class Events:
    """The EventService calls of one PdvClient (same channel, key and error mapping)."""

    def __init__(self, client: PdvClient) -> None:
        self._client = client
        self._stub = event_pb2_grpc.EventServiceStub(client._channel)  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        return "Events(<client>)"

    def ack(self, cursor: str, timeout: float | None = None) -> str:
        """Acknowledge every event up to `cursor`; the cursor the server now resumes after."""
        request = event_pb2.AckRequest(cursor=cursor)
        return self._client._call(self._stub.Ack, request, "", timeout).acked_cursor

    def stream(self, cursor: str = "", stop: threading.Event | None = None) -> Iterator[Event]:
        """One subscription, as the server sends it: no acknowledgement, no reconnection; setting
        `stop` cancels it. Raises the mapped PdvError when the stream ends with an error."""
        call = self._stub.Subscribe(event_pb2.SubscribeRequest(cursor=cursor), metadata=self._client._metadata)
        if stop is not None:
            ended = threading.Event()

            def cancel_on_stop() -> None:
                while not ended.wait(0.2):
                    if stop.is_set():
                        call.cancel()
                        return

            threading.Thread(target=cancel_on_stop, name="pdv-events-stop", daemon=True).start()
        try:
            for message in call:
                yield _event(message.event)
        except grpc.RpcError as exc:
            if stop is not None and stop.is_set():
                return
            raise error_for_status(exc) from None
        finally:
            if stop is not None:
                ended.set()
            call.cancel()

    def subscribe(
        self, cursor: str | None = None, *, ack_every: int = 1, retry_seconds: float = 0.5,
        max_retry_seconds: float = 30.0, stop: threading.Event | None = None,
    ) -> Iterator[Event]:
        """Your events, in order, at least once, acknowledged and resumed (module docstring).

        Args:
            cursor: start after this cursor; None resumes after the last acknowledged one.
            ack_every: acknowledge after this many handled events (and always when the loop ends).
            retry_seconds, max_retry_seconds: the wait before subscribing again, doubled each time up to the max.
            stop: set it to end the subscription (checked when the stream breaks or yields).

        Raises:
            OutOfRange: the cursor is older than the events kept; the message says what to do.
            PermissionDenied: no `events` grant.
        """
        handled, acked, delay = cursor or "", cursor or "", retry_seconds
        since_ack = 0
        try:
            while stop is None or not stop.is_set():
                try:
                    for event in self.stream(handled, stop):
                        delay = retry_seconds
                        yield event
                        handled, since_ack = event.cursor, since_ack + 1
                        if since_ack >= ack_every:
                            acked, since_ack = self.ack(handled), 0
                        if stop is not None and stop.is_set():
                            return
                except Exception as exc:  # noqa: BLE001 - only the retried statuses are swallowed
                    status = getattr(exc, "status", None)
                    if status not in _RETRIED:
                        raise
                if stop is not None:
                    if stop.wait(delay):
                        return
                else:
                    time.sleep(delay)
                delay = min(delay * 2, max_retry_seconds)
        finally:
            if handled and handled != acked:
                try:
                    self.ack(handled)
                except Exception:  # noqa: BLE001 - best effort: unacknowledged events come again
                    pass


def _event(message: event_pb2.Event) -> Event:
    return Event(
        cursor=message.cursor, kind=_KINDS.get(message.kind, "unknown"),
        at=message.at.ToDatetime().replace(tzinfo=timezone.utc),
        tokens=tuple(EventToken(t.field, t.token, t.previous_token) for t in message.tokens),
        receipt_id=message.receipt_id, correction_id=message.correction_id,
        fields=tuple(message.fields), purpose=message.purpose,
    )
