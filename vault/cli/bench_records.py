"""What every `pdv bench` measurement sends: the bench principal's policy, the purpose its
records are collected and read for, and the record itself — one definition, so the
in-process profile (bench_profile.py) and the bench over gRPC (bench.py) measure the same work."""

from __future__ import annotations

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
