"""The detokenize answer's size is bounded from above before it is logged: answer_bytes is
never below the encoded DetokenizeResponse, for short and long values, hits and misses."""

from __future__ import annotations

import random

from pdv.v1 import token_pb2 as pb

from vault.api.token_servicer import _detokenized
from vault.errors import NotFound, PermissionDenied
from vault.services.detokenize import NOT_FOUND, NOT_PERMITTED, Detokenized, answer_bytes


def test_answer_bytes_is_an_upper_bound_of_the_encoded_answer() -> None:
    rng = random.Random(7)
    for size in (0, 1, 127, 128, 16_383, 16_384, 70_000, 2_100_000):
        results = []
        for i in range(rng.randint(1, 40)):
            kind = rng.choice(["hit", "miss", "denied"])
            token = "t" * rng.choice([22, 200])
            if kind == "hit":
                results.append(Detokenized(token, "street_address", "é" * (size // 2)))
            else:
                error = NotFound(NOT_FOUND) if kind == "miss" else PermissionDenied(NOT_PERMITTED)
                results.append(Detokenized(token, error=error))
        encoded = pb.DetokenizeResponse(results=[_detokenized(r) for r in results]).ByteSize()
        assert encoded <= answer_bytes(results) <= encoded + 40 * len(results)
