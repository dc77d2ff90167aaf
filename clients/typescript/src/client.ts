/**
 * PdvClient: a thin typed wrapper over the generated pdv.v1 clients (ts-proto, @grpc/grpc-js).
 *
 * It adds what every caller would otherwise rewrite, as the Python PdvClient does: the
 * `x-api-key` metadata, a default deadline, batching of large calls with deterministic
 * per-batch request ids (so a retry of the whole call is idempotent), and mapping gRPC
 * status codes to the classes of ./errors.ts.
 */

import {
  type CallOptions,
  type ChannelCredentials,
  type Client,
  type ClientOptions as GrpcClientOptions,
  type ClientUnaryCall,
  credentials as grpcCredentials,
  Metadata,
  type ServiceError,
} from "@grpc/grpc-js";

import { Internal, errorForStatus } from "./errors.js";
import { Events } from "./events.js";
import { batches, checkCount, checkString, detokenizeItem, lookupQuery, recordMessage, shredOutcome, type TokenRef } from "./inputs.js";
import { type TlsOptions, tlsCredentials } from "./tls.js";
import { DetokenizeResult, type Match, type RecordInput, type RecordTokens, type ShredOutcome } from "./models.js";
import { AdminServiceClient } from "./gen/pdv/v1/admin.js";
import { DisclosureServiceClient } from "./gen/pdv/v1/disclosure.js";
import { EventServiceClient } from "./gen/pdv/v1/event.js";
import { RequestServiceClient } from "./gen/pdv/v1/request.js";
import { SubjectServiceClient } from "./gen/pdv/v1/subject.js";
import { BatchMode, TokenServiceClient } from "./gen/pdv/v1/token.js";

export type { TokenRef };

export { DEFAULT_BATCH_SIZE } from "./inputs.js";
export const DEFAULT_TIMEOUT_MS = 30_000;
const API_KEY_METADATA = "x-api-key";

export interface PdvClientOptions {
  /** Sent as `x-api-key` metadata on every call. */
  apiKey?: string;
  /** mTLS material; without it (and without `credentials`) the channel is plaintext (loopback only). */
  tls?: TlsOptions;
  /** Ready-made channel credentials instead of `tls`. */
  credentials?: ChannelCredentials;
  /** Default deadline of each request in milliseconds; null waits forever. */
  timeoutMs?: number | null;
  /** Extra grpc-js channel options, e.g. {"grpc.service_config": …} for round-robin over replicas. */
  channelOptions?: Partial<GrpcClientOptions>;
}

/** Per-call options shared by the batched calls. */
export interface CallSettings {
  /** Base id: batch i is sent as `${requestId}/${i}`. Default: a random id per call. */
  requestId?: string;
  /** Items per request. */
  batchSize?: number;
  /** Per-request deadline; default the client's. */
  timeoutMs?: number | null;
}

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

const MODES = { atomic: BatchMode.BATCH_MODE_ATOMIC, partial: BatchMode.BATCH_MODE_PARTIAL } as const;

/**
 * Client of the PDV TokenService and SubjectService. Every method returns a promise that
 * rejects with a PdvError subclass for a failed call, or with TypeError/RangeError for
 * arguments it rejects locally, before anything is sent.
 *
 * Calls larger than `batchSize` items are sent as several requests, one after the other; if
 * one fails, the batches before it were applied, and the error's requestId names the failed one.
 */
export class PdvClient {
  /** The generated clients, for the calls this wrapper does not cover (e.g. RequestService, DisclosureService, AdminService). */
  readonly raw: {
    tokens: TokenServiceClient;
    subjects: SubjectServiceClient;
    requests: RequestServiceClient;
    disclosure: DisclosureServiceClient;
    admin: AdminServiceClient;
    events: EventServiceClient;
  };
  /** EventService: `subscribe()` to the events about subjects you hold tokens of (./events.ts). */
  readonly events: Events;
  readonly #target: string;
  readonly #metadata: Metadata;
  readonly #hasApiKey: boolean;
  readonly #tls: boolean;
  readonly #timeoutMs: number | null;
  #closed = false;

  /** Open a channel to `target`, e.g. "127.0.0.1:50051" or "dns:///pdv.pdv.svc:50051". */
  constructor(target: string, options: PdvClientOptions = {}) {
    if (options.apiKey !== undefined && options.apiKey === "") {
      throw new RangeError("apiKey must be non-empty or undefined");
    }
    if (options.tls !== undefined && options.credentials !== undefined) {
      throw new TypeError("give tls or credentials, not both");
    }
    const creds = options.credentials
      ?? (options.tls !== undefined ? tlsCredentials(options.tls) : grpcCredentials.createInsecure());
    this.#target = target;
    this.#tls = options.credentials !== undefined || options.tls !== undefined;
    this.#hasApiKey = options.apiKey !== undefined;
    this.#metadata = new Metadata();
    if (options.apiKey !== undefined) {
      this.#metadata.set(API_KEY_METADATA, options.apiKey);
    }
    this.#timeoutMs = options.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : options.timeoutMs;
    const tokens = new TokenServiceClient(target, creds, options.channelOptions);
    // One channel (one set of connections) for every service.
    const shared = { ...options.channelOptions, channelOverride: tokens.getChannel() };
    this.raw = {
      tokens,
      subjects: new SubjectServiceClient(target, creds, shared),
      requests: new RequestServiceClient(target, creds, shared),
      disclosure: new DisclosureServiceClient(target, creds, shared),
      admin: new AdminServiceClient(target, creds, shared),
      events: new EventServiceClient(target, creds, shared),
    };
    const { events } = this.raw;
    this.events = new Events(events, this.#metadata, async (cursor, timeoutMs) =>
      (await this.#call(events, events.ack, { cursor }, "", timeoutMs)).ackedCursor);
  }

  /** Close the channel; calls made afterwards reject. Safe to call twice. */
  close(): void {
    if (!this.#closed) {
      this.#closed = true;
      this.raw.tokens.getChannel().close();
    }
  }

  /** Keeps the API key out of console.log and util.inspect. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `PdvClient { target: ${JSON.stringify(this.#target)}, apiKey: ${this.#hasApiKey ? "<redacted>" : "none"}, tls: ${this.#tls} }`;
  }

  toJSON(): Record<string, unknown> {
    return { target: this.#target, apiKey: this.#hasApiKey ? "<redacted>" : null, tls: this.#tls };
  }

  // -- TokenService ---------------------------------------------------------------

  /**
   * Store records' fields encrypted and return their tokens, one RecordTokens per record.
   *
   * `mode` "atomic" (default): one invalid record fails its whole batch with InvalidArgument;
   * "partial": invalid records come back with `errors` set. Pass your own `requestId` whenever
   * you may retry: a retry with it returns the same tokens; without it, a repeat is a new
   * collection (new subjects, new random tokens).
   */
  async tokenize(
    records: readonly RecordInput[],
    options: CallSettings & { purpose: string; source: string; noticeId?: string; mode?: keyof typeof MODES },
  ): Promise<RecordTokens[]> {
    const mode = options.mode ?? "atomic";
    if (!(mode in MODES)) {
      throw new RangeError(`mode must be one of ${Object.keys(MODES).join(", ")}`);
    }
    const messages = records.map(recordMessage);
    const results: RecordTokens[] = [];
    for (const { start, requestId, items } of batches(messages, options)) {
      const request = {
        requestId, purpose: options.purpose, source: options.source, noticeId: options.noticeId ?? "",
        records: items, mode: MODES[mode],
      };
      const response = await this.#call(this.raw.tokens, this.raw.tokens.tokenize, request, requestId, options.timeoutMs);
      checkCount(response.results.length, items.length, requestId);
      const errors = new Map<number, RecordTokens["errors"]>();
      for (const e of response.errors) {
        const list = errors.get(e.index) ?? [];
        list.push({ index: start + e.index, field: e.field, code: e.code, message: e.message });
        errors.set(e.index, list);
      }
      response.results.forEach((r, offset) =>
        results.push({ subjectId: r.subjectId, tokens: { ...r.tokens }, errors: errors.get(offset) ?? [] }));
    }
    return results;
  }

  /**
   * The field and value behind each token (a string, or a [token, field] pair, which
   * format-preserving tokens need). A token that cannot be read does not reject: its
   * result has a non-zero `code` (see DetokenizeResult.toError).
   */
  async detokenize(tokens: readonly TokenRef[], options: CallSettings & { purpose: string }): Promise<DetokenizeResult[]> {
    const items = tokens.map(detokenizeItem);
    const results: DetokenizeResult[] = [];
    for (const { requestId, items: batch } of batches(items, options)) {
      const request = { purpose: options.purpose, items: batch, requestId };
      const response = await this.#call(this.raw.tokens, this.raw.tokens.detokenize, request, requestId, options.timeoutMs);
      checkCount(response.results.length, batch.length, requestId);
      for (const r of response.results) {
        results.push(new DetokenizeResult(r.token, r.field, r.value, r.code, r.message));
      }
    }
    return results;
  }

  /** The value behind one token; rejects with NotFound (or the item's other error) when there is none. */
  async detokenizeOne(
    token: string,
    options: { purpose: string; field?: string; requestId?: string; timeoutMs?: number | null },
  ): Promise<string> {
    const ref: TokenRef = options.field === undefined ? token : [token, options.field];
    const [result] = await this.detokenize([ref], options);
    const error = result.toError();
    if (error !== undefined) {
      throw error;
    }
    return result.value;
  }

  /** The tokens (and subjects) holding `value` in `field`; [] when none. */
  async lookup(field: string, value: string, options: CallSettings & { purpose: string }): Promise<Match[]> {
    const [matches] = await this.lookupMany([[field, value]], options);
    return matches;
  }

  /** Several lookups: one list of matches per [field, value] query, in order. */
  async lookupMany(
    queries: readonly (readonly [field: string, value: string])[],
    options: CallSettings & { purpose: string },
  ): Promise<Match[][]> {
    const messages = queries.map(lookupQuery);
    const results: Match[][] = [];
    for (const { requestId, items } of batches(messages, options)) {
      const request = { purpose: options.purpose, queries: items, requestId };
      const response = await this.#call(this.raw.tokens, this.raw.tokens.lookup, request, requestId, options.timeoutMs);
      checkCount(response.results.length, items.length, requestId);
      for (const r of response.results) {
        results.push(r.matches.map((m) => ({ subjectId: m.subjectId, token: m.token })));
      }
    }
    return results;
  }

  // -- SubjectService (admin principals only) ---------------------------------------------

  /** Crypto-shred each subject (idempotent); a legal hold blocks it and says so. */
  async shredSubjects(
    subjectIds: readonly string[],
    options: { reason: string; caseId?: string; batchSize?: number; timeoutMs?: number | null },
  ): Promise<ShredOutcome[]> {
    const outcomes: ShredOutcome[] = [];
    for (const { requestId, items } of batches(subjectIds.map((id, i) => checkString(id, `subject ${i}`)), options)) {
      const request = { subjectIds: items, reason: options.reason, caseId: options.caseId ?? "" };
      const response = await this.#call(this.raw.subjects, this.raw.subjects.shredSubjects, request, requestId, options.timeoutMs);
      checkCount(response.outcomes.length, items.length, requestId);
      outcomes.push(...response.outcomes.map(shredOutcome));
    }
    return outcomes;
  }

  /** Crypto-shred some fields of one subject. */
  async shredFields(
    subjectId: string,
    fields: readonly string[],
    options: { reason: string; caseId?: string; timeoutMs?: number | null },
  ): Promise<ShredOutcome> {
    const request = { subjectId, fields: [...fields], reason: options.reason, caseId: options.caseId ?? "" };
    const response = await this.#call(this.raw.subjects, this.raw.subjects.shredFields, request, "", options.timeoutMs);
    if (response.outcome === undefined) {
      throw new Internal("server returned no outcome");
    }
    return shredOutcome(response.outcome);
  }

  /** Block disposal of the subject; false if this case already held it. */
  async placeHold(subjectId: string, options: { caseId: string; reason: string; timeoutMs?: number | null }): Promise<boolean> {
    const request = { subjectId, caseId: options.caseId, reason: options.reason };
    return (await this.#call(this.raw.subjects, this.raw.subjects.placeHold, request, "", options.timeoutMs)).placed;
  }

  /** Release this case's hold; how many holds ended (0 or 1). */
  async releaseHold(subjectId: string, options: { caseId: string; timeoutMs?: number | null }): Promise<number> {
    const request = { subjectId, caseId: options.caseId };
    return (await this.#call(this.raw.subjects, this.raw.subjects.releaseHold, request, "", options.timeoutMs)).released;
  }

  /** True only for an untampered shred receipt signed by the vault's key. */
  async verifyReceipt(receipt: string, signature: string, options: { timeoutMs?: number | null } = {}): Promise<boolean> {
    const request = { receipt, signature };
    return (await this.#call(this.raw.subjects, this.raw.subjects.verifyReceipt, request, "", options.timeoutMs)).valid;
  }

  /** Opt the subject out of `purpose` (optedOut: true) or back in; false if it was already so. */
  async setConsent(
    subjectId: string,
    purpose: string,
    options: { optedOut: boolean; caseId?: string; timeoutMs?: number | null },
  ): Promise<boolean> {
    const request = { subjectId, purpose, optedOut: options.optedOut, caseId: options.caseId ?? "" };
    return (await this.#call(this.raw.subjects, this.raw.subjects.setConsent, request, "", options.timeoutMs)).changed;
  }

  /** The purposes the subject opted out of, sorted. */
  async getConsent(subjectId: string, options: { timeoutMs?: number | null } = {}): Promise<string[]> {
    const response = await this.#call(this.raw.subjects, this.raw.subjects.getConsent, { subjectId }, "", options.timeoutMs);
    return [...response.optedOutPurposes];
  }

  // -- helpers ---------------------------------------------------------------------

  #call<Req, Res>(client: Client, method: Unary<Req, Res>, request: Req, requestId: string,
    timeoutMs: number | null | undefined): Promise<Res> {
    if (this.#closed) {
      return Promise.reject(new RangeError("PdvClient is closed"));
    }
    const ms = timeoutMs === undefined ? this.#timeoutMs : timeoutMs;
    const options: Partial<CallOptions> = ms === null ? {} : { deadline: Date.now() + ms };
    return new Promise<Res>((resolve, reject) => {
      method.call(client, request, this.#metadata, options, (error, response) => {
        if (error !== null) {
          reject(errorForStatus(error, "", requestId || undefined));
        } else {
          resolve(response);
        }
      });
    });
  }
}
