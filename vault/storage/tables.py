"""Table definitions. migrations/ is the source of truth for the schema; these mirror it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()

# Autoincrement ids must be BIGINT on PostgreSQL and INTEGER (rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")

subjects = Table(
    "subjects",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
)

data_keys = Table(
    "data_keys",
    metadata,
    Column("subject_id", String(32), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("wrapped", Text, nullable=False),
    Column("kek_version", Integer, nullable=False),
    Column("encryptions", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(["subject_id"], ["subjects.id"], ondelete="CASCADE"),
    Index("ix_data_keys_kek_version", "kek_version"),
)

field_values = Table(
    "field_values",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("subject_id", String(32), nullable=False),
    Column("field", String(64), nullable=False),
    Column("token", String(256), nullable=False),
    Column("key_version", Integer, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("blind_index", LargeBinary, nullable=True),
    Column("purpose", String(64), nullable=False),
    Column("source", String(200), nullable=False),
    Column("notice_id", String(200), nullable=True),
    Column("collected_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    # Whether a collection notice was given (0010); NULL: collected before it was recorded.
    Column("notice_given", Boolean, nullable=True),
    # The token domain the row's token was issued in (migration 0011); rows from before are the default's.
    Column("domain", String(256), nullable=False, server_default="city"),
    # A sequential token's locator and random check (migration 0013, vault/crypto/locators.py):
    # the row is found by its locator, appended in order; NULL for deterministic,
    # format-preserving and earlier random tokens, which are found by the token index.
    Column("locator", BigInteger, nullable=True),
    Column("token_check", LargeBinary, nullable=True),
    ForeignKeyConstraint(
        ["subject_id", "key_version"], ["data_keys.subject_id", "data_keys.version"], ondelete="CASCADE"
    ),
    Index("ux_field_values_token", "token", "field", "subject_id", unique=True,
          sqlite_where=text("locator IS NULL"), postgresql_where=text("locator IS NULL")),
    Index("ux_field_values_locator", "locator", unique=True,
          sqlite_where=text("locator IS NOT NULL"), postgresql_where=text("locator IS NOT NULL")),
    Index(
        "ix_field_values_index", "field", "blind_index",
        sqlite_where=text("blind_index IS NOT NULL"), postgresql_where=text("blind_index IS NOT NULL"),
    ),
    Index("ix_field_values_subject", "subject_id"),
    Index("ix_field_values_expires", "expires_at"),
)

# The next free locator of sequential tokens (0013): each server takes a block at a time.
locator_blocks = Table(
    "locator_blocks",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("next", BigInteger, nullable=False),
)

# Format-preserving tokens are unique per field and never reissued, even after a shred,
# so a system holding a stale token can never be handed another person's value.
reserved_tokens = Table(
    "reserved_tokens",
    metadata,
    Column("field", String(64), primary_key=True),
    Column("token", String(256), primary_key=True),
)

tokenize_requests = Table(
    "tokenize_requests",
    metadata,
    Column("principal", String(200), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("fingerprint", LargeBinary, nullable=False),
    Column("response", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_tokenize_requests_created", "created_at"),
)

# The records of each stored tokenize answer (migration 0006), one row each, so a shred
# finds and scrubs the ones naming its subject. subject_id is "" once shredded.
request_records = Table(
    "request_records",
    metadata,
    Column("principal", String(200), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("subject_id", String(32), nullable=False),
    Column("tokens", Text, nullable=False),
    Index("ix_request_records_subject", "subject_id"),
)

access_log = Table(
    "access_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("principal", String(200), nullable=False),
    Column("action", String(32), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("subject_id", String(32), nullable=True),
    Column("field", String(64), nullable=True),
    Column("token", String(256), nullable=True),
    Column("outcome", String(32), nullable=False),
    # The hash chain (0003): NULL only on rows written without a chain, which verify flags.
    Column("chain_id", String(32), nullable=True),
    Column("seq", BigInteger, nullable=True),
    Column("mac", LargeBinary, nullable=True),
    # One entry per request (0009): its items, encoded (vault.storage.access_items), when it
    # has several; NULL when its one item is in subject_id, field, token and outcome.
    Column("items", LargeBinary, nullable=True),
    # (0012) The access report's predecessor lookup: the entry before a cited one on its chain.
    Index("ix_access_log_chain_id", "chain_id", "id"),
)

# Which entries name a subject (0009): derived from the entries in their own transaction, so
# a person's accesses are found without scanning the log. A composite key and no rowid on
# SQLite: the table is its index. `pdv audit verify` checks it against the entries.
access_subjects = Table(
    "access_subjects",
    metadata,
    Column("subject_id", String(32), nullable=False),
    Column("entry_id", BigId, nullable=False),
    PrimaryKeyConstraint("subject_id", "entry_id"),
    sqlite_with_rowid=False,
)

# One row per writer process: its chain's committed head, moved once per transaction.
audit_chains = Table(
    "audit_chains",
    metadata,
    Column("chain_id", String(32), primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("mac", LargeBinary, nullable=False),
)

# Vault-signed (chain, seq, mac) heads; the same lines go to the checkpoint file.
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("chain_id", String(32), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("mac", LargeBinary, nullable=False),
    Column("at", String(40), nullable=False),
    Column("signature", Text, nullable=False),
    Index("ux_audit_checkpoints_chain_seq", "chain_id", "seq", unique=True),
)

wrapped_secrets = Table(
    "wrapped_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("wrapped", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# A shred leaves a tombstone: who, when, why, how many — never a value — and a receipt
# signed by Vault. Tombstones are also what a restored older database is checked against.
tombstones = Table(
    "tombstones",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("subject_id", String(32), nullable=False),
    Column("fields", Text, nullable=True),
    Column("shredded_at", DateTime(timezone=True), nullable=False),
    Column("receipt", Text, nullable=False),
    Column("signature", Text, nullable=False),
    Index("ix_tombstones_subject", "subject_id"),
)

legal_holds = Table(
    "legal_holds",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("subject_id", String(32), nullable=False),
    Column("case_id", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("placed_by", String(200), nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("released_by", String(200), nullable=True),
    Column("released_at", DateTime(timezone=True), nullable=True),
    Index("ix_legal_holds_subject", "subject_id"),
)

# What de-identification keeps of an expired value (migration 0004): a pseudonym or an
# aggregate named by the catalog, never a subject id, token or ciphertext.
deidentified_values = Table(
    "deidentified_values",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("field", String(64), nullable=False),
    Column("kept", String(32), nullable=False),
    Column("value", Text, nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("disposed_at", DateTime(timezone=True), nullable=False),
    Index("ix_deidentified_values_field", "field"),
)


# One row per (subject, purpose) the resident opted out of (migration 0005); opting back in
# deletes it, and the access log keeps the history.
consent_optouts = Table(
    "consent_optouts",
    metadata,
    Column("subject_id", String(32), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("set_by", String(200), nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("subject_id", "purpose"),
)


# Residents' privacy requests and complaints (migration 0007). description, contact and
# response are AES-GCM ciphertexts under the request's own DEK (wrapped_secrets
# "request:<id>"); closed_at is set when the status becomes final.
privacy_requests = Table(
    "privacy_requests",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("subject_id", String(32), nullable=True),
    Column("status", String(32), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("opened_by", String(200), nullable=False),
    Column("description", LargeBinary, nullable=False),
    Column("contact", LargeBinary, nullable=True),
    Column("response", LargeBinary, nullable=True),
    Index("ix_privacy_requests_subject", "subject_id"),
    Index("ix_privacy_requests_due", "closed_at", "due_at"),
)

privacy_request_history = Table(
    "privacy_request_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("request_id", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("principal", String(200), nullable=False),
    Column("from_status", String(32), nullable=True),
    Column("to_status", String(32), nullable=False),
    Column("response_set", Boolean, nullable=False),
    ForeignKeyConstraint(["request_id"], ["privacy_requests.id"], ondelete="CASCADE"),
    Index("ix_privacy_request_history_request", "request_id"),
)

# Actions taken under a request (a shred, consent change, hold or correction naming its case
# id), written in the action's own transaction. A later access-report call adds rows of its
# own action name; no value is ever stored here.
request_actions = Table(
    "request_actions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("request_id", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("principal", String(200), nullable=False),
    Column("action", String(32), nullable=False),
    Column("subject_id", String(32), nullable=True),
    Column("detail", Text, nullable=True),
    Column("outcome", String(32), nullable=False),
    ForeignKeyConstraint(["request_id"], ["privacy_requests.id"], ondelete="CASCADE"),
    Index("ix_request_actions_request", "request_id"),
)


# Correction history (migration 0008): one row per corrected value, with a keyed fingerprint
# of the old value, never the value. It cascades from the value it describes, so whatever
# destroys a value (shred, field shred, disposal) destroys its history too.
value_corrections = Table(
    "value_corrections",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("value_id", BigId, nullable=False),
    Column("subject_id", String(32), nullable=False),
    Column("field", String(64), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("token", String(256), nullable=False),
    Column("token_changed", Boolean, nullable=False),
    Column("old_fingerprint", LargeBinary, nullable=False),
    Column("corrected_at", DateTime(timezone=True), nullable=False),
    Column("corrected_by", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("case_id", String(200), nullable=True),
    Column("request_id", String(128), nullable=False),
    Column("request_fingerprint", LargeBinary, nullable=False),
    ForeignKeyConstraint(["value_id"], ["field_values.id"], ondelete="CASCADE"),
    Index("ix_value_corrections_subject", "subject_id"),
    Index("ix_value_corrections_value", "value_id"),
    Index("ix_value_corrections_request", "corrected_by", "request_id"),
)


# The token issuance ledger (migration 0011): who was handed tokens of which subject, in
# which domain, first and last when. No token and no value; a whole-subject shred deletes it.
token_holders = Table(
    "token_holders",
    metadata,
    Column("subject_id", String(32), nullable=False),
    Column("domain", String(256), nullable=False),
    Column("principal", String(200), nullable=False),
    Column("first_issued_at", DateTime(timezone=True), nullable=False),
    Column("last_issued_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("subject_id", "domain", "principal"),
)

# One row per translated item (migration 0011): the domains it went from and to, tied to
# the access-log rows by principal and request id.
token_translations = Table(
    "token_translations",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("principal", String(200), nullable=False),
    Column("subject_id", String(32), nullable=True),
    Column("field", String(64), nullable=True),
    Column("from_domain", String(256), nullable=False),
    Column("to_domain", String(256), nullable=False),
    Column("outcome", String(32), nullable=False),
    Index("ix_token_translations_request", "principal", "request_id"),
    Index("ix_token_translations_subject", "subject_id"),
)

# Events to token holders (migration 0014): the transactional outbox, one row per change and
# holder principal, and each principal's acknowledged cursor and purge horizon.
event_outbox = Table(
    "event_outbox",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("principal", String(200), nullable=False),
    Column("subject_id", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("ref", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("fields", Text, nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("tokens", Text, nullable=False),
    Index("ix_event_outbox_principal", "principal", "id"),
    Index("ix_event_outbox_at", "at"),
    Index("ux_event_outbox_change", "principal", "subject_id", "kind", "ref", unique=True),
)

event_cursors = Table(
    "event_cursors",
    metadata,
    Column("principal", String(200), primary_key=True),
    Column("acked", BigInteger, nullable=False),
    Column("purged_through", BigInteger, nullable=False),
)
