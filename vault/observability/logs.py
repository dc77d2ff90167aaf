"""Log formats: the readable text line, or JSON lines for a log pipeline.

JSON lines come from python-json-logger: a Formatter for the standard logging module that
every PDV module already logs through, so switching formats changes no call site (structlog
would have meant either rewriting them or running it as a stdlib formatter anyway). Each
record has timestamp, level, logger and message; the per-call record (logger pdv.rpc) adds
request_id, principal, method, code and duration_ms as fields of their own. What reaches a
log is the same in both formats: ids, names and outcomes, never a value, token or subject id.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def formatter(kind: LogFormat) -> logging.Formatter:
    if kind == "json":
        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    return logging.Formatter(TEXT_FORMAT)


def configure(kind: LogFormat, level: int = logging.INFO) -> None:
    """Send every log record to stderr in `kind`, replacing the root logger's handlers."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(kind))
    root.addHandler(handler)
    root.setLevel(level)
