"""`pdv bench --prefill N[,M…]`: tokenize and detokenize with N values already stored.

The values are stored by the bench's own batched tokenize over gRPC (new subjects, five
fields each, batches of 1,000 records, as many calls in flight as the bench keeps), so they
are the rows PDV itself writes, in every index it keeps. At each size the bench then times
a batched tokenize of `--records` new records and a warm and cold batched detokenize of
what it just issued, beside the prefilled rows. Sizes count stored values (fields), the
measured calls' own rows included: each stage tops the database up to its size. Each figure
is the median of three measurements in a row (their rates are listed beside it).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

from pdv.v1 import token_pb2 as pb

from vault.cli.bench_records import detokenize_bodies, tokenize_bodies

PREFILL_BATCH = 1000
REPEATS = 3
FIELDS_PER_RECORD = 5

Timed = Callable[..., tuple[list[bytes], float, list[float]]]


def prefill_figures(raw, restart: Callable[[], None], timed: Timed, sizes: list[int], records: int, batch: int,
                    inflight: int, repeats: int = REPEATS) -> dict[str, float]:
    """Tokenize and detokenize figures (fields/s) at each stored size, keyed `prefill_<size>_…`:
    the median of `repeats` measurements one after another, each its own new records."""
    out: dict[str, float] = {}
    stored, next_record = 0, 0
    for size in sorted(sizes):
        want = max(0, size - stored) // FIELDS_PER_RECORD
        bodies = tokenize_bodies("prefill", next_record, next_record + want, PREFILL_BATCH)
        _, seconds, _ = timed(lambda body: raw.call("Tokenize", body), bodies, inflight)
        if want:
            out[f"prefill_{size}_store_fields_per_s"] = want * FIELDS_PER_RECORD / seconds
        next_record += want
        stored += want * FIELDS_PER_RECORD
        runs: dict[str, list[float]] = {"tokenize": [], "detokenize_cold": [], "detokenize_warm": []}
        for _ in range(repeats):
            measured = tokenize_bodies("measure", next_record, next_record + records, batch)
            replies, seconds, _ = timed(lambda body: raw.call("Tokenize", body), measured, inflight)
            runs["tokenize"].append(records * FIELDS_PER_RECORD / seconds)
            next_record += records
            stored += records * FIELDS_PER_RECORD
            tokenized = [pb.TokenizeResponse.FromString(r) for r in replies]
            restart()  # cold: an empty DEK cache in a fresh server
            one_per_subject = [(rec.tokens["email"], "email") for resp in tokenized for rec in resp.results]
            _, seconds, _ = timed(lambda body: raw.call("Detokenize", body), detokenize_bodies(one_per_subject, batch),
                                  inflight)
            runs["detokenize_cold"].append(len(one_per_subject) / seconds)
            pairs = [(t, f) for resp in tokenized for rec in resp.results for f, t in rec.tokens.items()]
            _, seconds, _ = timed(lambda body: raw.call("Detokenize", body), detokenize_bodies(pairs, batch), inflight)
            runs["detokenize_warm"].append(len(pairs) / seconds)
        for name, rates in runs.items():
            out[f"prefill_{size}_{name}_fields_per_s"] = statistics.median(rates)
            out[f"prefill_{size}_{name}_runs"] = ", ".join(f"{r:,.0f}" for r in rates)  # type: ignore[assignment]
    return out
