"""The items column of an access-log entry: grouping by request, encoding, strict decoding."""

from __future__ import annotations

from datetime import datetime, timezone

import msgpack
import pytest

from vault.crypto.audit import encode_entry, encode_entry_items
from vault.storage.access_items import MIXED, decode_items, encode_items, group_requests, subjects_of

AT = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _row(request: str, subject: str | None, field: str | None, token: str | None, outcome: str = "ok") -> tuple:
    return (AT, request, "clerk", "detokenize", "billing", subject, field, token, outcome)


def test_rows_group_into_one_entry_per_request_in_first_seen_order() -> None:
    rows = [_row("r1", "s1", "email", "t1"), _row("r2", "s2", "email", "t2"), _row("r1", "s1", "phone", "t3", "denied"),
            _row("r3", None, None, "t4", "not_found")]
    entries = group_requests(rows)
    assert [e[1] for e in entries] == ["r1", "r2", "r3"]
    r1, r2, r3 = entries
    assert r1[5:9] == (None, None, None, MIXED) and decode_items(r1[9]) == [("s1", "email", "t1", "ok"),
                                                                            ("s1", "phone", "t3", "denied")]
    assert r2 == (*rows[1], None) and r3 == (*rows[3], None)  # one item: the columns, as before 0009
    assert [subjects_of(e) for e in entries] == [["s1"], ["s2"], []]


def test_the_encoding_round_trips_and_is_deterministic() -> None:
    rows = [_row("r", f"s{n % 7}", ("email", "phone", None)[n % 3], None if n % 11 == 0 else f"tok{n}",
                 ("ok", "denied")[n % 2]) for n in range(500)]
    blob = encode_items(rows)
    assert blob == encode_items(list(rows))
    assert decode_items(blob) == [r[5:9] for r in rows]
    assert len(blob) < sum(len(repr(r[5:9])) for r in rows) / 2  # repeated subjects and fields are named once


@pytest.mark.parametrize("value", [
    b"\xc1", b"", msgpack.packb([2, [], [], [], []]), msgpack.packb([1, [], [], []]), msgpack.packb({"a": 1}),
    msgpack.packb([1, ["s"], ["f"], ["ok"], [0, 0, 0]]),  # not a whole item
    msgpack.packb([1, ["s"], ["f"], ["ok"], [0, 1, 0, "t"]]),  # an index past its dictionary
    msgpack.packb([1, ["s"], ["f"], ["ok"], [-1, 0, 0, "t"]]),  # a negative index
    msgpack.packb([1, ["s"], ["f"], ["ok"], [0, 0, 0, 5]]),  # a token that is no text
    msgpack.packb([1, [7], ["f"], ["ok"], [0, 0, 0, "t"]]),  # a subject that is no text
    msgpack.packb([1, ["s"], ["f"], ["ok"], [0, 0, 0, "t"]]) + b"\x00",  # trailing bytes
])
def test_decoding_refuses_anything_but_the_exact_shape(value: bytes) -> None:
    with pytest.raises(ValueError, match="undecodable items column"):
        decode_items(value)


def test_an_entry_with_items_never_encodes_like_one_without() -> None:
    fields = ["r", "clerk", "detokenize", "billing", None, None, None, "ok"]
    plain = encode_entry("c", 1, 0, fields)
    assert encode_entry_items("c", 1, 0, fields, None) == plain
    with_items = encode_entry_items("c", 1, 0, fields, b"")
    assert with_items != plain and with_items[0] == 0xFF and plain[0] < 0x80
    assert encode_entry_items("c", 1, 0, fields, b"ab") != encode_entry_items("c", 1, 0, fields, b"a")
