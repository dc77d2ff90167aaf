"""`pdv bench` (filled in below the core)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure tokenize/detokenize/lookup throughput")
    p.set_defaults(run=lambda args: 0)
