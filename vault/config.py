"""Settings: a TOML file, overridden by PDV_* environment variables, validated at start.

Nothing is read at import time; `load_settings()` does the I/O.
"""

from __future__ import annotations

import hashlib
import ipaddress
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from vault.domain import REQUEST_KINDS
from vault.errors import ConfigError


class ApiKey(BaseModel):
    """A principal and the SHA-256 (hex) of its API key. The key itself is never stored."""

    model_config = {"extra": "forbid"}
    principal: str = Field(min_length=1, max_length=200)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Settings(BaseSettings):
    """Every setting of the server. See README's configuration reference."""

    model_config = SettingsConfigDict(env_prefix="PDV_", extra="forbid", env_nested_delimiter="__")

    listen: str = "127.0.0.1:50051"
    database_url: str = "sqlite:///.pdv/pdv.db"
    # One address, or several (a list, or comma-separated) for an HA cluster: a call a node
    # cannot serve moves to the next, for up to vault_retry_seconds (vault/keys/failover.py).
    vault_addr: str | list[str] = "http://127.0.0.1:8200"
    vault_retry_seconds: float = Field(default=3.0, ge=0, le=300)
    vault_token: SecretStr | None = None
    vault_token_file: Path | None = None
    vault_timeout: float = Field(default=5.0, gt=0, le=60)
    # `pdv keys … --local` (KEK rotation) reads these. A server reads them only with
    # kek_admin_over_api: then AdminService may rotate, schedule and trim the KEK (and report
    # Vault's version metadata) with this token; off, those stay with `pdv keys … --local`.
    vault_admin_token: SecretStr | None = None
    vault_admin_token_file: Path | None = None
    kek_admin_over_api: bool = False
    # How long database backups are kept: old KEK versions are trimmed only this long after
    # they were superseded, since trimming makes every older backup unrecoverable.
    backup_horizon_days: float = Field(default=35.0, ge=0)
    vault_batch_size: int = Field(default=1000, ge=1, le=10_000)
    transit_mount: str = "transit"
    kek_name: str = "pdv-kek"
    catalog_path: Path | None = None
    tombstone_ledger: Path | None = None
    # The access-log chain: a Vault-signed checkpoint every N entries or T seconds, also
    # appended to this file (keep it off the database's disk and backups). N and T bound
    # what a crashed process's tail can lose unnoticed (README "Audit").
    audit_checkpoint_entries: int = Field(default=1_000, ge=1)
    audit_checkpoint_seconds: float = Field(default=1.0, gt=0)
    audit_checkpoint_file: Path | None = None
    # While the database is behind audit_checkpoint_file (restored, not yet reconciled), how
    # often the server looks again, to serve once `pdv restore reconcile` has run.
    restore_check_seconds: float = Field(default=5.0, gt=0, le=3600)
    # False says, explicitly, that this deployment keeps no checkpoint file: `pdv audit verify`
    # then checks the database alone. True (the default) with no file: verify refuses to run.
    audit_external_record: bool = True
    # The in-server disposal job: every N seconds (0 = off), one replica at a time.
    disposal_interval_seconds: float = Field(default=3600.0, ge=0)
    # Tokenize answers kept so a retry with the same request id gets the same tokens: how long.
    tokenize_answer_retention_seconds: float = Field(default=7 * 86400.0, gt=0)
    disposal_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Events to token holders (EventService): how long an event is kept for a holder to read
    # it (then purged; a holder whose cursor is older gets OUT_OF_RANGE), how often expired
    # ones are purged, and how often an open subscription looks for new events (committed by
    # any process or replica).
    event_retention_seconds: float = Field(default=14 * 86400.0, gt=0)
    event_purge_interval_seconds: float = Field(default=3600.0, gt=0)
    event_poll_seconds: float = Field(default=0.1, gt=0, le=60)
    # The in-server rewrap job: every N seconds (0 = off), one replica at a time, rewrap stored
    # keys below the KEK's latest version with the service token. On by default: a rotation
    # (scheduled in Vault, or by hand) should reach the stored keys without a second manual step.
    rewrap_interval_seconds: float = Field(default=3600.0, ge=0)
    admin_principals: list[str] = Field(default_factory=list)
    # Residents' privacy requests: days to answer one (per kind where overridden), and how
    # long a closed one is kept before disposal deletes it with its key.
    request_deadline_days: float = Field(default=30.0, gt=0, le=3650)
    request_deadline_days_by_kind: dict[str, float] = Field(default_factory=dict)
    request_retention_days: float = Field(default=1095.0, gt=0)
    # `pdv disclose` (read by the command, not the server): export columns that hold personal
    # data, refused unless every value in them is a PDV token; and column -> catalog field,
    # the columns whose values are sent as that field's tokens (format-preserving ones look
    # like values, so only a column named here is searched for them).
    disclosure_personal_columns: list[str] = Field(default_factory=list)
    disclosure_columns: dict[str, str] = Field(default_factory=dict)
    # The access policy (README "Policy file"). Required unless dev_policy, which grants
    # every data action to everyone (pdv dev and tests only).
    policy_path: Path | None = None
    dev_policy: bool = False
    # Per-principal token bucket over detokenize items and lookup queries; 0 turns it off.
    rate_limit_per_second: float = Field(default=0.0, ge=0)
    rate_limit_burst: float = Field(default=10_000.0, ge=1)
    api_keys: list[ApiKey] = Field(default_factory=list)
    # Refused authentications go to the access log at most this many a second (after the
    # burst); the rest are counted in one summary row a second. 0 writes every one.
    auth_refusals_per_second: float = Field(default=100.0, ge=0)
    auth_refusals_burst: float = Field(default=1000.0, ge=1)
    max_value_bytes: int = Field(default=64 * 1024, ge=1, le=16 * 1024 * 1024)
    max_batch_items: int = Field(default=10_000, ge=1, le=1_000_000)
    dek_max_encryptions: int = Field(default=1 << 20, ge=1, le=1 << 30)
    dek_cache_size: int = Field(default=100_000, ge=0)
    dek_cache_ttl_seconds: float = Field(default=300.0, gt=0)
    dek_spare_keys: int = Field(default=256, ge=0, le=100_000)
    max_workers: int = Field(default=16, ge=1, le=1024)
    processes: int = Field(default=1, ge=1, le=64)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # gRPC's own default, and what its clients accept unless told otherwise: a full batch
    # (max_batch_items fields of ~100-byte values, with names and framing) is ~1.5 MB.
    max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # Items (record fields, tokens, queries, subjects) of the calls worked on at once, across
    # the process (vault/services/runtime/budget.py): memory grows with items, not bytes. Two
    # full batches: 32 concurrent 10,000-item tokenizes peaked at ~800 MB with no budget.
    max_items_in_flight: int = Field(default=20_000, ge=1)
    # How long a call waits for its share of max_items_in_flight before RESOURCE_EXHAUSTED.
    items_wait_seconds: float = Field(default=30.0, ge=0)
    # Health (grpc.health.v1 and /ready): how often Vault and the database are probed.
    health_check_seconds: float = Field(default=5.0, gt=0, le=3600)
    # host:port of the Prometheus metrics and /ready HTTP server; None (the default) serves none.
    # With processes > 1, worker i serves on port + i.
    metrics_address: str | None = None
    # Server log lines: "text" (readable) or "json" (one JSON object a line); `--log-format` overrides it.
    log_format: Literal["text", "json"] = "text"
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    tls_principals: list[str] | None = None
    # A PEM CRL issued by the client CA; revoked client certificates are UNAUTHENTICATED.
    # Re-read with the policy (SIGHUP, `pdv policy reload`).
    tls_crl_file: Path | None = None

    @field_validator("listen")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("listen must be host:port")
        return value

    @field_validator("vault_addr")
    @classmethod
    def _vault_urls(cls, value: str | list[str]) -> str | list[str]:
        items = value.split(",") if isinstance(value, str) else value
        addresses = [a.strip() for a in items if a.strip()]
        if not addresses:
            raise ValueError("vault_addr names no address")
        for address in addresses:
            if not address.startswith(("http://", "https://")):
                raise ValueError("vault_addr: each address must start with http:// or https://")
        return value

    @field_validator("metrics_address")
    @classmethod
    def _metrics_host_and_port(cls, value: str | None) -> str | None:
        if value is None:
            return value
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            raise ValueError("metrics_address must be host:port")
        return value

    @field_validator("request_deadline_days_by_kind")
    @classmethod
    def _known_kinds(cls, value: dict[str, float]) -> dict[str, float]:
        for kind, days in value.items():
            if kind not in REQUEST_KINDS:
                raise ValueError(f"unknown request kind {kind!r} (known: {', '.join(REQUEST_KINDS)})")
            if not 0 < days <= 3650:
                raise ValueError(f"{kind}: the deadline must be more than 0 and at most 3650 days")
        return value

    def request_deadline(self, kind: str) -> float:
        """Days a request of `kind` has to be answered in."""
        return self.request_deadline_days_by_kind.get(kind, self.request_deadline_days)

    @model_validator(mode="after")
    def _tls_or_loopback(self) -> "Settings":
        files = (self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file)
        if any(f is not None for f in files) and not all(f is not None for f in files):
            raise ValueError("tls_cert_file, tls_key_file and tls_client_ca_file go together: set all three or none")
        if self.tls_principals is not None and not self.tls_enabled:
            raise ValueError("tls_principals needs TLS (tls_cert_file, tls_key_file, tls_client_ca_file)")
        if self.tls_crl_file is not None and not self.tls_enabled:
            raise ValueError("tls_crl_file needs TLS (tls_cert_file, tls_key_file, tls_client_ca_file)")
        if not self.tls_enabled and not is_loopback(self.listen):
            raise ValueError(
                "listen: plaintext gRPC is only allowed on a loopback address (127.0.0.1, [::1], localhost); "
                "set tls_cert_file, tls_key_file and tls_client_ca_file to listen elsewhere with mTLS"
            )
        return self

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None and self.tls_key_file is not None and self.tls_client_ca_file is not None

    @model_validator(mode="after")
    def _one_answer_on_the_external_record(self) -> "Settings":
        if not self.audit_external_record and self.audit_checkpoint_file is not None:
            raise ValueError("audit_external_record = false says there is no checkpoint file, "
                             "but audit_checkpoint_file is set: keep one of the two")
        return self

    @model_validator(mode="after")
    def _processes_need_a_port(self) -> "Settings":
        if self.processes > 1 and self.listen.rpartition(":")[2] == "0":
            raise ValueError("processes > 1 needs a fixed listen port (they share it with SO_REUSEPORT)")
        if self.processes > 1 and self.metrics_address is not None and self.metrics_address.rpartition(":")[2] == "0":
            raise ValueError("processes > 1 needs a fixed metrics_address port (worker i serves on port + i)")
        return self

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments, then the environment, then the file (passed in as _file_values).
        file_values = _FILE_VALUES.get(settings_cls, {})
        return init_settings, env_settings, InitSettingsSource(settings_cls, file_values)

    def vault_token_value(self) -> str:
        if self.vault_token is not None:
            return self.vault_token.get_secret_value()
        if self.vault_token_file is not None:
            try:
                return self.vault_token_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"vault_token_file {self.vault_token_file}: {exc.strerror}") from None
        raise ConfigError("no Vault token: set PDV_VAULT_TOKEN or vault_token_file")

    def vault_admin_token_value(self) -> str:
        if self.vault_admin_token is not None:
            return self.vault_admin_token.get_secret_value()
        if self.vault_admin_token_file is not None:
            try:
                return self.vault_admin_token_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"vault_admin_token_file {self.vault_admin_token_file}: {exc.strerror}") from None
        raise ConfigError("no Vault admin token: set PDV_VAULT_ADMIN_TOKEN or vault_admin_token_file")

    def principal_for_key(self) -> dict[str, str]:
        """SHA-256 hex of an API key → principal name."""
        return {entry.sha256: entry.principal for entry in self.api_keys}


_FILE_VALUES: dict[type, dict[str, Any]] = {}


def is_loopback(listen: str) -> bool:
    host = listen.rpartition(":")[0].strip("[]")
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read `path` (TOML) if given, apply PDV_* variables and `overrides`, validate everything.

    Raises ConfigError naming the file and the setting (or TOML line) at fault.
    """
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    _FILE_VALUES[Settings] = values
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path or 'settings'}: {problems}") from None
    finally:
        _FILE_VALUES.pop(Settings, None)
