"""The lean loops `pdv bench --profile` holds PDV against: the essential work of a field, no more.

Tokenize, per record: a subject id and a fresh DEK; per field: normalize and validate
(the catalog's own rules), a 128-bit token (HMAC for a deterministic field, random
otherwise), AES-256-GCM under the DEK with the row's AAD, the HMAC blind index of a
searchable field, the value row and the access-log row as tuples. Detokenize, per item:
strict token syntax, the stored row by token, the DEK by key id, open with the AAD, the
answer and the access-log row as tuples. Rows live in dictionaries; no policy, no logging
chain, no database, no Vault. The primitives are PDV's own (vault.crypto), so the ratio
measures the code around them.
"""

from __future__ import annotations

import hmac
import os
import secrets
from datetime import datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.catalog import Catalog, TokenKind
from vault.crypto import tokens as tk
from vault.crypto.aead import FORMAT_V1, NONCE_BYTES, row_aad
from vault.crypto.index import INDEX_BYTES

_HEADER_V1 = FORMAT_V1.to_bytes(1, "big") + (1).to_bytes(4, "big")  # format 1, key version 1


class LeanVault:
    """Rows and DEKs of the lean loops, kept between tokenize and detokenize."""

    def __init__(self, catalog: Catalog, token_keys: dict[str, bytes], index_keys: dict[str, bytes]) -> None:
        self.catalog, self.token_keys, self.index_keys = catalog, token_keys, index_keys
        self.rows: dict[str, tuple] = {}  # token -> value row
        self.deks: dict[tuple[str, int], AESGCM] = {}
        self.log: list[tuple] = []

    def tokenize(self, records: list[dict[str, str]], purpose: str, request_id: str, now: datetime) -> list[tuple]:
        """Per record (subject id, field -> token); rows and log rows kept."""
        specs = {s.name: s for s in self.catalog}
        answers = []
        for fields in records:
            subject = "sub_" + secrets.token_urlsafe(16)
            dek = AESGCM(os.urandom(32))
            self.deks[(subject, 1)] = dek
            tokens = {}
            for name, value in fields.items():
                spec = specs[name]
                normalized = spec.normalize(value)
                raw = normalized.encode()
                if spec.token_kind is TokenKind.DETERMINISTIC:
                    token = tk.deterministic_token(self.token_keys[name], normalized)
                else:
                    token = tk.random_token()
                nonce = os.urandom(NONCE_BYTES)
                sealed = _HEADER_V1 + nonce + dek.encrypt(nonce, raw, row_aad(subject, name, token, 1))
                index = hmac.digest(self.index_keys[name], raw, "sha256")[:INDEX_BYTES] if spec.searchable else None
                self.rows[token] = (subject, name, token, 1, sealed, index, purpose, "bench", None, now, now)
                self.log.append((now, request_id, "bench", "tokenize", purpose, subject, name, token, "ok"))
                tokens[name] = token
            answers.append((subject, tokens))
        return answers

    def detokenize(self, items: list[tuple[str, str]], purpose: str, request_id: str, now: datetime) -> list[tuple]:
        """Per item (token, field, value); log rows kept."""
        answers = []
        for token, field in items:
            if not tk.is_opaque_token(token):
                raise ValueError("malformed token")
            row = self.rows[token]
            blob = row[4]
            value = self.deks[(row[0], row[3])].decrypt(
                blob[5:5 + NONCE_BYTES], blob[5 + NONCE_BYTES:], row_aad(row[0], row[1], token, row[3])
            ).decode()
            self.log.append((now, request_id, "bench", "detokenize", purpose, row[0], row[1], token, "ok"))
            answers.append((token, field, value))
        return answers
