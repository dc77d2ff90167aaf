"""Who may make an AdminService call, and the access-log entry every call leaves.

A call needs its duty's grant (vault.policy.ADMIN_ACTIONS: keys, dispose, audit, holds,
policy) on every catalog field for every purpose, since it acts on the whole vault and
carries no purpose; or a place in `admin_principals`, the server's unscoped override (as
for SubjectService and RequestService). The decision depends on the caller only, and is
made before anything is read or changed.

Each call leaves one entry: `denied` (then PermissionDenied), or once it has run `ok`,
`refused` (a check said no: trim before the backup horizon, an invalid policy file, a
server without the KEK admin token), `invalid` (bad input) or `failed` (a dependency).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from vault.catalog import Catalog
from vault.errors import ConfigError, InvalidInput, PdvError, PermissionDenied, RotationRefused
from vault.services.access import DENIED, AccessControl
from vault.services.common import Caller, access_row
from vault.storage.store import Store

log = logging.getLogger("pdv.admin")

OK, REFUSED, INVALID, FAILED = "ok", "refused", "invalid", "failed"


def outcome_of(error: BaseException) -> str:
    if isinstance(error, PermissionDenied):
        return DENIED
    if isinstance(error, (RotationRefused, ConfigError)):
        return REFUSED
    if isinstance(error, InvalidInput):
        return INVALID
    return FAILED


class AdminAccess:
    """The policy in force and the admin_principals override, asked once per AdminService call."""

    def __init__(
        self, access: AccessControl, admin_principals: Iterable[str], store: Store, catalog: Catalog,
        clock: Callable[[], datetime],
    ) -> None:
        self.access, self.store, self.catalog, self.clock = access, store, catalog, clock
        self.admins = frozenset(admin_principals)

    def may(self, principal: str, grant: str) -> bool:
        return principal in self.admins or self.access.policy.covers(
            principal, grant, self.catalog.names, self.catalog.purposes, self.access.today())

    def allow(self, caller: Caller, grant: str, action: str, purpose: str, subject_id: str | None = None) -> None:
        """Return if the caller holds `grant`; else log the refusal and raise PermissionDenied."""
        if not self.may(caller.principal, grant):
            self.record(caller, action, purpose, DENIED, subject_id)
            raise PermissionDenied(
                f"not permitted to {action.replace('_', ' ')}: that needs a {grant} grant on every field for every "
                "purpose, or a place in admin_principals")

    def record(self, caller: Caller, action: str, purpose: str, outcome: str, subject_id: str | None = None) -> None:
        """One access-log entry in a transaction of its own. If the database is down the call
        has failed anyway (and says so); the entry is then lost, and the server log says it."""
        try:
            with self.store.transaction() as tx:
                tx.log_access([access_row(self.clock(), caller, action, purpose, outcome, subject_id)])
        except PdvError as exc:
            log.error("admin %s (%s): access-log entry not written: %s", action, outcome, type(exc).__name__)

    @contextmanager
    def call(
        self, caller: Caller, grant: str, action: str, purpose: str, subject_id: str | None = None,
        log_ok: bool = True,
    ) -> Iterator[None]:
        """Allow the call, run the body, and log how it went (`log_ok` False: the body logs its
        own success, in its own transaction)."""
        self.allow(caller, grant, action, purpose, subject_id)
        try:
            yield
        except BaseException as exc:
            self.record(caller, action, purpose, outcome_of(exc), subject_id)
            raise
        if log_ok:
            self.record(caller, action, purpose, OK, subject_id)
