"""What every `pdv bench` measurement sends: the bench principal's policy, the purpose its
records are collected and read for, and the record itself — one definition, so the
in-process profile (bench_profile.py) and the bench over gRPC (bench.py) measure the same work."""

from __future__ import annotations

from pdv.v1 import token_pb2 as pb

PURPOSE = "benefits_eligibility"
# The development policy's grants, but for the `bench` principal only (not "*").
BENCH_POLICY = """version: 1
roles:
  developer:
    grants:
      - fields: "*"
        actions: [tokenize, detokenize, lookup, events]
        purposes: "*"
principals:
  bench: [developer]
"""


def person(i: int) -> dict[str, str]:
    """The bench's record number `i`: five fields, two of them searchable, one deterministic."""
    letters = "".join(chr(97 + (i // 26**j) % 26) for j in range(5))
    return {
        "full_name": f"Resident {letters.capitalize()}",
        "email": f"r{i}@example.org",
        "phone": f"212{i % 10_000_000:07d}",
        "street_address": f"{i % 9999 + 1} Main Street",
        "date_of_birth": f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}",
    }


def tokenize_bodies(request_id: str, first: int, stop: int, batch: int) -> list[bytes]:
    """Serialized batched tokenizes of records `first`..`stop - 1` (new subjects), `batch`
    records a call, request ids `<request_id>-<first record of the call>`."""
    return [
        pb.TokenizeRequest(
            request_id=f"{request_id}-{s}", purpose=PURPOSE, source="bench",
            records=[pb.Record(fields=person(i)) for i in range(s, min(s + batch, stop))],
        ).SerializeToString()
        for s in range(first, stop, batch)
    ]


def detokenize_bodies(pairs: list[tuple[str, str]], batch: int) -> list[bytes]:
    """Serialized batched detokenizes of (token, field) pairs, `batch` items a call."""
    return [
        pb.DetokenizeRequest(purpose=PURPOSE, items=[pb.DetokenizeItem(token=t, field=f) for t, f in pairs[s:s + batch]]
                             ).SerializeToString()
        for s in range(0, len(pairs), batch)
    ]
