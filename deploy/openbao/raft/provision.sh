#!/bin/sh
# Provision PDV on a fresh, initialised and unsealed OpenBao cluster (any node; standbys
# forward to the leader): the Transit mount, the KEK and its signing key, the two PDV
# policies, and a service token. Idempotent. Needs BAO_ADDR (and BAO_CACERT) and a token
# allowed to manage mounts, policies and tokens in BAO_TOKEN; prints only the new service token.
#
#   BAO_ADDR=https://bao-1.internal:8200 BAO_TOKEN=… deploy/openbao/raft/provision.sh > service-token
#   kubectl -n pdv create secret generic pdv-vault-token --from-file=token=service-token
#
# The same steps as vault/keys/openbao.py provision_transit + create_service_token, with the
# same policy names, for the default mount `transit` and key `pdv-kek`.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bao=${BAO:-bao}

if ! "$bao" secrets list -format=json | grep -q '"transit/"'; then
  "$bao" secrets enable -path=transit transit >&2
fi
"$bao" read transit/keys/pdv-kek > /dev/null 2>&1 || "$bao" write -f transit/keys/pdv-kek type=aes256-gcm96 >&2
"$bao" read transit/keys/pdv-kek-signing > /dev/null 2>&1 || "$bao" write -f transit/keys/pdv-kek-signing type=ed25519 >&2
"$bao" policy write pdv-service-transit-pdv-kek "$here/pdv-service.hcl" >&2
"$bao" policy write pdv-admin-transit-pdv-kek "$here/pdv-admin.hcl" >&2
# An orphan token (it outlives the token that made it) with only the service policy.
"$bao" token create -orphan -no-default-policy -policy=pdv-service-transit-pdv-kek \
  -ttl=768h -renewable=true -display-name=pdv-service -field=token
