"""The access-log hash chain: an injective encoding of one entry and its chained HMAC.

Each entry's mac is HMAC-SHA256(chain key, previous mac || encode_entry(...)); the first
entry of a chain follows GENESIS. The chain id and sequence number are inside the MAC,
so an entry cannot be moved to another chain or position without the key. Pure: the
caller turns timestamps into microseconds since the epoch (UTC).
"""

from __future__ import annotations

import hmac
import json
import struct
from collections.abc import Sequence

GENESIS = b"\0" * 32
_NONE = b"\xff\xff\xff\xff"  # a length no UTF-8 field of ours can have: NULL differs from ""
_HEAD = struct.Struct(">QqI")
_LEN = struct.Struct(">I")


def encode_entry(chain_id: str, seq: int, at_micros: int, fields: Sequence[str | None],
                 memo: dict[str, bytes] | None = None) -> bytes:
    """Length-prefixed (chain id, seq, time, fields...): no two entries encode alike.

    `memo` (field text -> its encoded part) lets a caller encoding many entries in a row
    encode the values they share (request id, principal, subject ...) once.
    """
    chain = chain_id.encode()
    parts = [_HEAD.pack(seq, at_micros, len(chain)), chain]
    for value in fields:
        if value is None:
            parts.append(_NONE)
            continue
        part = memo.get(value) if memo is not None else None
        if part is None:
            raw = value.encode()
            part = _LEN.pack(len(raw)) + raw
            if memo is not None:
                memo[value] = part
        parts.append(part)
    return b"".join(parts)


# Marks the encoding of an entry with an items column (migration 0009). The plain encoding
# starts with its seq as a big-endian uint64, whose top byte is below 0x80 for any seq a
# BigInteger holds, so no plain entry encodes like one with items.
_ITEMS_MARK = b"\xff\x01"


def encode_entry_items(chain_id: str, seq: int, at_micros: int, fields: Sequence[str | None], items: bytes | None,
                       memo: dict[str, bytes] | None = None) -> bytes:
    """The MAC input of an entry: encode_entry when it has no items column (one item, the
    layout of every entry before 0009), else a mark, encode_entry of its columns and the
    length-prefixed items bytes — so the MAC covers every item as stored."""
    plain = encode_entry(chain_id, seq, at_micros, fields, memo)
    if items is None:
        return plain
    return b"".join((_ITEMS_MARK, plain, _LEN.pack(len(items)), items))


def chain_mac(key: bytes, prev_mac: bytes, entry: bytes) -> bytes:
    return hmac.digest(key, prev_mac + entry, "sha256")


def checkpoint_payload(chain_id: str, seq: int, mac: bytes, at: str) -> bytes:
    """The bytes Vault signs for a checkpoint: canonical JSON, keys sorted, no spaces."""
    body = {"v": 1, "kind": "pdv-audit-checkpoint", "chain": chain_id, "seq": seq, "mac": mac.hex(), "at": at}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
