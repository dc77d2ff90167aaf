# Example production-style OpenBao server config for PDV (one node of a 3-node raft cluster).
# Adapt hostnames, paths and certificates; `bao server -config=/etc/openbao/server.hcl`.
# The local dev/test server (vault/keys/openbao.py) uses the same JSON request limits.

# Integrated storage: no external database, replicated by raft between the nodes.
storage "raft" {
  path    = "/var/lib/openbao/raft"
  node_id = "bao-1"

  retry_join {
    leader_api_addr     = "https://bao-2.internal:8200"
    leader_ca_cert_file = "/etc/openbao/tls/ca.pem"
  }
  retry_join {
    leader_api_addr     = "https://bao-3.internal:8200"
    leader_ca_cert_file = "/etc/openbao/tls/ca.pem"
  }
}

listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"

  # TLS always on outside a laptop.
  tls_cert_file      = "/etc/openbao/tls/bao-1.pem"
  tls_key_file       = "/etc/openbao/tls/bao-1-key.pem"
  tls_client_ca_file = "/etc/openbao/tls/ca.pem"
  tls_min_version    = "tls12"

  # PDV wraps and unwraps DEKs with Transit batch_input of up to 1000 items per call. The
  # default max_request_json_strings (1000) counts every JSON key and value, so such a batch
  # (~2,000 strings) would be refused: raise it, keep memory/size at their defaults.
  max_request_json_strings = 16384
  max_request_json_memory  = 34078720 # 32 MiB + 512 KiB (default)
  max_request_size         = 33554432 # 32 MiB (default)
}

# How clients and the other nodes reach this one.
api_addr     = "https://bao-1.internal:8200"
cluster_addr = "https://bao-1.internal:8201"

# No disable_mlock: OpenBao 2.x dropped mlock support and warns on the field. Disable swap
# on the host instead, so secrets in memory never reach disk.

ui = false

# Auto-unseal with a cloud KMS or HSM instead of Shamir shares in production, e.g.:
# seal "pkcs11" { ... }
