"""One hvac adapter over several Vault / OpenBao addresses: PDV follows a leader change.

Each call goes first to the address that answered last. When a node cannot serve it — the
connection fails or times out, or the node answers 5xx (sealed, standby without an active
node, election under way) — the call moves to the next address, round the list and again,
until `retry_seconds` have passed since the call began; then the last error is raised as
it would have been with one address, and vault/keys/transit.py turns it into KeyUnavailable
(gRPC UNAVAILABLE). A standby's 307 redirect to the active node is followed by requests itself
(`allow_redirects`; 307 keeps the method and the body).

A request whose answer was lost (read timeout, connection dropped mid-answer) or that failed
with 500 / 502 may have been carried out in part. It is sent again only if repeating it is
harmless: reads, and Transit's encrypt, decrypt, rewrap, sign, verify and hmac. Anything else
(rotate a key, write a policy) moves on only when the node surely did not act on it: the
connection was never made, or the node answered sealed (503) or not initialised (501).

OpenBao's standbys answer Transit calls themselves (they hold the keyring), even while no
leader is elected, so a killed leader costs PDV one refused connection per call in flight.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any, Sequence

import hvac.exceptions
import requests
import urllib3.exceptions
from hvac.adapters import JSONAdapter

# Answers from a node that did not act on the request: sealed (503), not initialised (501).
_REFUSED_UNTOUCHED = (hvac.exceptions.VaultDown, hvac.exceptions.VaultNotInitialized)
# Answers that say this node could not serve now, though it may have begun to: 500 (a standby
# whose active node is gone, storage without quorum), 502.
_NODE_FAILED = (hvac.exceptions.InternalServerError, hvac.exceptions.BadGateway)
_TRANSPORT = (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
              requests.exceptions.ChunkedEncodingError)
# /v1/<mount>/<operation>/<key>; never a key-management path (/v1/<mount>/keys/<key>/rotate),
# whatever the key is called.
_REPEATABLE_PATH = re.compile(r"^/v1/(?!(?:.+/)?keys/).+/(encrypt|decrypt|rewrap|sign|verify|hmac)/[^/]+/?$")
_REPEATABLE_METHODS = frozenset({"get", "list", "head"})
# Pauses between rounds over every address, growing to the last (a Raft election takes seconds).
_BACKOFF = (0.05, 0.1, 0.2, 0.4, 0.5)
# A retry near the deadline still gets this long to connect and answer.
_MIN_ATTEMPT_SECONDS = 0.5


def parse_addresses(value: str | Sequence[str]) -> list[str]:
    """Vault addresses from a list or a comma-separated string; blanks dropped, order kept."""
    items = value.split(",") if isinstance(value, str) else list(value)
    addresses = [a.strip().rstrip("/") for a in items if a and a.strip()]
    if not addresses:
        raise ValueError("vault_addr names no address")
    return addresses


class FailoverAdapter(JSONAdapter):
    """hvac's JSONAdapter, sending each call to the first of `addresses` that can serve it."""

    def __init__(self, addresses: Sequence[str], retry_seconds: float, **kwargs: Any) -> None:
        self._addresses = list(addresses)
        if not self._addresses:
            raise ValueError("FailoverAdapter needs at least one address")
        self._retry_seconds = retry_seconds
        self._timeout = float(kwargs.get("timeout", 30))
        self._preferred = 0  # index of the address that answered last; a plain int, set atomically
        self._local = threading.local()
        kwargs.pop("base_uri", None)  # hvac.Client passes its url: the first address
        super().__init__(base_uri=self._addresses[0], **kwargs)

    # RawAdapter.request joins self.base_uri with the path: each thread sees the address it is
    # trying now, so concurrent calls can be on different nodes without a lock.
    @property  # type: ignore[override]
    def base_uri(self) -> str:
        return getattr(self._local, "address", None) or self._addresses[self._preferred]

    @base_uri.setter
    def base_uri(self, value: str) -> None:
        # hvac's constructor and Client.url set it: that address becomes the only one.
        if hasattr(self, "_local") and value.rstrip("/") not in self._addresses:
            self._addresses, self._preferred = [value.rstrip("/")], 0

    @property
    def addresses(self) -> list[str]:
        return list(self._addresses)

    def request(self, method: str, url: str, headers: dict[str, str] | None = None,
                raise_exception: bool = True, **kwargs: Any) -> Any:
        """Send to the preferred address, then to the others in turn until one serves the call
        or `retry_seconds` have passed since it began; a retry's timeout is cut to what is
        left (at least _MIN_ATTEMPT_SECONDS), so a call takes at most about
        max(timeout, retry_seconds) + _MIN_ATTEMPT_SECONDS."""
        repeatable = method.lower() in _REPEATABLE_METHODS or bool(_REPEATABLE_PATH.search(url))
        deadline = time.monotonic() + self._retry_seconds
        start, attempt = self._preferred, 0
        while True:
            index = (start + attempt) % len(self._addresses)
            if attempt:
                kwargs["timeout"] = max(_MIN_ATTEMPT_SECONDS, min(self._timeout, deadline - time.monotonic()))
            self._local.address = self._addresses[index]
            try:
                response = super().request(method, url, headers=dict(headers or {}),
                                           raise_exception=raise_exception, **kwargs)
            except Exception as error:  # noqa: BLE001 - re-raised unless another attempt may serve it
                attempt += 1
                if not _worth_another_node(error, repeatable) or time.monotonic() >= deadline:
                    raise
                if attempt % len(self._addresses) == 0:  # a round over every address: pause
                    pause = _BACKOFF[min(attempt // len(self._addresses) - 1, len(_BACKOFF) - 1)]
                    time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
                continue
            finally:
                self._local.address = None
            self._preferred = index
            return response


def _worth_another_node(error: Exception, repeatable: bool) -> bool:
    """True if another address may serve the request and sending it again is safe."""
    if isinstance(error, _REFUSED_UNTOUCHED):
        return True
    if not isinstance(error, (*_NODE_FAILED, *_TRANSPORT)):
        return False
    return repeatable or _never_sent(error)


def _never_sent(error: BaseException) -> bool:
    """True if the connection itself failed, so the node never saw the request."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, urllib3.exceptions.NewConnectionError):
            return True
        reason = getattr(current, "reason", None)
        nested = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        current = reason if isinstance(reason, BaseException) else nested or current.__cause__
    return False
