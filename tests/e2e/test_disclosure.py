"""Public-disclosure redaction end to end (DisclosureService.Disclose, `pdv disclose`): CSV and
JSON Lines exports holding known, unknown and shredded tokens are rewritten as the catalog says
(public, masked, redacted), every item is logged under the case, personal columns holding raw
values are refused, canaries stay out, and a large file streams — through the generated client
and the CLI against a real OpenBao, on both databases."""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pdv_client import PdvClient, Record
from pdv_client.errors import InvalidArgument, NotFound, PermissionDenied, ResourceExhausted

from tests.conftest import DATABASES
from tests.support.access_log import logged_items
from tests.support.stack import PRINCIPAL, Stack, stack_with_policy
from vault.cli.main import main as pdv_main
from vault.keys.openbao import OpenBaoServer

POLICY_FILE = Path(__file__).with_name("disclosure_policy.yaml")
PURPOSE = "public_disclosure"
COLLECTED_FOR = "court_proceedings"
NAMED = ("records-office", "court-clerk")
STRANGER = PRINCIPAL  # may collect and read, not disclose
UNKNOWN = "pdv_" + "A" * 21 + "Q"  # well-formed, never issued
_n = itertools.count(1)


@dataclass
class Env:
    stack: Stack
    clients: dict[str, PdvClient]
    keys: dict[str, str]


@pytest.fixture(scope="module", params=DATABASES)
def env(request: pytest.FixtureRequest, openbao: OpenBaoServer, vault_token: str,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("disclosure")
    with stack_with_policy(openbao, vault_token, request.param, tmp, POLICY_FILE, NAMED) as (stack, keys):
        yield Env(stack, {**{p: stack.client(keys[p]) for p in NAMED}, STRANGER: stack.client()}, keys)


def person() -> dict[str, str]:
    n = next(_n)
    return {"full_name": f"Cnry{_letters()} Resident", "ssn": f"{secrets.choice(range(100, 600))}-45-{1000 + n:04d}",
            "date_of_birth": "1984-03-07", "court_case_number": f"2024-CR-{secrets.randbelow(10**6):06d}"}


def _letters() -> str:
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(10))


def load(env: Env, fields: dict[str, str]) -> tuple[str, dict[str, str]]:
    (result,) = env.clients[STRANGER].tokenize([Record(fields)], purpose=COLLECTED_FOR, source="court")
    return result.subject_id, dict(result.tokens)


def open_case(env: Env, kind: str = "disclosure", subject_id: str | None = None) -> str:
    return env.clients["records-office"].requests.open(kind, subject_id=subject_id,
                                                       description="open-records request 2026-114").case_id


def run_cli(env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
            case: str, source: Path, out: Path, *extra: str, principal: str = "records-office") -> tuple[int, str, str]:
    config = tmp_path / "disclose.toml"
    config.write_text('disclosure_personal_columns = ["name", "ssn"]\ndisclosure_columns = { ssn = "ssn" }\n')
    monkeypatch.setenv("PDV_API_KEY", env.keys[principal])
    capsys.readouterr()
    code = pdv_main(["disclose", "--target", env.stack.target, "--config", str(config), "--purpose", PURPOSE,
                     "--case", case, "--in", str(source), "--out", str(out), "--columns", "name=full_name", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def logged(env: Env, case: str) -> tuple[list[tuple], list[tuple]]:
    """The case's batch entries, and the item entries of those batches: (request id, subject, field, token, outcome)."""
    store = env.stack.app.store
    batches = [(r["request_id"], r["principal"], r["purpose"], r["outcome"])
               for r in logged_items(store, action="disclose_case", token=case)]
    ids = {b[0] for b in batches}
    items = [(r["request_id"], r["subject_id"], r["field"], r["token"], r["outcome"])
             for r in logged_items(store, action="disclose") if r["request_id"] in ids]
    return batches, items


def access_log_text(env: Env) -> str:
    """Every item of the access log, whatever form its entry is stored in."""
    return "\n".join(repr((r["request_id"], r["action"], r["purpose"], r["subject_id"], r["field"], r["token"],
                            r["outcome"])) for r in logged_items(env.stack.app.store))


def records(env: Env) -> tuple[dict, dict, dict, dict]:
    """A known person, a shredded one (their fields and tokens), for one export."""
    known, shredded = person(), person()
    _, known_tokens = load(env, known)
    gone, gone_tokens = load(env, shredded)
    (outcome,) = env.clients["records-office"].shred_subjects([gone], reason="deletion request")
    assert outcome.status == "shredded"
    return known, known_tokens, shredded, gone_tokens


HEADER = ["id", "name", "ssn", "case_number", "dob", "note"]


def export_rows(known_tokens: dict, gone_tokens: dict, raw_ssn: str) -> list[list[str]]:
    return [
        ["1", known_tokens["full_name"], known_tokens["ssn"], known_tokens["court_case_number"],
         known_tokens["date_of_birth"], "called about a permit"],
        ["2", gone_tokens["full_name"], gone_tokens["ssn"], gone_tokens["court_case_number"],
         gone_tokens["date_of_birth"], "pdv_not-a-token"],
        ["3", UNKNOWN, raw_ssn, UNKNOWN, "", ""],
    ]


def expected_rows(known: dict) -> list[list[str]]:
    public_case = known["court_case_number"].replace("-", "")  # the normalized value is what is public
    return [
        ["1", "[REDACTED: full_name]", "[REDACTED: ssn]", public_case, "1984-**-**", "called about a permit"],
        # Shredded and unknown tokens answer exactly as a known redacted one does.
        ["2", "[REDACTED: full_name]", "[REDACTED: ssn]", "[REDACTED]", "[REDACTED]", "pdv_not-a-token"],
        ["3", "[REDACTED: full_name]", "[REDACTED: ssn]", "[REDACTED]", "", ""],
    ]


def test_a_csv_export_is_rewritten_as_the_catalog_says_and_every_item_is_logged_under_the_case(
        env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    known, known_tokens, shredded, gone_tokens = records(env)
    raw_ssn = f"{secrets.choice(range(100, 600))}{secrets.randbelow(90) + 10}{secrets.randbelow(9000) + 1000}"
    case = open_case(env)
    source, out = tmp_path / "records.csv", tmp_path / "public.csv"
    with source.open("w", newline="") as fh:
        csv.writer(fh).writerows([HEADER, *export_rows(known_tokens, gone_tokens, raw_ssn)])

    code, stdout, stderr = run_cli(env, monkeypatch, capsys, tmp_path, case, source, out)

    assert code == 0, stderr
    with out.open(newline="") as fh:
        assert list(csv.reader(fh)) == [HEADER, *expected_rows(known)]
    summary = json.loads(stdout)
    assert (summary["records"], summary["public"], summary["masked"], summary["redacted"], summary["not_a_token"]) \
        == (3, 1, 1, 9, 0)
    # Nothing of a redacted value, a shredded one or the raw SSN typed into the ssn column leaves.
    published = out.read_text() + stdout + stderr + env.stack.log.getvalue()
    for secret in (known["full_name"], known["ssn"], known["ssn"].replace("-", ""), shredded["full_name"],
                   shredded["court_case_number"].replace("-", ""), raw_ssn):
        assert secret not in published
    assert raw_ssn not in access_log_text(env)  # a miss in a format-preserving column is logged without its text

    batches, items = logged(env, case)
    assert [(b[1], b[2], b[3]) for b in batches] == [("records-office", PURPOSE, "ok")]
    by_outcome = sorted(((field or "", outcome, token is not None) for _, _, field, token, outcome in items))
    assert by_outcome == sorted((f or "", o, shown) for f, o, shown in [
        ("full_name", "redacted", True), ("ssn", "redacted", True), ("court_case_number", "public", True),
        ("date_of_birth", "masked", True),
        ("full_name", "not_found", True), ("ssn", "not_found", False), (None, "not_found", True), (None, "not_found", True),
        ("full_name", "not_found", True), ("ssn", "not_found", False), (None, "not_found", True),
    ])
    assert {request_id for request_id, *_ in items} == {batches[0][0]}
    (action,) = env.clients["records-office"].requests.show(case).actions
    assert (action.action, action.outcome, action.subject_id) == ("disclosure", "disclosed", None)
    assert "11 items (1 public, 1 masked, 9 redacted, 0 not tokens)" in action.detail


def test_a_jsonl_export_is_rewritten_alike_and_other_values_are_left_alone(
        env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    known, known_tokens, _, gone_tokens = records(env)
    case = open_case(env)
    source, out = tmp_path / "records.jsonl", tmp_path / "public.jsonl"
    rows = export_rows(known_tokens, gone_tokens, "123456789")
    lines = [dict(zip(HEADER, row)) for row in rows]
    lines[0]["count"], lines[0]["nested"] = 3, {"token": known_tokens["full_name"]}  # not a column: left alone
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))

    code, stdout, stderr = run_cli(env, monkeypatch, capsys, tmp_path, case, source, out)

    assert code == 0, stderr
    got = [json.loads(line) for line in out.read_text().splitlines()]
    expected = [dict(zip(HEADER, row)) for row in expected_rows(known)]
    expected[0]["count"], expected[0]["nested"] = 3, {"token": known_tokens["full_name"]}
    assert got == expected
    assert len(logged(env, case)[1]) == 11


@pytest.mark.parametrize("column, value", [("name", "Jane Q. Resident"), ("ssn", "pdv_" + "x" * 5)])
def test_a_personal_column_holding_a_raw_value_is_refused_and_nothing_is_written(
        env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        column: str, value: str) -> None:
    _, tokens = load(env, person())
    case = open_case(env)
    source, out = tmp_path / "records.csv", tmp_path / "public.csv"
    with source.open("w", newline="") as fh:
        csv.writer(fh).writerows([["name", "ssn", "email"], [tokens["full_name"], tokens["ssn"], "a@example.org"],
                                  {"name": [value, tokens["ssn"], ""], "ssn": [tokens["full_name"], value, ""]}[column]])

    code, stdout, stderr = run_cli(env, monkeypatch, capsys, tmp_path, case, source, out)

    assert code == 2
    assert f"record 2, column {column!r}: a personal column" in stderr and value not in stderr + stdout
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".public")] == []


def test_a_personal_column_not_named_for_a_field_is_refused_for_anything_but_an_opaque_token(
        env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    case = open_case(env)
    source, out = tmp_path / "records.csv", tmp_path / "public.csv"
    source.write_text("\ufeffhome,id\n12 Main Street,1\n", encoding="utf-8")  # a spreadsheet's byte-order mark

    code, _, stderr = run_cli(env, monkeypatch, capsys, tmp_path, case, source, out, "--personal", "home")

    assert code == 2 and "column 'home'" in stderr and "Main" not in stderr and not out.exists()


def test_a_file_that_is_not_utf8_is_refused_without_quoting_it(
        env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source, out = tmp_path / "records.csv", tmp_path / "public.csv"
    source.write_bytes(b"id,name\n1,Ren\xe9e\n")

    code, _, stderr = run_cli(env, monkeypatch, capsys, tmp_path, open_case(env), source, out)

    assert code == 2 and "not readable as UTF-8 csv (UnicodeDecodeError)" in stderr and "xe9" not in stderr
    assert not out.exists()


def test_disclosure_needs_a_disclose_grant_and_a_refusal_is_logged(env: Env) -> None:
    _, tokens = load(env, person())
    case = open_case(env)

    with pytest.raises(PermissionDenied):
        env.clients[STRANGER].disclosure.disclose([tokens["full_name"]], purpose=PURPOSE, case_id=case)
    with pytest.raises(PermissionDenied):  # granted for public_disclosure only
        env.clients["records-office"].disclosure.disclose([tokens["full_name"]], purpose=COLLECTED_FOR, case_id=case)

    refused = [(r["principal"], r["purpose"], r["outcome"])
               for r in logged_items(env.stack.app.store, action="disclose_case", token=case)]
    assert refused == [(STRANGER, PURPOSE, "denied"), ("records-office", COLLECTED_FOR, "denied")]


def test_a_grant_on_some_fields_redacts_the_others_like_unknown_tokens(env: Env) -> None:
    fields = person()
    _, tokens = load(env, fields)
    case = open_case(env)

    got = env.clients["court-clerk"].disclosure.disclose(
        [tokens["court_case_number"], tokens["full_name"], UNKNOWN, (tokens["ssn"], "ssn")], purpose=PURPOSE,
        case_id=case)

    assert [(d.outcome, d.text) for d in got] == [
        ("public", fields["court_case_number"].replace("-", "")), ("redacted", "[REDACTED]"),
        ("redacted", "[REDACTED]"), ("redacted", "[REDACTED: ssn]")]
    _, items = logged(env, case)
    assert [(f, o) for _, _, f, _, o in items] == [
        ("court_case_number", "public"), ("full_name", "denied"), (None, "not_found"), ("ssn", "denied")]


def test_text_without_token_syntax_is_not_a_token_and_is_not_looked_up(env: Env) -> None:
    case = open_case(env)
    got = env.clients["records-office"].disclosure.disclose(
        ["Jane Resident", ("Jane Resident", "full_name"), ("12-34", "ssn"), ("2024CR1", "court_case_number")],
        purpose=PURPOSE, case_id=case)
    assert [(d.outcome, d.text) for d in got] == [("not_a_token", "")] * 4
    _, items = logged(env, case)
    assert [(token, outcome) for _, _, _, token, outcome in items] == [(None, "not_a_token")] * 4


def test_the_case_must_be_an_open_disclosure_request(env: Env) -> None:
    subject, tokens = load(env, person())
    office = env.clients["records-office"]
    closed = open_case(env)
    office.requests.update(closed, status="withdrawn")

    for case in (closed, open_case(env, "access", subject), "req_" + "0" * 24):
        with pytest.raises(NotFound, match="no open disclosure request"):
            office.disclosure.disclose([tokens["full_name"]], purpose=PURPOSE, case_id=case)
        assert [b[3] for b in logged(env, case)[0]] == ["no_open_case"]
    with pytest.raises(InvalidArgument, match="case_id"):
        office.disclosure.disclose([tokens["full_name"]], purpose=PURPOSE, case_id="2026-114")
    with pytest.raises(InvalidArgument, match="items\\[0\\]"):
        office.disclosure.disclose([("x", "no_such_field")], purpose=PURPOSE, case_id=open_case(env))


def test_a_subject_who_opted_out_of_public_disclosure_is_redacted(env: Env) -> None:
    fields = person()
    subject, tokens = load(env, fields)
    env.clients[STRANGER].set_consent(subject, PURPOSE, opted_out=True)
    case = open_case(env)

    (got,) = env.clients["records-office"].disclosure.disclose([tokens["court_case_number"]], purpose=PURPOSE,
                                                               case_id=case)

    assert (got.outcome, got.text) == ("redacted", "[REDACTED]")
    assert [o for *_, o in logged(env, case)[1]] == ["denied_consent"]


ROWS = 100_000
NOTE = "x" * 200  # makes a loaded file weigh: ~22 MB of text, more as Python objects


def peak_rss_kib(env: Env, tmp_path: Path, case: str, source: Path, out: Path) -> tuple[int, float, dict]:
    """Run pdv disclose in a process of its own: its peak RSS, wall time and summary."""
    code = ("import resource, sys\nfrom vault.cli.main import main\nrc = main(sys.argv[1:])\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\nsys.exit(rc)\n")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code, "disclose", "--target", env.stack.target, "--purpose", PURPOSE, "--case", case,
         "--in", str(source), "--out", str(out), "--no-progress"],
        env={**os.environ, "PDV_API_KEY": env.keys["records-office"]}, cwd=tmp_path, capture_output=True, text=True,
        timeout=600)
    assert done.returncode == 0, done.stderr
    return int(done.stderr.strip().splitlines()[-1]), time.monotonic() - started, json.loads(done.stdout)


def test_a_large_file_streams_in_bounded_memory(env: Env, tmp_path: Path) -> None:
    results = env.clients[STRANGER].tokenize(
        [Record({"court_case_number": f"2025-CV-{i:06d}"}) for i in range(500)], purpose=COLLECTED_FOR, source="court")
    tokens = [r.tokens["court_case_number"] for r in results]
    case = open_case(env)

    def write(path: Path, rows: int) -> None:
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "case_number", "note"])
            for i in range(rows):
                writer.writerow([i, tokens[i % len(tokens)], NOTE])

    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    write(small, 2_000)
    write(large, ROWS)

    small_peak, _, _ = peak_rss_kib(env, tmp_path, case, small, tmp_path / "small.out.csv")
    large_peak, seconds, summary = peak_rss_kib(env, tmp_path, case, large, tmp_path / "large.out.csv")

    assert (summary["records"], summary["public"], summary["calls"]) == (ROWS, ROWS, ROWS // 1000)
    # Streaming: 50 times the records (22 MB of input) cost the process almost nothing more.
    assert large_peak - small_peak < 24 * 1024, (small_peak, large_peak)
    with (tmp_path / "large.out.csv").open(newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader) == ["id", "case_number", "note"]
        for i, row in enumerate(reader):
            assert row == [str(i), f"2025CV{i % len(tokens):06d}", NOTE]
    assert i == ROWS - 1
    print(f"\n{ROWS} records: {seconds:.1f} s, peak RSS {large_peak // 1024} MiB "
          f"(2,000 records: {small_peak // 1024} MiB)")


def test_an_answer_over_the_message_limit_is_refused_and_logged_as_not_disclosed(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    results = env.clients[STRANGER].tokenize(
        [Record({"court_case_number": f"2026-CV-{secrets.randbelow(10**6):06d}-{i:03d}"}) for i in range(30)],
        purpose=COLLECTED_FOR, source="court")
    tokens = [r.tokens["court_case_number"] for r in results]
    case = open_case(env)
    service = env.stack.app.disclosure
    # As if max_message_bytes were 500: the same check a 4 MiB answer meets.
    monkeypatch.setattr(service, "limits", dataclasses.replace(service.limits, max_answer_bytes=500))

    with pytest.raises(ResourceExhausted, match="over the 500-byte message limit; send fewer items per call"):
        env.clients["records-office"].disclosure.disclose(tokens, purpose=PURPOSE, case_id=case)
    got = env.clients["records-office"].disclosure.disclose(tokens[:5], purpose=PURPOSE, case_id=case)

    assert [d.outcome for d in got] == ["public"] * 5
    batches, items = logged(env, case)
    assert [b[3] for b in batches] == ["too_large", "ok"]
    assert [o for *_, o in items] == ["too_large"] * 30 + ["public"] * 5
    assert [a.detail.split(": ", 1)[1] for a in env.clients["records-office"].requests.show(case).actions] == [
        "5 items (5 public, 0 masked, 0 redacted, 0 not tokens)"]
