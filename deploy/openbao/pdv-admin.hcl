# pdv-admin: for operators running `pdv keys rotate` / trim and one-off provisioning.
# Everything pdv-service may do, plus managing the KEK's versions and the PDV signing keys.
# Never give this to the running service.

# What the service does (the rotation job rewraps every stored DEK).
path "transit/encrypt/pdv-kek" {
  capabilities = ["update"]
}

path "transit/decrypt/pdv-kek" {
  capabilities = ["update"]
}

path "transit/rewrap/pdv-kek" {
  capabilities = ["update"]
}

# Read the KEK's metadata (versions, min_decryption_version) — never its material.
path "transit/keys/pdv-kek" {
  capabilities = ["read"]
}

# New KEK version.
path "transit/keys/pdv-kek/rotate" {
  capabilities = ["update"]
}

# Raise min_decryption_version / min_encryption_version once every DEK is rewrapped.
path "transit/keys/pdv-kek/config" {
  capabilities = ["update"]
}

# Delete versions below min_available_version after the backup horizon.
path "transit/keys/pdv-kek/trim" {
  capabilities = ["update"]
}

# The signing keys PDV will use (transit/keys/pdv-*): create, read, rotate, configure.
# Deletion stays with root on purpose (deletion_allowed is not granted either).
path "transit/keys/pdv-*" {
  capabilities = ["create", "read", "update"]
}

path "transit/sign/pdv-*" {
  capabilities = ["update"]
}

path "transit/verify/pdv-*" {
  capabilities = ["update"]
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}
