/**
 * Events to token holders (pdv.v1 EventService), as `PdvClient.events`.
 *
 *     const stop = new AbortController();
 *     for await (const event of pdv.events.subscribe({ signal: stop.signal })) {
 *       for (const t of event.tokens) forget(t.field, t.token);  // your own copy: the token is dead ("shredded")
 *       // going round the loop acknowledges the event
 *     }
 *
 * `subscribe()` yields typed events in order, at least once, like the Python client's: it
 * acknowledges an event once the loop asks for the next one (every `ackEvery` events; the
 * ones handled but not yet acknowledged when the loop ends, too). Leaving the loop, by
 * `break`, `return` or an exception, leaves the event in hand unacknowledged (call
 * `events.ack(event.cursor)` if it was handled), and when the stream breaks (the server
 * stopped or restarted, the network dropped) it subscribes again after the last event
 * handled, waiting a little longer each time. Aborting the signal ends the loop, also while
 * it waits for the next event. An event handled but not yet acknowledged when the process
 * dies comes again: make handling one idempotent (its `receiptId` or `correctionId` names
 * the change). A cursor older than what the server keeps throws OutOfRange, whose message
 * says what to do.
 */

import type { Metadata } from "@grpc/grpc-js";
import { setTimeout as sleep } from "node:timers/promises";

import { PdvError, Status, errorForStatus } from "./errors.js";
import { EventKind, type EventServiceClient, type Event as EventMessage } from "./gen/pdv/v1/event.js";

const KIND_NAMES = {
  [EventKind.EVENT_KIND_SHREDDED]: "shredded",
  [EventKind.EVENT_KIND_FIELDS_SHREDDED]: "fields_shredded",
  [EventKind.EVENT_KIND_DISPOSED]: "disposed",
  [EventKind.EVENT_KIND_DEIDENTIFIED]: "deidentified",
  [EventKind.EVENT_KIND_CORRECTED]: "corrected",
  [EventKind.EVENT_KIND_CONSENT_WITHDRAWN]: "consent_withdrawn",
  [EventKind.EVENT_KIND_CONSENT_GIVEN]: "consent_given",
  [EventKind.EVENT_KIND_HOLD_PLACED]: "hold_placed",
  [EventKind.EVENT_KIND_HOLD_RELEASED]: "hold_released",
} as const;
/** What happened to the subject ("unknown" for a kind newer than this client). */
export type EventKindName = (typeof KIND_NAMES)[keyof typeof KIND_NAMES] | "unknown";
export const KINDS: readonly EventKindName[] = Object.values(KIND_NAMES);

// A broken stream is subscribed to again; any other status ends the subscription (the caller must act).
const RETRIED = new Set<Status>([Status.UNAVAILABLE, Status.CANCELLED, Status.DEADLINE_EXCEEDED, Status.INTERNAL,
  Status.UNKNOWN]);

/** A token of the subject as you were issued it; `previousToken` for a correction that changed it. */
export interface EventToken {
  readonly field: string;
  readonly token: string;
  readonly previousToken: string;
}

/** One change to a subject you hold tokens of; never a value. */
export interface PdvEvent {
  readonly cursor: string;
  readonly kind: EventKindName;
  readonly at: Date;
  readonly tokens: readonly EventToken[];
  readonly receiptId: string;
  readonly correctionId: string;
  readonly fields: readonly string[];
  readonly purpose: string;
}

export interface SubscribeOptions {
  /** Start after this cursor; default: after the last acknowledged one. */
  cursor?: string;
  /** Acknowledge after this many handled events (and always when the loop ends). Default 1. */
  ackEvery?: number;
  /** The wait before subscribing again, doubled each time up to `maxRetryMs`. Default 500. */
  retryMs?: number;
  /** Default 30 000. */
  maxRetryMs?: number;
  /** Aborting it ends the subscription. */
  signal?: AbortSignal;
}

/** The EventService calls of one PdvClient (same channel, key and error mapping). */
export class Events {
  readonly #stub: EventServiceClient;
  readonly #metadata: Metadata;
  readonly #ack: (cursor: string, timeoutMs?: number | null) => Promise<string>;

  /** Made by PdvClient: `ack` is its unary call of EventService.Ack. */
  constructor(stub: EventServiceClient, metadata: Metadata, ack: (cursor: string, timeoutMs?: number | null) => Promise<string>) {
    this.#stub = stub;
    this.#metadata = metadata;
    this.#ack = ack;
  }

  /** Acknowledge every event up to `cursor`; resolves to the cursor the server now resumes after. */
  ack(cursor: string, options: { timeoutMs?: number | null } = {}): Promise<string> {
    return this.#ack(cursor, options.timeoutMs);
  }

  /**
   * One subscription, as the server sends it: no acknowledgement, no reconnection; aborting
   * `signal` ends it quietly. Throws the mapped PdvError when the stream ends with an error.
   */
  async *stream(cursor = "", signal?: AbortSignal): AsyncGenerator<PdvEvent, void, undefined> {
    if (signal?.aborted) {
      return;
    }
    const call = this.#stub.subscribe({ cursor }, this.#metadata);
    const cancel = (): void => call.cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      for await (const message of call) {
        yield toEvent(message.event);
      }
    } catch (error) {
      if (signal?.aborted) {
        return;
      }
      throw error instanceof PdvError ? error : errorForStatus(error as { code?: number; details?: string });
    } finally {
      signal?.removeEventListener("abort", cancel);
      call.cancel();
    }
  }

  /**
   * Your events, in order, at least once, acknowledged and resumed (see the module comment).
   * Throws OutOfRange when the cursor is older than the events kept (the message says what
   * to do), PermissionDenied without an `events` grant.
   */
  async *subscribe(options: SubscribeOptions = {}): AsyncGenerator<PdvEvent, void, undefined> {
    const { ackEvery = 1, retryMs = 500, maxRetryMs = 30_000, signal } = options;
    let handled = options.cursor ?? "";
    let acked = handled;
    let sinceAck = 0;
    let delay = retryMs;
    try {
      while (!signal?.aborted) {
        try {
          for await (const event of this.stream(handled, signal)) {
            delay = retryMs;
            yield event;
            handled = event.cursor;
            sinceAck += 1;
            if (sinceAck >= ackEvery) {
              acked = await this.#ack(handled);
              sinceAck = 0;
            }
            if (signal?.aborted) {
              return;
            }
          }
        } catch (error) {
          if (!(error instanceof PdvError && RETRIED.has(error.status))) {
            throw error;
          }
        }
        try {
          await sleep(delay, undefined, { signal });
        } catch {
          return; // aborted while waiting
        }
        delay = Math.min(delay * 2, maxRetryMs);
      }
    } finally {
      if (handled !== "" && handled !== acked) {
        await this.#ack(handled).catch(() => undefined); // best effort: unacknowledged events come again
      }
    }
  }
}

function toEvent(message: EventMessage | undefined): PdvEvent {
  if (message === undefined) {
    throw errorForStatus(Status.INTERNAL, "server sent a stream message without an event");
  }
  return {
    cursor: message.cursor,
    kind: KIND_NAMES[message.kind as keyof typeof KIND_NAMES] ?? "unknown",
    at: message.at ?? new Date(0),
    tokens: message.tokens.map((t) => ({ field: t.field, token: t.token, previousToken: t.previousToken })),
    receiptId: message.receiptId,
    correctionId: message.correctionId,
    fields: [...message.fields],
    purpose: message.purpose,
  };
}
