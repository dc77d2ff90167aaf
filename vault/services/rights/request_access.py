"""Who may handle privacy requests, and the access-log entries of every request operation.

A principal named in `admin_principals`, or granted the policy's `requests` action on every
field for every purpose, may open, list, show and update requests; anyone else is refused
with PermissionDenied and the refusal is logged (outcome "denied") in a transaction of its
own, before anything is read. The decision depends on the caller only.

Every operation is one access-log entry per request it touches: action "request_<op>",
purpose "privacy_request", the request's subject (if any), the case id in the token column,
and the outcome (the status reached, "ok" for a read, "denied", "refused_transition") —
never its free text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from vault.errors import PermissionDenied
from vault.services.access import DENIED, AccessControl
from vault.services.common import Caller, access_row
from vault.storage.store import Store, Tx

PURPOSE = "privacy_request"


def entry(at: datetime, caller: Caller, op: str, outcome: str, subject_id: str | None, case_id: str | None) -> tuple:
    """The access-log row of one request operation on one request."""
    return access_row(at, caller, f"request_{op}", PURPOSE, outcome, subject_id, None, case_id)


class RequestAccess:
    """The `requests` grant (or `admin_principals`), asked once per RequestService call."""

    def __init__(self, access: AccessControl, admin_principals: Iterable[str], store: Store,
                 clock: Callable[[], datetime]) -> None:
        self.access, self.store, self.clock = access, store, clock
        self.admins = frozenset(admin_principals)

    def require(self, caller: Caller, op: str, subject_id: str | None = None, case_id: str | None = None) -> None:
        """Allow `op` (open, list, show, update, overdue), or log the refusal and raise PermissionDenied."""
        if caller.principal in self.admins or self.access.may_handle_requests(caller.principal):
            return
        self.log(caller, [entry(self.clock(), caller, op, DENIED, subject_id, case_id)])
        raise PermissionDenied(
            "not permitted to handle privacy requests: that needs a requests grant on every field for every "
            "purpose, or a place in admin_principals")

    def log(self, caller: Caller, rows: list[tuple], tx: Tx | None = None) -> None:
        """Write access-log rows in `tx`, or in a transaction of their own."""
        if tx is not None:
            tx.log_access(rows)
            return
        with self.store.transaction() as own:
            own.log_access(rows)
