"""Events to token holders, end to end on real OpenBao and both databases, through the
generated client: a holder subscribed before a shred gets one event per affected token across
a PDV restart mid-stream (acknowledgements honoured), no principal gets another's events or
events about subjects it never held, events survive a restore (the tombstone ledger's replay
writes them once), no value reaches the outbox or the stream, and an expired cursor is
OUT_OF_RANGE with what to do."""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pdv_client import Event, PdvClient, Record
from pdv_client.errors import InvalidArgument, OutOfRange, PermissionDenied
from sqlalchemy import text

from tests.support.access_log import logged_items
from tests.support.backups import backup_database, restore_database
from tests.support.stack import PRINCIPAL, Stack, start_stack
from vault.config import ApiKey, hash_api_key
from vault.keys.openbao import OpenBaoServer
from vault.services.events.purge import purge_expired

PURPOSE = "service_delivery"
HOLDER = "holder-a"  # tokenizes the residents the admin shreds
PARTNER = "partner-b"  # holds tokens of its own resident only
BYSTANDER = "bystander-c"  # never holds anything
DEADLINE = 90.0


def resident(n: int, tag: str = "") -> Record:  # n < 26
    return Record({"full_name": f"Ada Lovelace {chr(65 + n)}", "email": f"ada{n}{tag}@example.org",
                   "phone": f"212-555-{2000 + n}"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collector:
    """Runs `client.events.subscribe()` on a thread and keeps what it yields."""

    def __init__(self, client: PdvClient, **kwargs: object) -> None:
        self.events: list[Event] = []
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, args=(client, kwargs), daemon=True)
        self._thread.start()

    def _run(self, client: PdvClient, kwargs: dict) -> None:
        try:
            for event in client.events.subscribe(stop=self.stop, retry_seconds=0.2, max_retry_seconds=1.0, **kwargs):
                with self._changed:
                    self.events.append(event)
                    self._changed.notify_all()
        except BaseException as exc:  # noqa: BLE001 - reported by wait_for
            self.error = exc
            with self._changed:
                self._changed.notify_all()

    def wait_for(self, done: Callable[[list[Event]], bool], what: str) -> list[Event]:
        with self._changed:
            if not self._changed.wait_for(lambda: self.error is not None or done(self.events), DEADLINE):
                raise AssertionError(f"timed out waiting for {what}; got {[(e.kind, e.cursor) for e in self.events]}")
        if self.error is not None:
            raise self.error
        return list(self.events)

    def close(self) -> None:
        self.stop.set()
        self._thread.join(DEADLINE)


def outbox(stack: Stack) -> list[dict]:
    with stack.app.store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text("SELECT * FROM event_outbox ORDER BY id"))]


def access_outcomes(stack: Stack, principal: str, action: str) -> list[str]:
    return [row["outcome"] for row in logged_items(stack.app.store, principal=principal, action=action)]


def tokens_of(events: list[Event]) -> list[str]:
    return sorted(t.token for e in events for t in e.tokens)


def test_a_holder_gets_one_event_per_token_across_a_restart_and_nobody_else_does(
    openbao: OpenBaoServer, vault_token: str, database_url: str
) -> None:
    keys = {p: "pdvk_" + secrets.token_urlsafe(24) for p in (HOLDER, PARTNER, BYSTANDER)}
    api_keys = [ApiKey(principal=p, sha256=hash_api_key(k)) for p, k in keys.items()]
    port = free_port()

    def start(**kw: object) -> Stack:
        return start_stack(openbao, database_url, vault_token, listen=f"127.0.0.1:{port}", api_keys=list(api_keys),
                           admin_principals=[PRINCIPAL], event_poll_seconds=0.05, **kw)

    stack = start()
    restarted = None
    watchers: list[Collector] = []
    try:
        intake = stack.client()
        first, second, third = stack.client(api_key=keys[HOLDER]).tokenize(
            [resident(1), resident(2), resident(3)], purpose=PURPOSE, source="311")
        (own,) = stack.client(api_key=keys[PARTNER]).tokenize([resident(4)], purpose=PURPOSE, source="partner")
        holder = Collector(PdvClient(stack.target, api_key=keys[HOLDER]))
        partner = Collector(PdvClient(stack.target, api_key=keys[PARTNER]))
        bystander = Collector(PdvClient(stack.target, api_key=keys[BYSTANDER]))
        watchers += [holder, partner, bystander]

        (outcome,) = intake.shred_subjects([first.subject_id], reason="resident request")
        assert outcome.status == "shredded"
        (shredded,) = holder.wait_for(lambda es: len(es) >= 1, "the first shred's event")
        assert shredded.kind == "shredded"
        assert shredded.receipt_id == hashlib.sha256(outcome.receipt.encode()).hexdigest()
        assert sorted((t.field, t.token) for t in shredded.tokens) == sorted(first.tokens.items())

        # PDV restarts mid-stream: the subscription breaks and resumes after the acknowledged event.
        stack.stop()
        restarted = start(migrate_first=False)
        intake = restarted.client()
        intake.shred_subjects([second.subject_id], reason="resident request")
        assert intake.shred_fields(third.subject_id, ["email"], reason="resident request").status == "shredded"
        events = holder.wait_for(lambda es: len(es) >= 3, "the shreds after the restart")
        assert [e.kind for e in events] == ["shredded", "shredded", "fields_shredded"]
        assert [int(e.cursor) for e in events] == sorted(int(e.cursor) for e in events)
        affected = [*first.tokens.values(), *second.tokens.values(), third.tokens["email"]]
        assert tokens_of(events) == sorted(affected)  # each affected token exactly once
        assert events[2].fields == ("email",)

        # The partner's own resident: its first event is about that one, never about intake's.
        intake.place_hold(own.subject_id, case_id="LIT-1", reason="litigation")
        (held,) = partner.wait_for(lambda es: len(es) >= 1, "the partner's hold event")
        assert (held.kind, tokens_of([held])) == ("hold_placed", sorted(own.tokens.values()))
        rows = outbox(restarted)
        assert {r["principal"] for r in rows} <= {HOLDER, PARTNER}
        assert bystander.events == [] and len(holder.events) == 3
        # An acknowledged event leaves the outbox with its tokens; the bystander cannot ack another's cursor.
        holder.close()
        assert [r for r in outbox(restarted) if r["principal"] == HOLDER] == []
        with pytest.raises(InvalidArgument):
            restarted.client(api_key=keys[BYSTANDER]).events.ack(held.cursor)
        assert "invalid" in access_outcomes(restarted, BYSTANDER, "events_ack")
    finally:
        for w in watchers:
            w.close()
        if restarted is not None:
            restarted.stop()
        else:
            stack.stop()


@pytest.fixture
def stack(openbao: OpenBaoServer, vault_token: str, database_url: str) -> Iterator[Stack]:
    """A stack whose principal may also shred, correct, change consent and place holds."""
    s = start_stack(openbao, database_url, vault_token, admin_principals=[PRINCIPAL], event_poll_seconds=0.05)
    try:
        yield s
    finally:
        s.stop()


def test_corrections_consent_and_holds_reach_the_holder_and_no_value_does(stack: Stack) -> None:
    canary = "canary" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(12))
    client = stack.client()
    (rec,) = client.tokenize([Record({"full_name": f"Grace {canary}", "email": f"{canary}@example.org"})],
                             purpose=PURPOSE, source="311")
    collector = Collector(PdvClient(stack.target, api_key=stack.api_key))
    try:
        fixed = client.correct_value(rec.subject_id, "email", f"new{canary}@example.org", reason="resident asked")
        client.set_consent(rec.subject_id, "billing", opted_out=True)
        client.place_hold(rec.subject_id, case_id="CV-9", reason="audit")
        client.release_hold(rec.subject_id, case_id="CV-9")
        events = collector.wait_for(lambda es: len(es) >= 4, "four events")
        assert [e.kind for e in events] == ["corrected", "consent_withdrawn", "hold_placed", "hold_released"]
        (corrected,) = events[0].tokens
        assert corrected.field == "email" and corrected.token == fixed[0].token
        assert corrected.previous_token == (rec.tokens["email"] if fixed[0].token_changed else "")
        assert events[0].correction_id and events[1].purpose == "billing"
        rows = outbox(stack)
        stream = repr(events)
    finally:
        collector.close()
    for place, hay in (("outbox", json.dumps(rows, default=str)), ("stream", stream)):
        assert canary not in hay.lower(), f"a value reached the {place}"
        assert canary.encode().hex() not in hay


def test_an_expired_cursor_is_out_of_range_and_says_where_to_resume(stack: Stack) -> None:
    client = stack.client()
    (rec,) = client.tokenize([resident(7)], purpose=PURPOSE, source="311")
    client.shred_subjects([rec.subject_id], reason="resident request")
    later = datetime.now(timezone.utc) + timedelta(seconds=stack.settings.event_retention_seconds + 60)
    assert purge_expired(stack.app.store, timedelta(seconds=stack.settings.event_retention_seconds), lambda: later) == 1
    with pytest.raises(OutOfRange) as caught:
        next(iter(client.events.stream()))
    assert "event_retention_seconds" in caught.value.message and "subscribe with cursor" in caught.value.message
    assert "out_of_range" in access_outcomes(stack, PRINCIPAL, "events")
    resume = caught.value.message.split('cursor "')[1].split('"')[0]
    # From the cursor it names, the subscription is accepted and sees what comes next.
    (again,) = client.tokenize([resident(8)], purpose=PURPOSE, source="311")
    client.place_hold(again.subject_id, case_id="H-1", reason="audit")
    collector = Collector(client, cursor=resume)
    try:
        (event,) = collector.wait_for(lambda es: len(es) >= 1, "the hold after the expiry")
        assert event.kind == "hold_placed"
    finally:
        collector.close()


def test_events_survive_a_restore_and_are_written_once(
    openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path
) -> None:
    ledger, backup = tmp_path / "tombstones.jsonl", tmp_path / "backup"

    def start(**kw: object) -> Stack:
        return start_stack(openbao, database_url, vault_token, admin_principals=[PRINCIPAL], tombstone_ledger=ledger,
                           **kw)

    stack = start()
    try:
        whole, part = stack.client().tokenize([resident(11), resident(12)], purpose=PURPOSE, source="311")
    finally:
        stack.stop()
    backup_database(database_url, backup)
    stack = start(migrate_first=False)
    try:
        client = stack.client()
        (outcome,) = client.shred_subjects([whole.subject_id], reason="resident request")
        field = client.shred_fields(part.subject_id, ["phone"], reason="resident request")
        before = [(r["kind"], r["ref"], r["tokens"]) for r in outbox(stack)]
        assert len(before) == 2
    finally:
        stack.stop()

    restore_database(database_url, backup)  # the outbox rolls back with the shreds; the ledger replays them
    for _ in range(2):  # the second start replays nothing: still one event per shred
        restored = start(migrate_first=False)
        try:
            assert [(r["kind"], r["ref"], r["tokens"]) for r in outbox(restored)] == before
        finally:
            restored.stop()
    restored = start(migrate_first=False)
    collector = Collector(restored.client())
    try:
        events = collector.wait_for(lambda es: len(es) >= 2, "the replayed shreds' events")
    finally:
        collector.close()
        restored.stop()
    assert [e.receipt_id for e in events] == [hashlib.sha256(r.encode()).hexdigest()
                                              for r in (outcome.receipt, field.receipt)]
    assert tokens_of(events) == sorted([*whole.tokens.values(), part.tokens["phone"]])


def test_a_principal_without_the_events_grant_is_refused_and_logged(
    openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nroles:\n  collect:\n    grants:\n      - fields: \"*\"\n        actions: [tokenize]\n"
        "        purposes: \"*\"\nprincipals:\n  intake-311: [collect]\n")
    stack = start_stack(openbao, database_url, vault_token, dev_policy=False, policy_path=policy)
    try:
        with pytest.raises(PermissionDenied):
            next(iter(stack.client().events.stream()))
        with pytest.raises(PermissionDenied):
            stack.client().events.ack("1")
        assert access_outcomes(stack, PRINCIPAL, "events") == ["denied"]
        assert access_outcomes(stack, PRINCIPAL, "events_ack") == ["denied"]
    finally:
        stack.stop()


def test_a_subscriber_sees_events_another_process_commits(
    openbao: OpenBaoServer, vault_token: str, database_url: str
) -> None:
    """A second PDV server on the same database (its own store, pool and server, as another
    process or replica would be) commits a shred; the subscriber on the first sees it."""
    first = start_stack(openbao, database_url, vault_token, admin_principals=[PRINCIPAL], event_poll_seconds=0.05)
    second = start_stack(openbao, database_url, vault_token, migrate_first=False, admin_principals=[PRINCIPAL])
    try:
        (rec,) = first.client().tokenize([resident(21)], purpose=PURPOSE, source="311")
        collector = Collector(first.client())
        try:
            second.client().shred_subjects([rec.subject_id], reason="resident request")
            (event,) = collector.wait_for(lambda es: len(es) >= 1, "the other server's shred")
            assert event.kind == "shredded" and tokens_of([event]) == sorted(rec.tokens.values())
        finally:
            collector.close()
    finally:
        second.stop()
        first.stop()


def test_pdv_events_tail_prints_the_callers_events_without_values(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vault.cli.main import main as pdv_main

    client = stack.client()
    (rec,) = client.tokenize([resident(9)], purpose=PURPOSE, source="311")
    client.shred_fields(rec.subject_id, ["email"], reason="resident request")
    key_file = tmp_path / "key"
    key_file.write_text(stack.api_key)
    capsys.readouterr()
    assert pdv_main(["events", "tail", "--target", stack.target, "--api-key-file", str(key_file), "--max", "1"]) == 0
    (printed,) = capsys.readouterr().out.splitlines()
    line = json.loads(printed)
    assert (line["kind"], line["fields"], line["tokens"]) == (
        "fields_shredded", ["email"], [{"field": "email", "token": rec.tokens["email"]}])
    assert "example.org" not in printed and "Lovelace" not in printed
    # It acknowledged what it printed: the next subscription starts after it.
    assert outbox(stack) == []
