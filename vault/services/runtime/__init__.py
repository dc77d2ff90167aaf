"""Runtime plumbing shared by the use cases: what bounds the work in flight.

- budget: the process-wide item budget (max_items_in_flight) calls wait for their share of.

May import vault.errors only; never grpc, hvac or SQLAlchemy. Group commit, the coalescer,
periodic jobs and rate limits move here in a later change (STYLE.md "The house as it grows").
"""
