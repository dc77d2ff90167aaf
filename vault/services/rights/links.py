"""Actions taken under a privacy request: a shred, consent change or hold naming the
request's case id is linked to it by a request_actions row written in the action's own
transaction, so a link exists exactly when the action committed. A later correction or
access-report call links itself the same way, under its own action name.
"""

from __future__ import annotations

import re
from datetime import datetime

from vault.errors import InvalidInput, NotFound
from vault.services.common import Caller
from vault.storage import requests as db
from vault.storage.store import Tx

_CASE_ID = re.compile(r"req_[0-9a-f]{24}")


def is_case_id(value: str) -> bool:
    return _CASE_ID.fullmatch(value) is not None


def require_open_case(tx: Tx, case_id: str) -> None:
    """Raise unless `case_id` names an open privacy request.

    Raises:
        InvalidInput: malformed case id.
        NotFound: no open request has that id (unknown, or already closed).
    """
    if not is_case_id(case_id):
        raise InvalidInput("case_id: malformed (a privacy request's case id looks like req_ and 24 hex digits)")
    if not db.open_request_ids(tx, [case_id]):
        raise NotFound("case_id: no open privacy request has this id (unknown, or closed)")


def names_request(tx: Tx, case_id: str) -> bool:
    """Whether a legal hold's case id is a privacy request's (then the hold is linked to it)."""
    return is_case_id(case_id) and db.get_request(tx, case_id) is not None


def link(tx: Tx, case_id: str, at: datetime, caller: Caller, action: str, outcomes: list[tuple[str | None, str]],
         detail: str | None = None) -> None:
    """Link one action's outcome per subject ((subject id, outcome) pairs) to the request."""
    db.link_actions(tx, [(case_id, at, caller.principal, action, subject, detail, outcome)
                         for subject, outcome in outcomes])
