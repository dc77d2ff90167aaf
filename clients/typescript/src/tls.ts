/** Channel credentials for a PDV server that requires mTLS (any non-loopback listener does). */

import { credentials, type ChannelCredentials } from "@grpc/grpc-js";

/** PEM material for mTLS: the CA that signed the server's certificate, and the client's pair. */
export interface TlsOptions {
  /** The CA certificate(s) to trust for the server. */
  ca: Buffer | string;
  /** The client certificate chain; give it together with `key`, or neither. */
  cert?: Buffer | string;
  /** The client certificate's private key. */
  key?: Buffer | string;
}

/**
 * TLS credentials trusting `ca` for the server, presenting the client certificate if given.
 *
 * A server with mTLS refuses a connection without a valid client certificate during the
 * handshake, so such calls fail with Unavailable, not Unauthenticated.
 */
export function tlsCredentials(options: TlsOptions): ChannelCredentials {
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new TypeError("give both the client certificate and its key, or neither");
  }
  const pem = (value: Buffer | string | undefined): Buffer | null =>
    value === undefined ? null : Buffer.isBuffer(value) ? value : Buffer.from(value);
  return credentials.createSsl(pem(options.ca), pem(options.key), pem(options.cert));
}
