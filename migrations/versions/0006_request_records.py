"""Tokenize answers kept for retries are stored per record, so a shred can scrub them.

A retried tokenize is answered from what the first one returned. Until now that was one
JSON document per request listing every record's subject id and tokens; a shred had no
cheap way to find, or take its subject out of, the answers naming it. Each stored record
is now a row of request_records, indexed by subject; tokenize_requests keeps the
fingerprint, the number of records and the per-record errors.

Revision ID: 0006
Revises: 0005
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCRUBBED = b""  # the fingerprint of an answer a shred touched: a retry is not compared with it


def upgrade() -> None:
    op.create_table(
        "request_records",
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=False),  # "" once shredded
        sa.Column("tokens", sa.Text, nullable=False),  # JSON: field -> token
        sa.PrimaryKeyConstraint("principal", "request_id", "position"),
    )
    op.create_index("ix_request_records_subject", "request_records", ["subject_id"])
    # Stored answers are kept for a retry window only; disposal prunes them by age.
    op.create_index("ix_tokenize_requests_created", "tokenize_requests", ["created_at"])
    # Move the records of answers stored before this migration. Until now a shred left these
    # answers alone: a record whose subject is gone is stored blank (a retry is told it is not
    # found), and a record keeps only the tokens its subject still holds a value under.
    conn = op.get_bind()
    requests = conn.execute(sa.text("SELECT principal, request_id, response FROM tokenize_requests")).fetchall()
    for principal, request_id, response in requests:
        body = json.loads(response)
        held = _held(conn, sorted({s for s, _ in body["results"] if s}))
        rows = [
            {"p": principal, "r": request_id, "i": i, "s": subject_id if subject_id in held else "",
             "t": json.dumps({f: tok for f, tok in tokens.items() if (f, tok) in held.get(subject_id, set())})}
            for i, (subject_id, tokens) in enumerate(body["results"]) if subject_id
        ]
        if rows:
            conn.execute(sa.text("INSERT INTO request_records (principal, request_id, position, subject_id, tokens) "
                                 "VALUES (:p, :r, :i, :s, :t)"), rows)
        conn.execute(
            sa.text("UPDATE tokenize_requests SET response = :body WHERE principal = :p AND request_id = :r"),
            {"body": json.dumps({"records": len(body["results"]), "errors": body["errors"]}), "p": principal, "r": request_id},
        )
        if any(not row["s"] or len(json.loads(row["t"])) < len(body["results"][row["i"]][1]) for row in rows):
            # The fingerprint is a keyed hash of the request's values, some of them now shredded.
            conn.execute(sa.text("UPDATE tokenize_requests SET fingerprint = :none WHERE principal = :p AND request_id = :r"),
                         {"none": SCRUBBED, "p": principal, "r": request_id})


def _held(conn: sa.Connection, subject_ids: list[str]) -> dict[str, set[tuple[str, str]]]:
    """(field, token) of every value each existing subject of `subject_ids` holds."""
    held: dict[str, set[tuple[str, str]]] = {}
    for start in range(0, len(subject_ids), 500):
        chunk = subject_ids[start:start + 500]
        marks = ", ".join(f":s{n}" for n in range(len(chunk)))
        params = {f"s{n}": s for n, s in enumerate(chunk)}
        for (subject_id,) in conn.execute(sa.text(f"SELECT id FROM subjects WHERE id IN ({marks})"), params):
            held.setdefault(subject_id, set())
        for subject_id, field, token in conn.execute(
            sa.text(f"SELECT subject_id, field, token FROM field_values WHERE subject_id IN ({marks})"), params
        ):
            held.setdefault(subject_id, set()).add((field, token))
    return held


def downgrade() -> None:
    # Put each answer's records back into its JSON, in the format revision 0005 reads.
    op.drop_index("ix_tokenize_requests_created", "tokenize_requests")
    conn = op.get_bind()
    for principal, request_id, response in conn.execute(
        sa.text("SELECT principal, request_id, response FROM tokenize_requests")
    ).fetchall():
        body = json.loads(response)
        results = [["", {}] for _ in range(body["records"])]
        for position, subject_id, tokens in conn.execute(
            sa.text("SELECT position, subject_id, tokens FROM request_records WHERE principal = :p AND request_id = :r"),
            {"p": principal, "r": request_id},
        ):
            results[position] = [subject_id, json.loads(tokens) if subject_id else {}]
        conn.execute(
            sa.text("UPDATE tokenize_requests SET response = :body WHERE principal = :p AND request_id = :r"),
            {"body": json.dumps({"results": results, "errors": body["errors"]}), "p": principal, "r": request_id},
        )
    op.drop_table("request_records")
