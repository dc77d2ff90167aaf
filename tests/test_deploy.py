"""deploy/ cannot silently rot: the Kubernetes manifests validate against the Kubernetes
schemas (kubernetes-validate, strict) and hold what a platform team relies on; the server
config they ship loads; the OpenBao Raft files describe one 3-node cluster with PDV's
listener limits; the provisioning script gives a token that can do what PDV needs and no more.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import kubernetes_validate
import pytest
import yaml

from vault.catalog import load_catalog
from vault.config import is_loopback, load_settings
from vault.keys.openbao import LISTENER_LIMITS, OpenBaoServer, find_bao_binary
from vault.policy import load_policy

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
K8S = DEPLOY / "kubernetes"
# The oldest Kubernetes the manifests are written for (preStop `sleep` is GA from 1.30 on).
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]


def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in manifests() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (c,) = workload["spec"]["template"]["spec"]["containers"]
    return c


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schema(version: str) -> None:
    docs = manifests()
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:  # type: ignore[attr-defined]
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} (Kubernetes {version}): {exc.message}")


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert all(d["metadata"].get("namespace", kustomization["namespace"]) == "pdv"
               for d in manifests() if d["kind"] != "Namespace")


def test_deployment_runs_several_replicas_that_drain_and_report_grpc_health_over_mtls() -> None:
    deployment = one("Deployment", "pdv")
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    c = container(deployment)
    assert c["args"][:1] == ["serve"]
    readiness = c["readinessProbe"]["exec"]["command"]
    assert readiness[0] == "grpc-health-probe" and "-tls" in readiness
    assert any(a.startswith("-tls-client-cert=") for a in readiness)
    liveness = " ".join(c["livenessProbe"]["exec"]["command"])
    assert "grpc-health-probe" in liveness and '"$rc" -eq 4' in liveness  # NOT_SERVING is alive
    assert c["startupProbe"]["exec"]["command"] == c["livenessProbe"]["exec"]["command"]
    settings = shipped_settings()
    drain = settings.shutdown_grace_seconds + c["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > drain
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"


def test_every_file_the_server_and_probe_read_is_mounted_from_a_shipped_secret_or_configmap() -> None:
    deployment = one("Deployment", "pdv")
    pod, c = deployment["spec"]["template"]["spec"], container(deployment)
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounted: dict[str, tuple[str, str]] = {}  # file path -> (kind, object name)
    for mount in c["volumeMounts"]:
        volume = volumes[mount["name"]]
        for kind, key, name_key in (("Secret", "secret", "secretName"), ("ConfigMap", "configMap", "name")):
            if key in volume:
                obj = one(kind, volume[key][name_key])
                items = volume[key].get("items") or [{"key": k, "path": k} for k in
                                                      {**obj.get("data", {}), **obj.get("stringData", {})}]
                for item in items:
                    assert item["key"] in {**obj.get("data", {}), **obj.get("stringData", {})}, item
                    mounted[f"{mount['mountPath']}/{item['path']}"] = (kind, obj["metadata"]["name"])
        if "persistentVolumeClaim" in volume:
            claim = one("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
            assert "ReadWriteMany" in claim["spec"]["accessModes"]  # shared by every replica
    settings = shipped_settings()
    for path in (settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file, settings.tls_crl_file,
                 settings.policy_path):
        assert str(path) in mounted, path
    assert mounted[str(settings.vault_token_file)] == ("Secret", "pdv-vault-token")
    assert mounted[str(settings.tls_key_file)][0] == "Secret"
    probe_files = [a.split("=", 1)[1] for a in c["readinessProbe"]["exec"]["command"] if a.startswith("-tls-")
                   and "=" in a and a.split("=", 1)[1].startswith("/")]
    assert len(probe_files) == 3 and all(mounted[p][0] == "Secret" for p in probe_files)
    env = {e["name"]: e for e in c["env"]}
    assert mounted[env["REQUESTS_CA_BUNDLE"]["value"]][0] == "Secret"
    assert env["PDV_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "pdv-database"
    # The files outside the database live on the shared volume, not in the container.
    records = next(m["mountPath"] for m in c["volumeMounts"] if "persistentVolumeClaim" in volumes[m["name"]])
    for path in (settings.audit_checkpoint_file, settings.tombstone_ledger):
        assert path is not None and str(path).startswith(records + "/")


def shipped_settings() -> Any:
    """The ConfigMap's pdv.toml, loaded and validated as the server would."""
    config = one("ConfigMap", "pdv-config")["data"]["pdv.toml"]
    env = os.environ.copy()
    os.environ.clear()
    os.environ["PDV_DATABASE_URL"] = "postgresql://pdv@db.example/pdv"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "pdv.toml"
            path.write_text(config, encoding="utf-8")
            return load_settings(path)
    finally:
        os.environ.clear()
        os.environ.update(env)


def test_the_shipped_config_is_valid_mtls_and_its_policy_loads(tmp_path: Path) -> None:
    settings = shipped_settings()
    assert settings.tls_enabled and not is_loopback(settings.listen)
    assert settings.listen.endswith(":50051") and not settings.dev_policy
    assert settings.vault_addr.startswith("https://")
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(one("ConfigMap", "pdv-config")["data"]["policy.yaml"], encoding="utf-8")
    load_policy(policy_file, load_catalog(), strict=True)


def test_services_pdb_and_network_policy_select_the_server_pods() -> None:
    deployment = one("Deployment", "pdv")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    port_names = {p["name"] for p in container(deployment)["ports"]}
    services = [d for d in manifests() if d["kind"] == "Service"]
    assert {s["metadata"]["name"] for s in services} == {"pdv", "pdv-headless"}
    for service in services:
        assert selects(service["spec"]["selector"], labels)
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    assert one("Service", "pdv-headless")["spec"]["clusterIP"] == "None"
    pdb = one("PodDisruptionBudget")
    assert selects(pdb["spec"]["selector"]["matchLabels"], labels)
    assert pdb["spec"]["maxUnavailable"] < deployment["spec"]["replicas"]
    server_policy = one("NetworkPolicy", "pdv-server")
    assert selects(server_policy["spec"]["podSelector"]["matchLabels"], labels)
    assert [p["port"] for p in server_policy["spec"]["ingress"][0]["ports"]] == [50051]
    egress_ports = {p["port"] for rule in server_policy["spec"]["egress"] for p in rule["ports"]}
    assert egress_ports == {53, 8200, 5432}
    assert one("NetworkPolicy", "default-deny")["spec"]["podSelector"] == {}


def test_the_migration_job_runs_pdv_db_upgrade_once_with_the_database_secret_only() -> None:
    job = one("Job", "pdv-db-upgrade")
    c = container(job)
    assert c["args"][:2] == ["db", "upgrade"]
    assert job["spec"]["parallelism"] == 1 and job["spec"]["completions"] == 1
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert c["image"] == container(one("Deployment", "pdv"))["image"]
    secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in c["env"] if "valueFrom" in e}
    assert secrets == {"pdv-database"}
    assert all("secret" not in v for v in job["spec"]["template"]["spec"]["volumes"])


def test_the_image_runs_pdv_as_the_manifests_user_with_the_probe_binary() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    pod = one("Deployment", "pdv")["spec"]["template"]["spec"]
    assert f"USER {pod['securityContext']['runAsUser']}:" in dockerfile
    assert 'ENTRYPOINT ["pdv"]' in dockerfile
    assert "/usr/local/bin/grpc-health-probe" in dockerfile
    # pdv runs from its source tree: migrations/ and the OpenBao policies must be in it.
    for path in ("migrations", "deploy/openbao", "vault", "clients/python"):
        assert re.search(rf"^COPY {re.escape(path)} ", dockerfile, re.M), path
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    for path in ("vault/**", "migrations/**", "deploy/openbao/*.hcl"):
        assert f"!{path}" in ignore


def test_the_raft_configs_make_one_three_node_cluster_with_pdvs_listener_limits() -> None:
    files = sorted((DEPLOY / "openbao" / "raft").glob("bao-*.hcl"))
    assert [f.name for f in files] == ["bao-1.hcl", "bao-2.hcl", "bao-3.hcl"]
    nodes = {}
    for f in files:
        text = f.read_text(encoding="utf-8")
        (node_id,) = re.findall(r'node_id\s*=\s*"([^"]+)"', text)
        joins = set(re.findall(r'leader_api_addr\s*=\s*"https://([^.]+)\.', text))
        (api,) = re.findall(r'^api_addr\s*=\s*"https://([^.]+)\.', text, re.M)
        for setting, value in LISTENER_LIMITS.items():
            assert re.search(rf"^\s*{setting}\s*=\s*{value}\b", text, re.M), (f.name, setting)
        assert 'storage "raft"' in text and "tls_cert_file" in text
        nodes[node_id] = (api, joins)
    assert set(nodes) == {"bao-1", "bao-2", "bao-3"}
    for node_id, (api, joins) in nodes.items():
        assert api == node_id and joins == set(nodes) - {node_id}


def test_provision_script_gives_a_token_that_wraps_keys_and_cannot_read_them(openbao: OpenBaoServer) -> None:
    script = DEPLOY / "openbao" / "raft" / "provision.sh"
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "BAO": find_bao_binary(),
           "BAO_ADDR": openbao.addr, "BAO_TOKEN": openbao.root_token}
    first = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr  # idempotent
    token = first.stdout.strip()
    assert token and "\n" not in token and token != again.stdout.strip()
    assert openbao.root_token not in first.stdout + first.stderr
    service = hvac.Client(url=openbao.addr, token=token, timeout=10)
    wrapped = service.secrets.transit.encrypt_data(name="pdv-kek", plaintext="AAAA", mount_point="transit")
    assert wrapped["data"]["ciphertext"].startswith("vault:v")
    service.secrets.transit.sign_data(name="pdv-kek-signing", hash_input="AAAA", mount_point="transit")
    with pytest.raises(hvac.exceptions.Forbidden):
        service.secrets.transit.read_key(name="pdv-kek", mount_point="transit")
    with pytest.raises(hvac.exceptions.Forbidden):
        service.secrets.transit.rotate_key(name="pdv-kek", mount_point="transit")
    assert service.auth.token.lookup_self()["data"]["policies"] == ["pdv-service-transit-pdv-kek"]
