"""Dependency direction (STYLE.md): which layer may import which library, checked on the source.

Two independent checks of the same rules: a plain AST walk over vault/ and migrations/
(which also catches imports inside functions and how crypto uses `os`), and the
import-linter contracts in pyproject.toml.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

GRPC = ("grpc", "grpc_health", "grpc_reflection", "grpc_status")
DATABASE = ("sqlalchemy", "alembic", "psycopg", "psycopg2", "sqlite3")
# What "pure" means for vault/crypto: no network, files, processes, databases, Vault, clocks or logs.
CRYPTO_FORBIDDEN = (
    "socket", "ssl", "requests", "urllib", "http", "subprocess", "shutil", "tempfile", "pathlib", "io",
    "logging", "time", "datetime", "importlib", "hvac", *DATABASE, *GRPC,
    "vault.keys", "vault.storage", "vault.services", "vault.api", "vault.cli", "vault.bootstrap", "vault.config",
)


@dataclass(frozen=True)
class Import:
    path: str  # relative to the repository, with forward slashes
    module: str  # the imported module, absolute
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.module}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_of(path: Path) -> list[Import]:
    rel = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text(), filename=rel)
    out = []
    for node in ast.walk(tree):  # every import, including those inside functions
        if isinstance(node, ast.Import):
            out += [Import(rel, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _module_name(path).split(".")
                if path.name != "__init__.py":
                    package = package[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            out.append(Import(rel, base, node.lineno))
            # `from vault import storage` imports vault.storage.
            out += [Import(rel, f"{base}.{alias.name}", node.lineno) for alias in node.names if alias.name != "*"]
    return out


@cache
def _all_imports() -> tuple[Import, ...]:
    files = sorted((ROOT / "vault").rglob("*.py")) + sorted((ROOT / "migrations").rglob("*.py"))
    return tuple(i for f in files for i in _imports_of(f))


def _is(module: str, names: tuple[str, ...]) -> bool:
    return any(module == n or module.startswith(n + ".") for n in names)


def _offenders(names: tuple[str, ...], allowed_dirs: tuple[str, ...]) -> list[str]:
    return [
        str(i) for i in _all_imports()
        if _is(i.module, names) and not i.path.startswith(allowed_dirs)
    ]


def test_the_scan_sees_the_imports_it_checks() -> None:
    # Guards against a walker that silently finds nothing.
    found = {(i.path, i.module) for i in _all_imports()}
    assert ("vault/keys/transit.py", "hvac") in found
    assert ("vault/storage/store.py", "sqlalchemy") in found
    assert ("vault/api/status.py", "grpc") in found
    assert ("migrations/versions/0001_core.py", "alembic") in found
    assert ("vault/crypto/aead.py", "vault.errors") in found


def test_only_keys_imports_hvac() -> None:
    assert _offenders(("hvac",), ("vault/keys/",)) == []


def test_only_storage_and_migrations_import_database_libraries() -> None:
    assert _offenders(DATABASE, ("vault/storage/", "migrations/")) == []


def test_only_api_imports_grpc() -> None:
    assert _offenders(GRPC, ("vault/api/",)) == []


def test_only_cli_imports_the_python_client() -> None:
    assert _offenders(("pdv_client",), ("vault/cli/",)) == []


def test_services_never_import_adapters_libraries() -> None:
    services = [i for i in _all_imports() if i.path.startswith("vault/services/")]
    assert services, "no service module found"
    assert [str(i) for i in services if _is(i.module, ("grpc", "hvac", "sqlalchemy", "alembic", "psycopg"))] == []


def test_crypto_imports_no_io_module() -> None:
    crypto = [i for i in _all_imports() if i.path.startswith("vault/crypto/")]
    assert crypto, "no crypto module found"
    assert [str(i) for i in crypto if _is(i.module, CRYPTO_FORBIDDEN)] == []


def _os_misuse(source: str, rel: str) -> list[str]:
    """Any use of `os` in a crypto module other than `os.urandom`."""
    tree = ast.parse(source, filename=rel)
    urandom_values = {
        id(node.value) for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "urandom" and isinstance(node.value, ast.Name)
    }
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [f"{rel}:{node.lineno} import {a.name} as {a.asname}"
                         for a in node.names if _is(a.name, ("os",)) and (a.name != "os" or a.asname)]
        elif isinstance(node, ast.ImportFrom) and node.module and _is(node.module, ("os",)):
            problems += [f"{rel}:{node.lineno} from {node.module} import {a.name}"
                         for a in node.names if node.module != "os" or a.name != "urandom"]
        elif isinstance(node, ast.Name) and node.id == "os" and id(node) not in urandom_values:
            problems.append(f"{rel}:{node.lineno} uses os other than os.urandom")
        elif isinstance(node, ast.Name) and node.id == "__import__":
            problems.append(f"{rel}:{node.lineno} calls __import__")
    return problems


def test_crypto_uses_os_only_for_urandom() -> None:
    files = sorted((ROOT / "vault" / "crypto").rglob("*.py"))
    assert files
    assert [p for f in files for p in _os_misuse(f.read_text(), f.relative_to(ROOT).as_posix())] == []


@pytest.mark.parametrize(
    ("source", "problems"),
    [
        ("import os\nkey = os.urandom(32)\n", 0),
        ("from os import urandom\nkey = urandom(32)\n", 0),
        ("import os\nos.environ['X']\n", 1),
        ("import os\nf = os.open('x', 0)\n", 1),
        ("import os\ngetattr(os, 'system')\n", 1),
        ("import os as o\n", 1),
        ("from os import path\n", 1),
        ("import os.path\n", 1),
        ("m = __import__('os')\n", 1),
    ],
)
def test_the_os_check_catches_misuse(source: str, problems: int) -> None:
    assert len(_os_misuse(source, "probe.py")) == problems


def test_import_linter_contracts_pass() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    if not lint_imports.exists():
        pytest.fail(f"{lint_imports} is missing; install the dev extra (import-linter)", pytrace=False)
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert "Contracts:" in result.stdout, result.stdout + result.stderr
    assert "0 broken" in result.stdout and result.returncode == 0, result.stdout + result.stderr


def test_observability_imports_no_layer_of_pdv() -> None:
    watched = [i for i in _all_imports() if i.path.startswith("vault/observability/")]
    assert watched, "no observability module found"
    layers = ("vault.keys", "vault.storage", "vault.services", "vault.api", "vault.cli", "vault.bootstrap", "vault.config")
    assert [str(i) for i in watched if _is(i.module, (*GRPC, *DATABASE, "hvac", *layers))] == []
