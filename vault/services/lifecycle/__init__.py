"""Disposal surviving a restore: replaying the tombstone ledger, and catching and reconciling a rollback.

- replay: re-applies every receipt of the tombstone ledger the database lacks (whole-subject
  and field shreds, retention disposal and its de-identification), exactly as it was done.
- restore: compares the database's audit chains with the external checkpoint file at start,
  keeps personal data from being served after a rollback, and `pdv restore reconcile`.

May import vault.services (shred, disposal, audit, ledger), vault.storage, vault.keys'
protocols, vault.domain and vault.errors; never grpc, hvac or SQLAlchemy. Shred, disposal and
the ledger themselves move here in a later change (STYLE.md "The house as it grows").
"""
