"""Events to token holders: telling every principal that holds a subject's tokens when the
subject is shredded, disposed of, de-identified or corrected, its consent changes, or a
legal hold is placed or released.

The changes write their events themselves, in their own transaction (a transactional
outbox: vault/storage/events.py, fed by the token issuance ledger). This package delivers
them (delivery.py: a principal's own events after a cursor, acknowledgements, OUT_OF_RANGE
past the retained range) and purges them after event_retention_seconds (purge.py).

Owns: delivery.py, purge.py. Imports services' shared helpers, storage and policy; nothing
imports it but bootstrap, the api layer and the CLI.
"""
