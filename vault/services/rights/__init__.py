"""Residents' rights: privacy requests and complaints (requests.py), who may handle them
(request_access.py), how actions taken under a request are linked to it (links.py), and
the correction of a stored value (correction.py), and public disclosure: rewriting the tokens
of records the city releases to what the catalog lets the public see (disclosure.py). Later:
the subject access report.

Owns the request workflow, due dates, the sealing of a request's free text, the retention
of closed requests, value corrections with their history, and disclosure rewriting. May
import vault.services (common, access, keyring, index_keys, group_commit, and detokenize for
the token syntax and its unwrap-and-retry rounds), vault.storage, vault.crypto, vault.catalog,
vault.domain and vault.errors; nothing outside vault.services imports it except bootstrap,
api and the lifecycle services that link their actions (shred, consent, holds).
"""
