"""Residents' rights: privacy requests and complaints (requests.py), who may handle them
(request_access.py), how actions taken under a request are linked to it (links.py), the
correction of a stored value (correction.py), public disclosure: rewriting the tokens of
records the city releases to what the catalog lets the public see (disclosure.py), and the
subject access report (report.py, built as report_model.py's shapes, its words in
report_words.py, and its printable letter in report_html.py with the Jinja2 template under templates/).

Owns the request workflow, due dates, the sealing of a request's free text, the retention
of closed requests, value corrections with their history, disclosure rewriting, and the
access report. May import vault.services (common, access, keyring, index_keys, group_commit,
audit, and detokenize for the token syntax and its unwrap-and-retry rounds), vault.storage,
vault.crypto, vault.catalog, vault.policy, vault.domain and vault.errors; nothing outside
vault.services imports it except bootstrap, api, the lifecycle services that link their
actions (shred, consent, holds), and cli for the letter (report_html, which is pure).
"""
