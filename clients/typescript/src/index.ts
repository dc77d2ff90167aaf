/**
 * Typed TypeScript client for the PDV personal-data vault (pdv.v1 over gRPC).
 *
 *     import { PdvClient } from "@pdv/client";
 *
 *     const pdv = new PdvClient("127.0.0.1:50051", { apiKey: process.env.PDV_API_KEY });
 *     const [rec] = await pdv.tokenize([{ fields: { email: "a@example.org" } }],
 *                                      { purpose: "service_delivery", source: "311" });
 *     const email = await pdv.detokenizeOne(rec.tokens.email, { purpose: "service_delivery" });
 *     pdv.close();
 *
 * The generated messages and clients are exported as `pdv` (ts-proto over @grpc/grpc-js).
 */

export { DEFAULT_BATCH_SIZE, DEFAULT_TIMEOUT_MS, PdvClient } from "./client.js";
export type { CallSettings, PdvClientOptions, TokenRef } from "./client.js";
export {
  AlreadyExists,
  DeadlineExceeded,
  FailedPrecondition,
  Internal,
  InvalidArgument,
  NotFound,
  OutOfRange,
  PdvError,
  PermissionDenied,
  ResourceExhausted,
  Status,
  Unauthenticated,
  Unavailable,
  errorForStatus,
} from "./errors.js";
export { Events, KINDS } from "./events.js";
export type { EventKindName, EventToken, PdvEvent, SubscribeOptions } from "./events.js";
export { DetokenizeResult } from "./models.js";
export type { ItemError, Match, RecordInput, RecordTokens, ShredOutcome, ShredStatus } from "./models.js";
export { tlsCredentials } from "./tls.js";
export type { TlsOptions } from "./tls.js";
export * as pdv from "./generated.js";
