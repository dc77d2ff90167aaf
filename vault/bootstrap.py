"""The composition root: builds the application from Settings. The only place that wires adapters."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from vault.catalog import Catalog, load_catalog
from vault.errors import ConfigError
from vault.policy import Policy, PolicyHolder, load_policy, open_policy
from vault.services.access import AccessControl
from vault.services.admin.access import AdminAccess
from vault.services.admin.keys import KeyOperations
from vault.services.admin.records import RecordOperations
from vault.services.admin.service import AdminService
from vault.services.consent import ConsentService
from vault.services.rate_limit import RateLimiter
from vault.services.runtime.budget import REFUSAL_REASON, ItemBudget
from vault.config import Settings
from vault.keys.transit_admin import TransitKeyAdmin
from vault.services.rewrap import RewrapService
from vault.services.rotation import RotationService
from vault.keys.provider import KeyProvider, Signer
from vault.keys.transit import TransitKeyProvider, TransitSigner, make_client, signing_key_name
from vault.services.audit import AuditChain, CheckpointFile
from vault.services.auth_log import ADMIT, OVERLOADED, RefusalLog
from vault.services.common import Limits
from vault.services.dek_rotation import DekRotationService
from vault.services.detokenize import DetokenizeService
from vault.services.domains.ledger import TokenLedger
from vault.services.domains.translate import TranslateService
from vault.services.events.delivery import EventDelivery
from vault.services.disposal import DisposalService
from vault.services.group_commit import GroupCommitter
from vault.services.index_keys import IndexKeys
from vault.services.locators import SequentialTokens
from vault.services.keyring import KeyRing
from vault.services.ledger import TombstoneLedger
from vault.services.lifecycle.replay import LedgerReplay
from vault.services.lifecycle.restore import ReconcileReport, RestoreGuard, Shortfall, reconcile, shortfalls
from vault.services.lookup import LookupService
from vault.services.rights.correction import CorrectionService
from vault.services.rights.disclosure import DisclosureService
from vault.services.rights.report import ReportService
from vault.services.rights.request_access import RequestAccess
from vault.services.rights.requests import RequestService
from vault.services.shred import ShredService
from vault.services.subject_access import SubjectAccess
from vault.services.tokenize import TokenizeService
from vault.storage import locators as locator_blocks
from vault.storage import migrate
from vault.storage.audit_log import AuditRepository
from vault.storage.engine import create_store_engine
from vault.storage.rotation import RotationRepository
from vault.storage.store import Store
from vault.observability.collectors import StateCollector
from vault.observability.health import HealthProber
from vault.observability.metrics import Metrics


log = logging.getLogger("pdv.bootstrap")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class App:
    """Everything a server or CLI command needs, built once."""

    settings: Settings
    store: Store
    keys: KeyProvider
    keyring: KeyRing
    catalog: Catalog
    tokenizer: TokenizeService
    detokenizer: DetokenizeService
    finder: LookupService
    access: AccessControl
    consent: ConsentService
    shredder: ShredService
    subject_access: SubjectAccess
    requests: RequestService
    corrections: CorrectionService
    disclosure: DisclosureService
    reports: ReportService
    audit: AuditChain | None = None
    refusals: RefusalLog | None = None
    committer: GroupCommitter | None = None
    replay: LedgerReplay | None = None  # the tombstone ledger's replay (run at start)
    restore_guard: RestoreGuard | None = None  # blocks personal data while the database is behind the checkpoints
    budget: ItemBudget | None = None  # max_items_in_flight, taken by the servicers
    metrics: Metrics | None = None  # recorded always; served over HTTP only with metrics_address
    state: StateCollector | None = None  # the scrape-time gauges; jobs register with it when started
    health: HealthProber | None = None  # Vault, the database and the restore guard, probed in the background
    translator: TranslateService | None = None  # TokenService.Translate (vault/services/domains)
    ledger: TokenLedger | None = None  # the token issuance ledger, read (holders of a subject)
    events: EventDelivery | None = None  # EventService: each principal's events to token holders

    def close(self) -> None:
        if self.health is not None:
            self.health.stop()
        if self.restore_guard is not None:
            self.restore_guard.stop()
        if self.refusals is not None:
            self.refusals.close()  # the last count of refusals over the log rate
        if self.audit is not None:
            self.audit.close()  # a last signed checkpoint of this process's chain
        self.keyring.clear()
        self.store.close()


def _vault_client(settings: Settings, admin: bool = False):  # an hvac.Client; only vault.keys imports hvac
    """An hvac client on every vault_addr with the service token, or the admin token (whose
    calls, rotations and trims, get at least 30 s)."""
    if admin:
        return make_client(settings.vault_addr, settings.vault_admin_token_value(),
                           timeout=max(settings.vault_timeout, 30.0), retry_seconds=settings.vault_retry_seconds)
    return make_client(settings.vault_addr, settings.vault_token_value(), timeout=settings.vault_timeout,
                       retry_seconds=settings.vault_retry_seconds)


def build_vault(settings: Settings, metrics: Metrics | None = None) -> tuple[KeyProvider, Signer]:
    client = _vault_client(settings)
    observe = metrics.vault_call if metrics is not None else None
    return (
        TransitKeyProvider(client, settings.transit_mount, settings.kek_name, batch_size=settings.vault_batch_size,
                           observe=observe),
        TransitSigner(client, settings.transit_mount, signing_key_name(settings.kek_name), observe=observe),
    )


def bootstrap(settings: Settings, clock: Callable[[], datetime] = utc_now) -> App:
    """Build the app; refuses an un-migrated database and an unusable Vault up front,
    re-applies the tombstone ledger so a database restored from an older copy serves no
    shredded data, and checks the database's audit chains against the checkpoint file: if
    it is behind (rolled back), `app.restore_guard.message` says so and the server serves no
    personal data until `pdv restore reconcile` (vault.services.lifecycle.restore).

    Raises:
        StoreUnavailable: database down or not migrated (the message says how to fix it).
        KeyUnavailable: Vault sealed, unreachable, or the token may not use the KEK.
        ConfigError: a setting or the catalog is invalid.
    """
    metrics = Metrics()
    store = Store(create_store_engine(settings.database_url, pool_size=settings.max_workers + 4))
    try:
        migrate.require_current(store.engine)
        keys, signer = build_vault(settings, metrics)
        keys.check()
        catalog = load_catalog(settings.catalog_path)
        policy = PolicyHolder(access_policy(settings, catalog), settings.policy_path, catalog)
        limits = Limits(settings.max_value_bytes, settings.max_batch_items, settings.dek_max_encryptions,
                        settings.max_message_bytes)
        keyring = KeyRing(keys, settings.dek_cache_size or 1, settings.dek_cache_ttl_seconds, settings.dek_spare_keys)
        index_keys = IndexKeys.load_or_create(store, keys, clock)
        audit = audit_chain(settings, store, index_keys, signer, clock)
        ledger = TombstoneLedger(settings.tombstone_ledger)
        shredder = ShredService(store, keyring, signer, catalog, limits, ledger, clock)
        disposer = DisposalService(store, keyring, shredder, catalog, index_keys, clock)
        replay = LedgerReplay(store, signer, ledger, clock, disposer.kept_of)
        replay.run()
        committer = GroupCommitter(store, on_batch=metrics.commit_batch)
        guard = RestoreGuard(AuditRepository(store), CheckpointFile(settings.audit_checkpoint_file), signer, committer,
                             clock, settings.restore_check_seconds)
        found = guard.check()
        if found:
            log.error("ROLLBACK DETECTED: %s", guard.message)
    except Exception:
        if "audit" in locals():
            audit.close(final_checkpoint=False)
        store.close()
        raise
    access = AccessControl(policy, catalog, clock, RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst))
    tokens = SequentialTokens(index_keys, lambda size: locator_blocks.reserve_block(store, size))
    refusals = RefusalLog(committer, clock, RateLimiter(settings.auth_refusals_per_second, settings.auth_refusals_burst))

    def over_budget(method: str, principal: str, items: int) -> None:
        refusals.record(method, REFUSAL_REASON, principal, OVERLOADED, action=ADMIT)

    budget = ItemBudget(settings.max_items_in_flight, settings.items_wait_seconds, over_budget, on_share=metrics.items)
    health = HealthProber({"vault": keys.check, "database": store.ping}, settings.health_check_seconds,
                          blocked=lambda: guard.message)
    state = StateCollector()
    for watch, source in ((state.watch_keyring, keyring), (state.watch_budget, budget), (state.watch_audit, audit),
                          (state.watch_health, health)):
        watch(source)
    metrics.registry.register(state)

    return App(
        settings=settings, store=store, keys=keys, keyring=keyring, catalog=catalog,
        tokenizer=TokenizeService(store, committer, keyring, index_keys, catalog, limits, clock, access, tokens),
        detokenizer=DetokenizeService(committer, keyring, catalog, limits, clock, access, tokens),
        finder=LookupService(committer, index_keys, catalog, limits, clock, access),
        translator=TranslateService(committer, keyring, index_keys, catalog, limits, clock, access, tokens),
        ledger=TokenLedger(store),
        events=EventDelivery(store, access, timedelta(seconds=settings.event_retention_seconds), clock),
        access=access, consent=ConsentService(store, catalog, clock),
        shredder=shredder, subject_access=SubjectAccess(access, settings.admin_principals, store, catalog, limits, clock),
        corrections=CorrectionService(store, keyring, index_keys, catalog, limits, clock),
        disclosure=DisclosureService(committer, keyring, catalog, limits, clock, access, tokens),
        reports=ReportService(store, AuditRepository(store), keyring, index_keys, catalog, access, signer,
                              CheckpointFile(settings.audit_checkpoint_file), clock, limits.max_answer_bytes,
                              audit.checkpoint),
        audit=audit,
        refusals=refusals,
        budget=budget, metrics=metrics, state=state, health=health,
        requests=RequestService(
            store, keyring, RequestAccess(access, settings.admin_principals, store, clock), limits,
            settings.request_deadline, timedelta(days=settings.request_retention_days), clock),
        committer=committer, replay=replay, restore_guard=guard,
    )


def audit_chain(
    settings: Settings, store: Store, index_keys: IndexKeys, signer: Signer, clock: Callable[[], datetime]
) -> AuditChain:
    """This process's access-log chain, registered and checkpointing; every later log row is chained."""
    if settings.audit_checkpoint_file is None and settings.audit_external_record:
        log.warning("no audit_checkpoint_file: the access log is anchored in the database only, so a tail cut "
                    "with its checkpoints goes unnoticed; set one, or audit_external_record = false to say so")
    chain = AuditChain(
        index_keys.audit_key, AuditRepository(store), signer, CheckpointFile(settings.audit_checkpoint_file), clock,
        settings.audit_checkpoint_entries, settings.audit_checkpoint_seconds,
    )
    chain.start()
    store.attach_chain(chain)
    return chain


@contextmanager
def audit_tools(settings: Settings) -> Iterator[tuple[AuditRepository, bytes | None, Signer, CheckpointFile]]:
    """For `pdv audit …`: the log's repository, the chain key (None if no root exists yet), the
    signer that checks checkpoints, and the checkpoint file. Reads only; needs the service token.

    Raises:
        StoreUnavailable, KeyUnavailable, ConfigError: as for bootstrap.
    """
    store = Store(create_store_engine(settings.database_url, pool_size=4))
    try:
        migrate.require_current(store.engine)
        keys, signer = build_vault(settings)
        index_keys = IndexKeys.load(store, keys)
        key = index_keys.audit_key if index_keys is not None else None
        yield AuditRepository(store), key, signer, CheckpointFile(settings.audit_checkpoint_file)
    finally:
        store.close()


def verify_sink(settings: Settings) -> CheckpointFile:
    """The checkpoint file `pdv audit verify` must check (path None: no external record, said explicitly).

    Raises:
        ConfigError: no audit_checkpoint_file, and audit_external_record not set to false.
    """
    if settings.audit_checkpoint_file is None and settings.audit_external_record:
        raise ConfigError("audit_checkpoint_file is not set: verify cannot check the record kept outside the "
                          "database; set it, or set audit_external_record = false if this deployment keeps none")
    return CheckpointFile(settings.audit_checkpoint_file)


def access_policy(settings: Settings, catalog: Catalog) -> Policy:
    """The policy file named by policy_path, or the open development policy when dev_policy
    is set; with neither, a ConfigError: a server never starts without a policy by accident."""
    if settings.policy_path is not None:
        policy = load_policy(settings.policy_path, catalog)
        for warning in policy.warnings:
            log.warning("%s", warning)
        return policy
    if settings.dev_policy:
        log.warning("dev_policy: every principal may tokenize, read and look up everything; never use this in production")
        return open_policy(catalog)
    raise ConfigError("no access policy: set policy_path (check it with `pdv policy check FILE`), "
                      "or dev_policy = true for local development only")


@contextmanager
def rotation_service(settings: Settings, clock: Callable[[], datetime] = utc_now) -> Iterator[RotationService]:
    """The KEK rotation use case for `pdv keys …`, on the admin token; closes the database after.

    Raises:
        ConfigError: no admin token configured.
        StoreUnavailable: database down or not migrated.
    """
    admin_client = _vault_client(settings, admin=True)
    store = Store(create_store_engine(settings.database_url, pool_size=4))
    try:
        migrate.require_current(store.engine)
        admin = TransitKeyAdmin(admin_client, settings.transit_mount, settings.kek_name, batch_size=min(settings.vault_batch_size, 1000))
        yield RotationService(RotationRepository(store), admin, clock, timedelta(days=settings.backup_horizon_days))
    finally:
        store.close()


def disposal_service(app: App) -> DisposalService:
    """Retention disposal on the app's store, keys and shred path (for `pdv dispose` and the
    scheduled job); unwraps the index root once more for de-identification's pseudonyms."""
    clock = app.shredder.clock
    index_keys = IndexKeys.load_or_create(app.store, app.keys, clock)
    return DisposalService(app.store, app.keyring, app.shredder, app.catalog, index_keys, clock,
                           app.settings.disposal_batch_size,
                           timedelta(seconds=app.settings.tokenize_answer_retention_seconds),
                           app.requests.dispose_closed)


def rewrap_service(app: App) -> RewrapService:
    """Rewrap with the service token (which may rewrap with the KEK, not rotate or trim it), for
    the in-server rewrap job: one chunk in flight, so request traffic keeps its share."""
    settings = app.settings
    client = _vault_client(settings)
    keys = TransitKeyProvider(client, settings.transit_mount, settings.kek_name, batch_size=min(settings.vault_batch_size, 1000),
                              observe=app.metrics.vault_call if app.metrics is not None else None)
    return RewrapService(RotationRepository(app.store), keys, batch_size=min(settings.vault_batch_size, 1000), workers=1)


def dek_rotation_service(app: App) -> DekRotationService:
    """On-demand DEK rotation (`pdv keys rotate-dek`): the service token suffices (wrap, unwrap)."""
    return DekRotationService(app.store, app.keyring, app.shredder.clock)


def admin_service(app: App) -> AdminService:
    """AdminService on the app: the service token for key status, rewrap and DEK rotation; the
    admin token too (rotate, schedule, trim) only with kek_admin_over_api (vault.services.admin.keys).

    Raises:
        ConfigError: kek_admin_over_api without an admin token.
    """
    settings, clock = app.settings, app.shredder.clock
    rotation = None
    if settings.kek_admin_over_api:
        admin_client = _vault_client(settings, admin=True)
        admin = TransitKeyAdmin(admin_client, settings.transit_mount, settings.kek_name,
                                batch_size=min(settings.vault_batch_size, 1000))
        rotation = RotationService(RotationRepository(app.store), admin, clock,
                                   timedelta(days=settings.backup_horizon_days))
    client = _vault_client(settings)
    service_keys = TransitKeyProvider(client, settings.transit_mount, settings.kek_name,
                                      batch_size=min(settings.vault_batch_size, 1000),
                                      observe=app.metrics.vault_call if app.metrics is not None else None)
    keys = KeyOperations(app.store, service_keys, rotation, dek_rotation_service(app),
                         timedelta(days=settings.backup_horizon_days), settings.vault_batch_size)

    def audit_key() -> bytes | None:
        index_keys = IndexKeys.load(app.store, app.keys)
        return index_keys.audit_key if index_keys is not None else None

    records = RecordOperations(
        app.store, lambda: disposal_service(app), app.catalog, app.access.holder, app.shredder.signer, audit_key,
        lambda: verify_sink(settings), clock, settings.processes)
    access = AdminAccess(app.access, settings.admin_principals, app.store, app.catalog, clock)
    return AdminService(access, keys, records)


def reconcile_restore(app: App, actor: str, reason: str) -> ReconcileReport:
    """`pdv restore reconcile` on a bootstrapped app (vault.services.lifecycle.restore.reconcile)."""
    assert app.replay is not None and app.audit is not None and app.committer is not None
    return reconcile(app.replay, app.audit, AuditRepository(app.store), CheckpointFile(app.settings.audit_checkpoint_file),
                     app.shredder.signer, app.committer, app.shredder.clock, actor, reason)


def restore_status(settings: Settings) -> list[Shortfall] | None:
    """For `pdv restore status`: the chains the database is behind the checkpoint file on
    (None: no audit_checkpoint_file configured). Reads only; changes nothing.

    Raises:
        StoreUnavailable, KeyUnavailable, ConfigError: as for bootstrap.
    """
    with audit_tools(settings) as (repo, _key, signer, sink):
        lines = sink.read_all(skip_malformed=True)
        return None if lines is None else shortfalls(repo.chain_heads(), lines, signer)
