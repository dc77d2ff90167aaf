"""`pdv bench`'s oracle figure: single-call detokenize latency for tokens that must look alike.

An unknown token, a shredded one and a forbidden one must answer alike: in bytes (tests/e2e)
and in time, or the clock tells a caller which tokens exist. Two kinds of forbidden: a
caller with no read grant for the purpose (PERMISSION_DENIED for any token), and a value
collected for a purpose the access purpose may not use (NOT_FOUND, like a miss). A live
token the caller may read is the reference. Calls go one at a time, so the figure is each
case's own cost rather than queueing; the cases are shuffled in every round, so whatever
else loads the machine loads every case alike.
"""

from __future__ import annotations

import random
import time

from pdv.v1 import subject_pb2 as spb
from pdv.v1 import token_pb2 as pb
from pdv_client.raw import RawTokenCalls

from vault.crypto.tokens import random_token

CASES = ("allowed", "unknown", "shredded", "forbidden_caller", "forbidden_value")
# What each case must answer (per-item code), checked before anything is timed.
EXPECTED = {"allowed": 0, "unknown": 5, "shredded": 5, "forbidden_caller": 7, "forbidden_value": 5}
COLLECTED_FOR = "benefits_eligibility"
# The catalog does not let `billing` use values collected for benefits_eligibility.
INCOMPATIBLE_PURPOSE = "billing"
WARMUP_ROUNDS = 20


def oracle_latencies(raw: RawTokenCalls, stranger: RawTokenCalls, rounds: int, subjects: int = 200) -> dict[str, float]:
    """p50/p99 microseconds of one-token Detokenize calls per case, `rounds` calls each.

    `raw` calls as a principal that may tokenize, read and shred everything; `stranger` as one
    the policy grants nothing. Stores `subjects` fresh subjects and shreds half of them.
    """
    live, shredded = _tokens(raw, subjects)
    calls = {"allowed": raw, "unknown": raw, "shredded": raw, "forbidden_value": raw, "forbidden_caller": stranger}

    def body(case: str, i: int) -> bytes:
        token = {"unknown": random_token(), "shredded": shredded[i % len(shredded)]}.get(case, live[i % len(live)])
        purpose = INCOMPATIBLE_PURPOSE if case == "forbidden_value" else COLLECTED_FOR
        return pb.DetokenizeRequest(purpose=purpose, items=[pb.DetokenizeItem(token=token)]).SerializeToString()

    for case in CASES:
        (result,) = pb.DetokenizeResponse.FromString(calls[case].call("Detokenize", body(case, 0))).results
        if result.code != EXPECTED[case]:
            raise RuntimeError(f"oracle bench: the {case} case answered code {result.code}, not {EXPECTED[case]}")

    rng = random.Random(0)
    schedule = []
    for i in range(WARMUP_ROUNDS + rounds):
        order = list(CASES)
        rng.shuffle(order)
        schedule += [(i, case, body(case, i)) for case in order]  # serialized before the clock starts
    latencies: dict[str, list[float]] = {case: [] for case in CASES}
    for i, case, request in schedule:
        start = time.perf_counter()
        calls[case].call("Detokenize", request)
        elapsed = time.perf_counter() - start
        if i >= WARMUP_ROUNDS:
            latencies[case].append(elapsed)
    out = {}
    for case in CASES:
        ordered = sorted(latencies[case])
        out[f"oracle_{case}_p50_us"] = ordered[len(ordered) // 2] * 1e6
        out[f"oracle_{case}_p99_us"] = ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)] * 1e6
    return out


def _tokens(raw: RawTokenCalls, subjects: int) -> tuple[list[str], list[str]]:
    """(live tokens, shredded tokens): one email each, collected for COLLECTED_FOR."""
    request = pb.TokenizeRequest(
        request_id="bench-oracle", purpose=COLLECTED_FOR, source="bench",
        records=[pb.Record(fields={"email": f"oracle{i}@example.org"}) for i in range(subjects)],
    )
    results = pb.TokenizeResponse.FromString(raw.call("Tokenize", request.SerializeToString())).results
    half = len(results) // 2
    doomed = [r.subject_id for r in results[half:]]
    raw.call("ShredSubjects", spb.ShredSubjectsRequest(subject_ids=doomed, reason="bench oracle").SerializeToString())
    return [r.tokens["email"] for r in results[:half]], [r.tokens["email"] for r in results[half:]]
