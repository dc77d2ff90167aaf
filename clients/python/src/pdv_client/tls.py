"""Channel credentials for a PDV server that requires mTLS, without importing grpc yourself."""

from __future__ import annotations

import grpc

__all__ = ["tls_credentials"]


def tls_credentials(ca_pem: bytes, cert_pem: bytes | None = None, key_pem: bytes | None = None) -> grpc.ChannelCredentials:
    """TLS credentials trusting `ca_pem` for the server, presenting a client certificate if given.

    Pass the result as ``PdvClient(target, credentials=...)``. A server with mTLS refuses a
    connection without a valid client certificate during the handshake, so such calls
    fail with :class:`pdv_client.errors.Unavailable`, not Unauthenticated.
    """
    if (cert_pem is None) != (key_pem is None):
        raise ValueError("give both the client certificate and its key, or neither")
    return grpc.ssl_channel_credentials(root_certificates=ca_pem, private_key=key_pem, certificate_chain=cert_pem)
