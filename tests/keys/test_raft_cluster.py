"""`pdv bench ha`'s Raft nodes are deploy/openbao/raft's configs moved onto loopback: the
rendering keeps every setting the deploy files make and swaps only the production specifics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vault.errors import ConfigError
from vault.keys.openbao import LISTENER_LIMITS
from vault.keys.raft_cluster import RaftNode, render_node_config

RAFT_DIR = Path(__file__).resolve().parents[2] / "deploy" / "openbao" / "raft"


def nodes(tmp_path: Path) -> list[RaftNode]:
    return [RaftNode(f"bao-{i}", tmp_path / f"bao-{i}", 18200 + i, 18300 + i) for i in (1, 2, 3)]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_each_deploy_node_config_renders_onto_loopback(tmp_path, index):
    cluster = nodes(tmp_path)
    node, peers = cluster[index], [n for n in cluster if n is not cluster[index]]
    text = render_node_config((RAFT_DIR / f"{node.name}.hcl").read_text(), node, peers)

    assert f'node_id = "{node.name}"' in text
    assert f'path = "{node.data_dir / "raft"}"' in text
    assert f'address = "127.0.0.1:{node.port}"' in text
    assert f'cluster_address = "127.0.0.1:{node.cluster_port}"' in text
    assert f'api_addr = "{node.addr}"' in text
    assert sorted(re.findall(r'leader_api_addr = "([^"]+)"', text)) == sorted(p.addr for p in peers)
    assert "tls_disable = true" in text and "tls_cert_file" not in text and "leader_ca_cert_file" not in text
    settings = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert ".internal" not in settings and "/etc/openbao" not in settings
    for name, value in LISTENER_LIMITS.items():  # PDV's batches still fit
        assert re.search(rf"{name}\s*=\s*{value}\b", text), name


def test_a_template_of_another_shape_is_refused(tmp_path):
    cluster = nodes(tmp_path)
    with pytest.raises(ConfigError, match="no match"):
        render_node_config('storage "raft" {}\n', cluster[0], cluster[1:])
