"""Refused authentications in the access log, written at a bounded rate.

Every call the authentication interceptor turns away (no credentials, an unknown API
key, a certificate that names no principal or is revoked, a principal outside
tls_principals) becomes one access-log row, chained like every other:

    action "authenticate", outcome "unauthenticated" (or "denied" for PERMISSION_DENIED),
    principal: the certificate's principal when one was named, else "-",
    purpose: the RPC the caller tried, field: why it was refused.

The interceptor also writes here an authenticated call whose bytes are not a valid request:
action "decode", outcome "invalid", the caller's principal, purpose: the RPC, field
"undecodable_request" (or the enum at fault is only in the server log).

And a call whose share of max_items_in_flight did not come free in time: action "admit",
outcome "overloaded", the caller's principal, purpose: the RPC, field "over_items_in_flight".

Never the API key, nor any hash of it: a hash of a guessed key would let anyone holding
the log test guesses offline.

Anonymous refusals (no principal) are written at most `per_second` a second (after a
`burst`), so a caller hammering the server with bad keys cannot fill the database, nor hide
in the count a refusal that names a principal: those need a certificate the client CA
signed, and are always written. Past the limit, refusals are counted,
and the count is written within a second as one summary row (request id
"suppressed-<count>", purpose "*", field "over_log_rate") and again when the process stops.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime

from vault.errors import RateLimited
from vault.services.common import Caller, access_row
from vault.services.group_commit import GroupCommitter
from vault.services.rate_limit import RateLimiter

log = logging.getLogger("pdv.auth")

ACTION = "authenticate"
UNAUTHENTICATED = "unauthenticated"
DENIED = "denied"
# An authenticated call whose bytes are not a valid request (vault.api.decoding).
DECODE = "decode"
INVALID = "invalid"
BAD_REQUEST = "undecodable_request"
# An authenticated call refused because max_items_in_flight stayed full (vault.services.runtime.budget).
ADMIT = "admit"
OVERLOADED = "overloaded"
NO_PRINCIPAL = "-"
SUPPRESSED_FIELD = "over_log_rate"
_SUMMARY_DELAY = 1.0  # seconds: at most one summary row a second
_MAX_LABEL = 64  # the purpose and field columns


class RefusalLog:
    """Writes refused authentications to the access log (see the module docstring)."""

    def __init__(self, committer: GroupCommitter, clock: Callable[[], datetime], limiter: RateLimiter) -> None:
        self._committer = committer
        self._clock = clock
        self._limiter = limiter
        self._lock = threading.Lock()
        self._suppressed = 0
        self._timer: threading.Timer | None = None
        self._closed = False

    def record(self, method: str, reason: str, principal: str | None = None, outcome: str = UNAUTHENTICATED,
               action: str = ACTION) -> None:
        """Log one refusal, or count it when over the rate. Never raises: the caller is refused
        either way, and a log that cannot be written is reported in the server log."""
        if principal is None:  # anyone can send these; a named refusal needs a CA-signed certificate
            try:
                self._limiter.spend("", 1)
            except RateLimited:
                self._count()
                return
        caller = Caller(principal or NO_PRINCIPAL, f"gen-{uuid.uuid4().hex}")
        self._write([access_row(self._clock(), caller, action, method[:_MAX_LABEL], outcome, field=reason[:_MAX_LABEL])])

    def flush(self) -> None:
        """Write the summary row of refusals counted since the last one (if any)."""
        with self._lock:
            count, self._suppressed, self._timer = self._suppressed, 0, None
        if count:
            caller = Caller(NO_PRINCIPAL, f"suppressed-{count}")
            self._write([access_row(self._clock(), caller, ACTION, "*", UNAUTHENTICATED, field=SUPPRESSED_FIELD)])

    def close(self) -> None:
        """Write what is still counted; later refusals are counted no more."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
        self.flush()

    def _count(self) -> None:
        with self._lock:
            self._suppressed += 1
            if self._timer is None and not self._closed:
                self._timer = threading.Timer(_SUMMARY_DELAY, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def _write(self, rows: list[tuple]) -> None:
        try:
            self._committer.run(lambda tx: tx.log_access(rows))
        except Exception as exc:  # noqa: BLE001 - the caller is refused either way
            log.error("could not write a refused call to the access log (%s)", type(exc).__name__)
