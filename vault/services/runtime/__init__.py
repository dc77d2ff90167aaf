"""Runtime plumbing shared by the use cases: what bounds the work in flight.

- budget: the process-wide item budget (max_items_in_flight) calls wait for their share of.
- collector: the cyclic garbage collector's tuning for a long-running server (pdv serve).

May import vault.errors and the standard library only; never grpc, hvac or SQLAlchemy. Group commit, the coalescer,
periodic jobs and rate limits move here in a later change (STYLE.md "The house as it grows").
"""
