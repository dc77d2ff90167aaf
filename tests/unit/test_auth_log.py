"""Which refused authentications the rate bound may fold into a count (pure unit: no database)."""

from __future__ import annotations

from datetime import datetime, timezone

from vault.services.auth_log import RefusalLog
from vault.services.rate_limit import RateLimiter


class _Committer:
    """Stands in for the group committer: collects the access-log rows it is given."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def run(self, work):  # type: ignore[no-untyped-def]
        return work(self)

    def log_access(self, rows: list[tuple]) -> None:
        self.rows.extend(rows)


def test_over_the_rate_anonymous_refusals_are_counted_but_named_ones_are_always_written() -> None:
    committer = _Committer()
    frozen = 1000.0
    refusals = RefusalLog(committer, lambda: datetime(2026, 11, 27, tzinfo=timezone.utc),  # type: ignore[arg-type]
                          RateLimiter(1, 1, clock=lambda: frozen))
    for _ in range(5):
        refusals.record("/pdv.v1.TokenService/Detokenize", "unknown_api_key")
    for _ in range(3):
        refusals.record("/pdv.v1.TokenService/Detokenize", "certificate_revoked", principal="partner-acme")
    refusals.close()
    principals = [row[2] for row in committer.rows]
    assert principals.count("partner-acme") == 3
    anonymous = [row for row in committer.rows if row[2] == "-"]
    assert [row[1] for row in anonymous] == [anonymous[0][1], "suppressed-4"]  # one written, four counted
