"""Residents' privacy requests and complaints end to end: through the generated client and
the `pdv requests` CLI against a real server, a real OpenBao and both databases — the
workflow with its history and linked actions, complaints without a subject, due dates and
`overdue` on the server's clock, invalid transitions, refusals in the access log, retention
disposal, and a canary search for the requests' free text."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pdv_client import PdvClient, Record
import grpc
from pdv_client.errors import FailedPrecondition, InvalidArgument, NotFound, PdvError, PermissionDenied
from sqlalchemy import select

from tests.conftest import DATABASES
from tests.e2e.test_canaries import Book, _database_contents
from tests.e2e.test_rotation import admin_settings, cli, kek, served, versions  # noqa: F401 - fixtures
from tests.support.access_log import logged_items
from tests.support.databases import database
from tests.support.stack import Stack, start_stack
from vault.bootstrap import disposal_service
from vault.config import ApiKey, Settings, hash_api_key
from vault.keys.openbao import OpenBaoServer
from vault.storage import tables as t

POLICY_FILE = Path(__file__).with_name("requests_policy.yaml")
OFFICER = "records-office"
PURPOSE = "benefits_eligibility"
PDV = [sys.executable, "-m", "vault.cli.main"]
RETENTION_DAYS = 60


class Clock:
    """The server's clock: now, moved forward by the tests (never back)."""

    def __init__(self) -> None:
        self._now = datetime.now(timezone.utc)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **delta: float) -> None:
        with self._lock:
            self._now += timedelta(**delta)


class Env:
    def __init__(self, stack: Stack, clock: Clock, officer: PdvClient, officer_key: str) -> None:
        self.stack, self.clock, self.officer, self.officer_key = stack, clock, officer, officer_key
        self.clerk = stack.client()  # the stack's own principal: a clerk, no requests grant

    def subject(self) -> str:
        record = Record({"email": f"req{secrets.token_hex(4)}@example.org", "full_name": "Ada Lovelace"})
        (result,) = self.clerk.tokenize([record], purpose=PURPOSE, source="test")
        return result.subject_id

    def log(self, **where: str) -> list[dict]:
        return logged_items(self.stack.app.store, **where)

    def pdv(self, tmp_path: Path, *args: str, stdin: str = "", check: bool = True) -> subprocess.CompletedProcess:
        key = tmp_path / "officer-key"
        key.write_text(self.officer_key)
        done = subprocess.run([*PDV, *args, "--target", self.stack.target, "--api-key-file", str(key)],
                              input=stdin, capture_output=True, text=True, timeout=60)
        if check:
            assert done.returncode == 0, done.stderr
        return done


@pytest.fixture(scope="module", params=DATABASES)
def env(request: pytest.FixtureRequest, openbao: OpenBaoServer, vault_token: str,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    officer_key = "pdvk_" + secrets.token_urlsafe(24)
    clock = Clock()
    with database(request.param, tmp_path_factory.mktemp("requests")) as url:
        stack = start_stack(
            openbao, url, vault_token, clock=clock, dev_policy=False, policy_path=POLICY_FILE,
            api_keys=[ApiKey(principal=OFFICER, sha256=hash_api_key(officer_key))],
            request_deadline_days_by_kind={"complaint": 10}, request_retention_days=RETENTION_DAYS,
        )
        try:
            yield Env(stack, clock, stack.client(officer_key), officer_key)
        finally:
            stack.stop()


def test_a_deletion_request_is_worked_answered_and_shows_what_was_done(env: Env) -> None:
    subject = env.subject()
    opened = env.officer.requests.open("deletion", subject_id=subject, description="Please delete everything.",
                                       contact="ada@example.org")
    assert (opened.kind, opened.subject_id, opened.status, opened.opened_by) == ("deletion", subject, "received", OFFICER)
    assert opened.received_at == env.clock() and opened.due_at == env.clock() + timedelta(days=30)
    assert opened.closed_at is None

    assert env.officer.requests.update(opened.case_id, status="in_progress").status == "in_progress"
    # The clerk acts under the request: an opt-out first, then the shred; a hold placed for it and released.
    assert env.clerk.set_consent(subject, "billing", opted_out=True, case_id=opened.case_id)
    assert env.clerk.place_hold(subject, case_id=opened.case_id, reason="until the deletion is confirmed")
    assert env.clerk.release_hold(subject, case_id=opened.case_id) == 1
    (shred,) = env.clerk.shred_subjects([subject], reason="deletion request", case_id=opened.case_id)
    assert shred.status == "shredded"
    closed = env.officer.requests.update(opened.case_id, status="answered", response_text="All your data is deleted.")
    assert (closed.status, closed.closed_at) == ("answered", env.clock())

    case = env.officer.requests.show(opened.case_id)
    assert (case.description, case.contact, case.response_text) == (
        "Please delete everything.", "ada@example.org", "All your data is deleted.")
    assert [(h.from_status, h.to_status, h.principal, h.response_set) for h in case.history] == [
        (None, "received", OFFICER, False), ("received", "in_progress", OFFICER, False),
        ("in_progress", "answered", OFFICER, True)]
    clerk = "intake-311"
    assert [(a.action, a.subject_id, a.detail, a.outcome, a.principal) for a in case.actions] == [
        ("consent", subject, "billing", "opt_out", clerk), ("hold", subject, "", "placed", clerk),
        ("release_hold", subject, "", "released", clerk), ("shred", subject, "", "shredded", clerk)]
    assert "Please delete" not in repr(case) and "ada@example.org" not in repr(case)
    # Every operation is an access-log entry naming the case, never its text.
    ops = [(r["action"], r["outcome"]) for r in env.log(token=opened.case_id)]
    assert ops == [("request_open", "received"), ("request_update", "in_progress"),
                   ("request_update", "answered"), ("request_show", "ok")]


def test_a_field_shred_under_a_request_is_linked_with_its_fields(env: Env) -> None:
    subject = env.subject()
    opened = env.officer.requests.open("correction", subject_id=subject, description="My email is wrong.")
    env.clerk.shred_fields(subject, ["email"], reason="wrong email", case_id=opened.case_id)
    (action,) = env.officer.requests.show(opened.case_id).actions
    assert (action.action, action.detail, action.outcome) == ("shred_fields", "email", "shredded")


def test_a_complaint_may_name_no_subject_and_the_cli_handles_it_end_to_end(env: Env, tmp_path: Path) -> None:
    text = tmp_path / "complaint.txt"
    text.write_text("The clerk read my file aloud in the lobby.\n")
    opened = json.loads(env.pdv(tmp_path, "requests", "open", "--kind", "complaint",
                                "--description-file", str(text)).stdout)
    assert (opened["kind"], opened["subject_id"], opened["status"]) == ("complaint", None, "received")
    # Complaints have their own deadline (request_deadline_days_by_kind).
    due = datetime.fromisoformat(opened["due_at"]) - datetime.fromisoformat(opened["received_at"])
    assert due == timedelta(days=10)
    case = opened["case_id"]
    listed = [json.loads(line) for line in env.pdv(tmp_path, "requests", "list", "--kind", "complaint").stdout.splitlines()]
    assert case in [r["case_id"] for r in listed] and all("description" not in r for r in listed)
    env.pdv(tmp_path, "requests", "update", case, "--status", "in_progress")
    env.pdv(tmp_path, "requests", "close", case, "--as", "answered", "--response-file", "-",
            stdin="We apologise; staff have been retrained.")
    shown = json.loads(env.pdv(tmp_path, "requests", "show", case).stdout)
    assert shown["description"] == "The clerk read my file aloud in the lobby.\n"
    assert shown["response_text"] == "We apologise; staff have been retrained."
    assert [(h["from"], h["to"]) for h in shown["history"]] == [
        (None, "received"), ("received", "in_progress"), ("in_progress", "answered")]
    # Any other kind must name its subject: a clear INVALID_ARGUMENT naming the item.
    failed = env.pdv(tmp_path, "requests", "open", "--kind", "access", "--description-file", str(text), check=False)
    assert failed.returncode == 1
    assert "InvalidArgument" in failed.stderr and "subject_id is required for kind 'access'" in failed.stderr
    with pytest.raises(NotFound, match="subject_id: unknown subject"):
        env.officer.requests.open("access", subject_id="sub_" + "A" * 22, description="What do you hold?")


def test_overdue_lists_open_requests_past_their_due_date_oldest_first(env: Env, tmp_path: Path) -> None:
    subject = env.subject()
    access = env.officer.requests.open("access", subject_id=subject, description="What do you hold on me?")
    env.clock.advance(days=1)
    complaint = env.officer.requests.open("complaint", description="Nobody answered my letter.")  # due in 10 days
    withdrawn = env.officer.requests.open("complaint", description="Never mind.")
    env.officer.requests.update(withdrawn.case_id, status="withdrawn")
    fresh_before = {r.case_id for r in env.officer.requests.overdue()}
    assert not fresh_before & {access.case_id, complaint.case_id}

    env.clock.advance(days=20)  # the complaint is late (day 11), the access request not yet (day 30)
    assert complaint.case_id in {r.case_id for r in env.officer.requests.overdue()}
    assert access.case_id not in {r.case_id for r in env.officer.requests.overdue()}
    env.clock.advance(days=10)
    late = [r.case_id for r in env.officer.requests.overdue()]
    assert late.index(complaint.case_id) < late.index(access.case_id)  # the complaint was due first
    assert withdrawn.case_id not in late  # closed: never overdue
    due = [r.due_at for r in env.officer.requests.overdue()]
    assert due == sorted(due) and all(d < env.clock() for d in due)
    cli = [json.loads(line)["case_id"] for line in env.pdv(tmp_path, "requests", "overdue").stdout.splitlines()]
    assert cli == late
    env.officer.requests.update(complaint.case_id, status="rejected", response_text="Out of our remit.")
    assert complaint.case_id not in {r.case_id for r in env.officer.requests.overdue()}


def test_invalid_transitions_are_failed_precondition_and_logged(env: Env) -> None:
    case = env.officer.requests.open("restriction", subject_id=env.subject(), description="No research use.").case_id
    with pytest.raises(FailedPrecondition, match=f"request {case} is received: it cannot become answered"):
        env.officer.requests.update(case, status="answered", response_text="done")
    env.officer.requests.update(case, status="in_progress")
    with pytest.raises(FailedPrecondition, match=f"request {case} is already in_progress"):
        env.officer.requests.update(case, status="in_progress")
    with pytest.raises(FailedPrecondition, match="a response text is needed to close it as answered"):
        env.officer.requests.update(case, status="answered")
    env.officer.requests.update(case, status="withdrawn")
    with pytest.raises(FailedPrecondition, match=f"request {case} is withdrawn, which closed it"):
        env.officer.requests.update(case, status="in_progress")
    with pytest.raises(FailedPrecondition, match="closed it"):
        env.officer.requests.update(case, response_text="late reply")
    refused = env.log(token=case, outcome="refused_transition")
    assert [r["action"] for r in refused] == ["request_update"] * 5
    assert env.officer.requests.show(case).response_text == ""  # nothing of the refused changes stuck
    # Nothing can be done under a closed request: the shred is refused and nothing is destroyed.
    subject = env.subject()
    with pytest.raises(NotFound, match="case_id: no open privacy request"):
        env.clerk.shred_subjects([subject], reason="x", case_id=case)
    with pytest.raises(NotFound, match="case_id: no open privacy request"):
        env.clerk.set_consent(subject, "billing", opted_out=True, case_id=case)
    assert env.clerk.get_consent(subject) == []
    with pytest.raises(InvalidArgument, match="case_id: malformed"):
        env.clerk.shred_subjects([subject], reason="x", case_id="CASE-1")
    assert env.clerk.shred_subjects([subject], reason="check", case_id=None)[0].status == "shredded"
    with pytest.raises(InvalidArgument, match="case_id: malformed"):
        env.officer.requests.show("req_nope")
    with pytest.raises(NotFound, match="no privacy request has this id"):
        env.officer.requests.show("req_" + "0" * 24)
    with pytest.raises(InvalidArgument, match="nothing to change"):
        env.officer.requests.update(case)


def test_only_a_requests_grant_may_handle_requests_and_every_refusal_is_logged(env: Env) -> None:
    subject = env.subject()
    case = env.officer.requests.open("access", subject_id=subject, description="Copy of my data.").case_id
    calls = {
        "request_open": lambda c: c.requests.open("access", subject_id=subject, description="x"),
        "request_list": lambda c: c.requests.list(),
        "request_show": lambda c: c.requests.show(case),
        "request_update": lambda c: c.requests.update(case, status="in_progress"),
        "request_overdue": lambda c: c.requests.overdue(),
    }
    for action, call in calls.items():
        before = len(env.log(principal="intake-311", action=action, outcome="denied"))
        with pytest.raises(PermissionDenied, match="needs a requests grant on every field for every purpose"):
            call(env.clerk)
        assert len(env.log(principal="intake-311", action=action, outcome="denied")) == before + 1
    assert env.officer.requests.show(case).request.status == "received"  # the refused update changed nothing
    denied = env.log(principal="intake-311", action="request_show", outcome="denied")[-1]
    assert (denied["token"], denied["purpose"]) == (case, "privacy_request")


def test_closed_requests_past_retention_are_disposed_of_with_their_key(env: Env) -> None:
    old = env.officer.requests.open("complaint", description="Old complaint.").case_id
    env.officer.requests.update(old, status="withdrawn")
    still_open = env.officer.requests.open("complaint", description="Still being worked.").case_id
    env.clock.advance(days=RETENTION_DAYS + 1)
    recent = env.officer.requests.open("complaint", description="Recent.").case_id
    env.officer.requests.update(recent, status="withdrawn")
    service = disposal_service(env.stack.app)
    assert service.dispose(dry_run=True).requests_deleted >= 1
    report = service.dispose()
    assert report.requests_deleted >= 1 and report.to_json()["requests_deleted"] == report.requests_deleted
    with pytest.raises(NotFound):
        env.officer.requests.show(old)
    env.officer.requests.show(still_open)
    env.officer.requests.show(recent)
    with env.stack.app.store.engine.connect() as conn:
        names = set(conn.scalars(select(t.wrapped_secrets.c.name)))
    assert f"request:{old}" not in names and f"request:{recent}" in names
    assert [r["outcome"] for r in env.log(token=old, action="request_dispose")] == ["deleted"]


def test_a_requests_text_moved_to_another_request_does_not_decrypt(env: Env) -> None:
    """The texts are bound to their request and part: a ciphertext copied elsewhere is DATA_LOSS."""
    first = env.officer.requests.open("complaint", description="First complaint.").case_id
    second = env.officer.requests.open("complaint", description="Second complaint.").case_id
    c = t.privacy_requests.c
    with env.stack.app.store.engine.begin() as conn:
        blob = conn.scalar(select(c.description).where(c.id == first))
        conn.execute(t.privacy_requests.update().where(c.id == second).values(description=blob))
    with pytest.raises(PdvError) as caught:
        env.officer.requests.show(second)
    assert caught.value.status == grpc.StatusCode.DATA_LOSS
    assert env.officer.requests.show(first).description == "First complaint."


def test_a_requests_free_text_is_nowhere_in_clear(env: Env, tmp_path: Path) -> None:
    book = Book()
    description, contact, response = book.letters(), book.letters(), book.letters()
    subject = env.subject()
    case = env.officer.requests.open("access", subject_id=subject, description=f"Request {description.sent}",
                                     contact=f"call {contact.sent}").case_id
    env.officer.requests.update(case, status="in_progress", response_text=f"Reply {response.sent}")
    env.clerk.set_consent(subject, "billing", opted_out=True, case_id=case)
    shown = env.officer.requests.show(case)
    assert description.sent in shown.description and response.sent in shown.response_text
    book.look_in("show repr", repr(shown))
    env.pdv(tmp_path, "requests", "list", "--subject", subject)
    for bad in (lambda: env.officer.requests.update(case, status="received", response_text=f"x {response.sent}"),
                lambda: env.clerk.requests.show(case)):
        with pytest.raises((FailedPrecondition, PermissionDenied)) as caught:
            bad()
        book.look_in("error", str(caught.value))
    _database_contents(env.stack, book)
    with env.stack.app.store.engine.connect() as conn:
        rows = conn.execute(select(t.access_log)).all()
    book.look_in("access_log", "\n".join(repr(tuple(r)) for r in rows))
    book.look_in("server log", env.stack.log.getvalue())
    assert book.hits() == []


def test_key_rotation_rewraps_request_keys_and_trim_leaves_them_readable(
    served: Stack, admin_settings: Settings, cli: Callable[..., tuple[int, str, str]],
) -> None:
    """A request's DEK lives in wrapped_secrets, so `pdv keys rewrap` rewraps it and trim waits for it."""
    client = served.client()
    case = client.requests.open("complaint", description="Rotate me.").case_id
    assert versions(admin_settings)[1] == {1: 2}  # the index root and the request's key
    assert cli("rotate")[0] == 0
    code, out, _ = cli("trim", "--backup-horizon-days", "0")
    assert code != 0  # refused: wrapped secrets (the index root, the request's key) are still under v1
    assert cli("rewrap")[0] == 0
    assert versions(admin_settings)[1] == {2: 2}
    code, out, _ = cli("trim", "--backup-horizon-days", "0")
    assert code == 0 and "below v2 trimmed" in out
    served.app.keyring.clear()  # unwrapped again by Vault, from the rewrapped row
    assert client.requests.show(case).description == "Rotate me."
