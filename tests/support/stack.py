"""A real PDV stack for end-to-end tests: OpenBao, a database, a gRPC server on port 0, a client."""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pdv_client import PdvClient

from tests.support.databases import database, migrate_url, templates

from vault.api.server import PdvServer, create_server
from vault.bootstrap import App, bootstrap, utc_now
from vault.config import ApiKey, Settings, hash_api_key, load_settings
from vault.keys.openbao import OpenBaoServer, create_service_token, provision_transit
from vault.observability.logs import formatter as log_formatter

PRINCIPAL = "intake-311"


def service_token(bao: OpenBaoServer, mount: str = "transit", key: str = "pdv-kek") -> str:
    """Provision Transit and return a token holding only the least-privilege service policy."""
    admin = bao.client()
    provision_transit(admin, mount, key)
    return create_service_token(admin, mount, key)


@dataclass
class Stack:
    settings: Settings
    app: App
    server: PdvServer
    api_key: str
    log: io.StringIO
    clients: list[PdvClient] = field(default_factory=list)
    json_log: io.StringIO = field(default_factory=io.StringIO)  # the same records, as `log_format = "json"` writes them

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def client(self, api_key: str | None = None, **kwargs: Any) -> PdvClient:
        kwargs.setdefault("options", [("grpc.use_local_subchannel_pool", 1)])
        c = PdvClient(self.target, api_key=self.api_key if api_key is None else api_key, **kwargs)
        self.clients.append(c)
        return c

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        self.server.stop(grace=1)
        self.app.close()


class _LogCapture:
    """Everything the server logs, formatted as an operator would see it: as text, and as JSON lines."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self.json_buffer = io.StringIO()
        self.handler = logging.StreamHandler(self.buffer)
        self.handler.setFormatter(log_formatter("text"))
        self.json_handler = logging.StreamHandler(self.json_buffer)
        self.json_handler.setFormatter(log_formatter("json"))

    def __enter__(self) -> io.StringIO:
        logging.getLogger().addHandler(self.handler)
        logging.getLogger().addHandler(self.json_handler)
        logging.getLogger().setLevel(logging.DEBUG)
        return self.buffer

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self.handler)
        logging.getLogger().removeHandler(self.json_handler)


def start_stack(
    bao: OpenBaoServer, database_url: str, token: str, migrate_first: bool = True,
    clock: Callable[[], datetime] = utc_now, **overrides: Any,
) -> Stack:
    """Migrate (optionally: a database fresh from the template already is), bootstrap and serve on
    127.0.0.1:0 with one API-key principal.
    `clock` is the server's: a clock in the past collects values that have expired by now."""
    if migrate_first and not templates.untouched_copy(database_url):
        migrate_url(database_url)
    api_key = "pdvk_" + secrets.token_urlsafe(24)
    settings = load_settings(
        listen=overrides.pop("listen", "127.0.0.1:0"),  # a fixed port lets a client reconnect across a restart
        database_url=database_url,
        vault_token=token,
        vault_timeout=2.0,
        # More principals (`api_keys=[ApiKey(...)]`) are added to the stack's own.
        api_keys=[ApiKey(principal=PRINCIPAL, sha256=hash_api_key(api_key)), *overrides.pop("api_keys", [])],
        # No checkpoint file unless a test gives one, and said so (see audit_external_record).
        # vault_addr may name more nodes than `bao` (tests of failing over); one retry second
        # keeps the tests of a dead Vault quick.
        **{"vault_addr": bao.addr, "vault_retry_seconds": 1.0, "dev_policy": True,
           "audit_external_record": "audit_checkpoint_file" in overrides, **overrides},
    )
    capture = _LogCapture()
    log = capture.__enter__()
    app = bootstrap(settings, clock)
    server = create_server(app)
    stack = Stack(settings, app, server, api_key, log, json_log=capture.json_buffer)
    original_stop = stack.stop

    def stop() -> None:
        original_stop()
        capture.__exit__()

    stack.stop = stop  # type: ignore[method-assign]
    return stack


@contextmanager
def stack_with_policy(
    bao: OpenBaoServer, token: str, kind: str, tmp_path: Path, policy_path: Path, principals: Iterable[str],
    **overrides: Any,
) -> Iterator[tuple[Stack, dict[str, str]]]:
    """A stack on a fresh database of `kind` serving the policy file `policy_path`, with an
    API key of its own for each of `principals`: yields the stack and principal → key (the
    stack's own principal included)."""
    keys = {p: "pdvk_" + secrets.token_urlsafe(24) for p in principals if p != PRINCIPAL}
    with database(kind, tmp_path) as url:
        stack = start_stack(
            bao, url, token, dev_policy=False, policy_path=policy_path,
            api_keys=[ApiKey(principal=p, sha256=hash_api_key(k)) for p, k in keys.items()], **overrides,
        )
        keys[PRINCIPAL] = stack.api_key
        try:
            yield stack, keys
        finally:
            stack.stop()
