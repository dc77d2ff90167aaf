/** Turning the wrapper's arguments into request messages, and answers back, for PdvClient. */

import { ShredStatus, type ShredOutcome as ShredOutcomeMessage } from "./gen/pdv/v1/subject.js";
import type { DetokenizeItem, LookupQuery, Record as RecordMessage } from "./gen/pdv/v1/token.js";
import { Internal } from "./errors.js";
import type { RecordInput, ShredOutcome } from "./models.js";
import { randomUUID } from "node:crypto";

export const DEFAULT_BATCH_SIZE = 1000;

/** A token to read: the token alone, or [token, field] (format-preserving tokens need the field). */
export type TokenRef = string | readonly [token: string, field: string];

const SHRED_STATUS: Record<number, ShredOutcome["status"]> = {
  [ShredStatus.SHRED_STATUS_SHREDDED]: "shredded",
  [ShredStatus.SHRED_STATUS_ALREADY_SHREDDED]: "already_shredded",
  [ShredStatus.SHRED_STATUS_ON_HOLD]: "on_hold",
  [ShredStatus.SHRED_STATUS_NOT_FOUND]: "not_found",
};

/** (start index, request id, items) per batch; batch i of a call is sent as `${base}/${i}`. */
export function* batches<T>(items: T[], options: { requestId?: string; batchSize?: number }) {
  const size = options.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError("batchSize must be an integer of at least 1");
  }
  const base = options.requestId || randomUUID();
  for (let number = 0, start = 0; start < items.length; number++, start += size) {
    yield { start, requestId: `${base}/${number}`, items: items.slice(start, start + size) };
  }
}

export function checkCount(got: number, sent: number, requestId: string): void {
  if (got !== sent) {
    throw new Internal(`server returned ${got} results for ${sent} items`, { requestId });
  }
}

export function checkString(value: unknown, what: string): string {
  if (typeof value !== "string") {
    throw new TypeError(`${what}: expected a string, not ${typeof value}`);
  }
  return value;
}

/** One tokenize input as a message; errors name the record and field, never a value. */
export function recordMessage(record: RecordInput, index: number): RecordMessage {
  if (record === null || typeof record !== "object" || typeof record.fields !== "object" || record.fields === null) {
    throw new TypeError(`record ${index}: expected { fields: { name: value }, subjectId?: string }`);
  }
  const unknown = Object.keys(record).filter((k) => k !== "fields" && k !== "subjectId");
  if (unknown.length > 0) {
    throw new TypeError(`record ${index}: unknown keys ${unknown.sort().join(", ")}`);
  }
  if (record.subjectId !== undefined && typeof record.subjectId !== "string") {
    throw new TypeError(`record ${index}: subjectId must be a string or absent`);
  }
  for (const [name, value] of Object.entries(record.fields)) {
    if (typeof value !== "string") {
      throw new TypeError(`record ${index}: field ${JSON.stringify(name)} must be a string`);
    }
  }
  return { subjectId: record.subjectId ?? "", fields: { ...record.fields } };
}

export function detokenizeItem(ref: TokenRef, index: number): DetokenizeItem {
  if (typeof ref === "string") {
    return { token: ref, field: "" };
  }
  if (Array.isArray(ref) && ref.length === 2 && ref.every((part) => typeof part === "string")) {
    return { token: ref[0], field: ref[1] };
  }
  throw new TypeError(`token ${index}: expected a string or a [token, field] pair of strings`);
}

export function lookupQuery(query: readonly [string, string], index: number): LookupQuery {
  if (Array.isArray(query) && query.length === 2 && query.every((part) => typeof part === "string")) {
    return { field: query[0], value: query[1] };
  }
  throw new TypeError(`query ${index}: expected a [field, value] pair of strings`);
}

export function shredOutcome(o: ShredOutcomeMessage): ShredOutcome {
  return {
    subjectId: o.subjectId, status: SHRED_STATUS[o.status] ?? "unknown", holdCaseIds: [...o.holdCaseIds],
    receipt: o.receipt, signature: o.signature,
  };
}
