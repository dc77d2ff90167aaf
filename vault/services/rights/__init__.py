"""Residents' rights: privacy requests and complaints (requests.py), who may handle them
(request_access.py), how actions taken under a request are linked to it (links.py), and
the correction of a stored value (correction.py). Later: the subject access report and
disclosure.

Owns the request workflow, due dates, the sealing of a request's free text, the retention
of closed requests, and value corrections with their history. May import vault.services
(common, access, keyring, index_keys), vault.storage, vault.crypto, vault.catalog,
vault.domain and vault.errors; nothing outside vault.services imports it except bootstrap,
api and the lifecycle services that link their actions (shred, consent, holds).
"""
