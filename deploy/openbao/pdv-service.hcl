# pdv-service: the token the PDV service runs with. Least privilege: it can wrap, unwrap and
# rewrap data-encryption keys with the KEK, sign and verify with its signing key, and nothing else — it cannot read, rotate,
# configure, trim, export or delete the key, nor touch any other key or mount.
#
# Shipped for the default mount `transit` and key `pdv-kek`. vault.keys.openbao.create_service_token
# rewrites every `path "transit/<op>/pdv-kek"` line for another mount / key name, so keep the
# Transit paths in exactly that form.

path "transit/encrypt/pdv-kek" {
  capabilities = ["update"]
}

path "transit/decrypt/pdv-kek" {
  capabilities = ["update"]
}

path "transit/rewrap/pdv-kek" {
  capabilities = ["update"]
}

# Sign shred receipts with the ed25519 signing key, and check them.
path "transit/sign/pdv-kek-signing" {
  capabilities = ["update"]
}

path "transit/verify/pdv-kek-signing" {
  capabilities = ["update"]
}

# Instead of the default policy: the token may inspect and renew itself, nothing more.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}
