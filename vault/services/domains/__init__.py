"""Token domains: keeping each partner's tokens its own, translating between domains, and the
ledger of who was handed which subject's tokens.

Every principal belongs to one token domain (policy `domain`; `city` by default, and each
partner `partner:<name>` unless the policy joins it to another). Deterministic tokens and
blind indexes are keyed per domain (vault/services/index_keys.py: the default domain keeps
the keys of before), and every value row records the domain its token was issued in, so a
token is read, and a lookup matches, only in its own domain. `translate` (a grant) converts
a token of another domain into one of the caller's (translate.py). The issuance ledger
(vault/storage/holders.py) records, per subject, which principal of which domain was handed
its tokens; `TokenLedger.holders` reads it (ledger.py).

Owns: translate.py, ledger.py. Imports services' shared helpers, crypto, storage and policy;
nothing imports it but bootstrap and the api layer.
"""
