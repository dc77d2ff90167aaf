"""Residents' rights: privacy requests and complaints (requests.py), who may handle them
(request_access.py) and how actions taken under a request are linked to it (links.py).
Later: the subject access report, correction and disclosure.

Owns the request workflow, due dates, the sealing of a request's free text and the
retention of closed requests. May import vault.services (common, access, keyring),
vault.storage, vault.crypto, vault.domain and vault.errors; nothing outside vault.services
imports it except bootstrap, api and the lifecycle services that link their actions
(shred, consent, holds).
"""
