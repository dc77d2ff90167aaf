"""Python's cyclic garbage collector, tuned for a long-running server.

A collection of the youngest generation runs every 700 container allocations by default,
and a tokenize allocates several per field (rows, tuples, dictionaries): measured with
per-stage timers, the collector took 7-10 µs of the ~56 µs a tokenized field cost the
server, 3-5 µs of a detokenized one, nearly all of it walking objects that are not garbage
(start-up's catalog, policy, modules and caches, and the batch being worked on).

So, once start-up is done: everything alive is frozen into a generation the collector
never walks (gc.freeze), and the youngest generation is collected every GEN0_THRESHOLD
allocations instead of 700. The data paths make almost no reference cycles (their garbage
is freed by reference counting the moment it is dropped), so the higher threshold delays
little garbage; what it delays is bounded by GEN0_THRESHOLD objects. The older generations
keep their default ratios. One cycle is common and large: a refused call's exception, its
traceback and the frames holding the call's request. An idle server allocates nothing, so
no collection would come; the server's trim after a large call (vault/api/decoding.py)
therefore collects before it trims.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000


def tune_collector() -> None:
    """Freeze what start-up made and collect the youngest generation less often (see above)."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
