"""Access decisions the data paths share: the policy in force, purpose limitation, rate.

Outcomes written to the access log for a refusal all start with "denied":
``denied`` (the policy grants nothing for it), ``denied_purpose`` (the value was
collected for a purpose the access purpose is not compatible with), ``denied_consent``
(the subject opted out of the access purpose). A call naming a purpose the catalog does
not declare is bad input, not a refusal of access: INVALID_ARGUMENT naming the declared
purposes (they are in the catalog, not secret), logged as ``invalid_purpose``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable

from vault.catalog import Catalog
from vault.errors import InvalidInput
from vault.policy import ADMIN, REQUESTS, SHRED, Policy, PolicyHolder
from vault.services.common import Caller, access_row
from vault.services.group_commit import GroupCommitter
from vault.services.rate_limit import RateLimiter

DENIED, DENIED_PURPOSE, DENIED_CONSENT = "denied", "denied_purpose", "denied_consent"
INVALID_PURPOSE = "invalid_purpose"
# Logged in place of a purpose the catalog does not declare: the caller's text could be
# anything (a value pasted into the wrong argument), so it is neither stored nor echoed.
UNDECLARED_PURPOSE = "(undeclared)"


def undeclared_purpose(catalog: Catalog) -> InvalidInput:
    """The error for a purpose the catalog does not declare: it lists the declared ones, never the one given."""
    return InvalidInput("purpose is not declared in the field catalog; declared purposes: " + ", ".join(sorted(catalog.purposes)))


class AccessControl:
    """The policy holder, the catalog's purpose compatibility and the rate limiter, with a clock."""

    def __init__(
        self, policy: PolicyHolder, catalog: Catalog, clock: Callable[[], datetime.datetime],
        limiter: RateLimiter | None = None,
    ) -> None:
        self.holder, self.catalog, self._clock = policy, catalog, clock
        self.limiter = limiter or RateLimiter(0, 1)

    @property
    def policy(self) -> Policy:
        return self.holder.current

    def today(self) -> datetime.date:
        return self._clock().date()

    def allows(self, principal: str, action: str, field: str, purpose: str) -> bool:
        return self.policy.allows(principal, action, field, purpose, self.today())

    def may_shred(self, principal: str, fields: Iterable[str]) -> bool:
        """`shred` on each of `fields`. A shred request carries no purpose, so only a grant
        naming every purpose counts: one scoped to some purposes cannot be honoured as such."""
        return self.policy.covers(principal, SHRED, fields, self.catalog.purposes, self.today())

    def may_handle_requests(self, principal: str) -> bool:
        """`requests` on every catalog field for every purpose: a privacy request is about a
        whole person and names no purpose, so a narrower grant cannot be honoured."""
        return self.policy.covers(principal, REQUESTS, self.catalog.names, self.catalog.purposes, self.today())

    def consent_purposes(self, principal: str) -> frozenset[str]:
        """The purposes whose consent `principal` may see and change: `admin` granted for the
        purpose on every catalog field (an opt-out covers every field of a subject)."""
        today, policy = self.today(), self.policy
        return frozenset(p for p in self.catalog.purposes if policy.covers(principal, ADMIN, self.catalog.names, (p,), today))

    def require_purpose(
        self, committer: GroupCommitter, caller: Caller, action: str, purpose: str, now: datetime.datetime
    ) -> None:
        """Refuse a purpose the catalog does not declare, after logging the refusal.

        Raises:
            InvalidInput: naming every declared purpose, never the one given.
        """
        if purpose in self.catalog.purposes:
            return
        committer.run(lambda tx: tx.log_access([
            access_row(now, caller, action, UNDECLARED_PURPOSE, INVALID_PURPOSE),
        ]))
        raise undeclared_purpose(self.catalog)

    def refusal(self, access_purpose: str, collection_purpose: str, opted_out: bool) -> str | None:
        """Why a granted read of one stored value is still refused, or None."""
        if not self.catalog.compatible(access_purpose, collection_purpose):
            return DENIED_PURPOSE
        if opted_out:
            return DENIED_CONSENT
        return None
