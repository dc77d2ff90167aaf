# OpenBao node bao-3 of PDV's 3-node Raft cluster: `bao server -config=/etc/openbao/bao-3.hcl`.
# The three files differ only in node_id, the certificate and the addresses. Raft needs a
# majority (2 of 3) to elect a leader and commit: any one node can be lost. Standbys forward
# requests to the leader, so PDV's vault_addr may name any node or a Service in front of them.

storage "raft" {
  path    = "/var/lib/openbao/raft"
  node_id = "bao-3"

  retry_join {
    leader_api_addr         = "https://bao-1.internal:8200"
    leader_ca_cert_file     = "/etc/openbao/tls/ca.pem"
  }

  retry_join {
    leader_api_addr         = "https://bao-2.internal:8200"
    leader_ca_cert_file     = "/etc/openbao/tls/ca.pem"
  }
}

listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"

  tls_cert_file      = "/etc/openbao/tls/bao-3.pem"
  tls_key_file       = "/etc/openbao/tls/bao-3-key.pem"
  tls_client_ca_file = "/etc/openbao/tls/ca.pem"
  tls_min_version    = "tls12"

  # PDV's Transit batches (up to 1000 items, ~2,000 JSON strings): the same limits as
  # vault/keys/openbao.py LISTENER_LIMITS and deploy/openbao/server.hcl.
  max_request_json_strings = 16384
  max_request_json_memory  = 34078720
  max_request_size         = 33554432
}

api_addr     = "https://bao-3.internal:8200"
cluster_addr = "https://bao-3.internal:8201"
ui           = false

# Auto-unseal (cloud KMS or HSM) in production, so a restarted node rejoins by itself:
# seal "pkcs11" { ... }
