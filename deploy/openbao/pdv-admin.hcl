# pdv-admin: for operators running `pdv keys rotate | rewrap | status | trim | schedule` and one-off
# provisioning. Exactly what those commands call, plus managing the receipt signing key.
# Do not give this to the running service unless you mean it to rotate, schedule and trim the
# KEK over its Admin API (kek_admin_over_api = true; README, "Admin API"). It cannot encrypt
# or decrypt with the KEK, export it, back it up or delete it.
#
# Shipped for the default mount `transit` and key `pdv-kek`; vault.keys.openbao.render_admin_policy
# rewrites every `transit/<op>/pdv-kek…` path for another mount / key name.

# pdv keys status / trim: the KEK's metadata (versions, their creation times, minimum
# versions) — never its material.
path "transit/keys/pdv-kek" {
  capabilities = ["read"]
}

# pdv keys rotate: a new KEK version.
path "transit/keys/pdv-kek/rotate" {
  capabilities = ["update"]
}

# pdv keys rewrap: re-encrypt wrapped DEKs under the latest version; the DEKs stay inside Vault.
path "transit/rewrap/pdv-kek" {
  capabilities = ["update"]
}

# pdv keys trim: raise min_decryption_version / min_encryption_version (trim needs both) ...
path "transit/keys/pdv-kek/config" {
  capabilities = ["update"]
}

# ... then delete the versions below min_available_version, after the backup horizon.
path "transit/keys/pdv-kek/trim" {
  capabilities = ["update"]
}

# The ed25519 key that signs shred receipts (provisioned next to the KEK): create, read,
# rotate. Deletion stays with root on purpose (deletion_allowed is not granted either).
path "transit/keys/pdv-kek-signing" {
  capabilities = ["create", "read", "update"]
}

path "transit/keys/pdv-kek-signing/rotate" {
  capabilities = ["update"]
}

path "transit/sign/pdv-kek-signing" {
  capabilities = ["update"]
}

path "transit/verify/pdv-kek-signing" {
  capabilities = ["update"]
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}
