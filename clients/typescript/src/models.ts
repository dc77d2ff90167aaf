/** Plain results of PdvClient's calls, shaped like the Python client's (pdv_client.models). */

import { errorForStatus, type PdvError } from "./errors.js";

/** One person's fields to tokenize; no subjectId creates a new subject. */
export interface RecordInput {
  fields: Record<string, string>;
  /** Add the fields to this existing subject (needs the `append` grant). */
  subjectId?: string;
}

/** An item the server did not store (only in "partial" mode); never carries the value. */
export interface ItemError {
  /** Index of the record in the whole call (not in its batch). */
  index: number;
  field: string;
  code: number;
  message: string;
}

/** The outcome of one tokenized record. */
export interface RecordTokens {
  subjectId: string;
  /** Field name to token. */
  tokens: Record<string, string>;
  /** Why the record was not stored; empty when it was. */
  errors: ItemError[];
}

/** The outcome of one detokenize item: a value, or a per-item code (e.g. NOT_FOUND). */
export class DetokenizeResult {
  constructor(
    readonly token: string,
    readonly field: string,
    readonly value: string,
    readonly code: number,
    readonly message: string,
  ) {}

  get ok(): boolean {
    return this.code === 0;
  }

  /** The error this item stands for, or undefined when it is OK. */
  toError(): PdvError | undefined {
    return this.ok ? undefined : errorForStatus(this.code, this.message);
  }

  /** Keeps the value out of console.log and util.inspect (it is personal data). */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `DetokenizeResult { field: ${JSON.stringify(this.field)}, code: ${this.code}, value: <redacted> }`;
  }

  toJSON(): Record<string, unknown> {
    // JSON.stringify is how results get logged by accident; the value must be read explicitly.
    return { token: this.token, field: this.field, code: this.code, message: this.message };
  }
}

/** A stored value equal to a lookup's query. */
export interface Match {
  subjectId: string;
  token: string;
}

export type ShredStatus = "shredded" | "already_shredded" | "on_hold" | "not_found" | "unknown";

/** The outcome of shredding one subject (or some of its fields). */
export interface ShredOutcome {
  subjectId: string;
  status: ShredStatus;
  /** The cases whose legal holds blocked the shred. */
  holdCaseIds: string[];
  /** The signed receipt (canonical JSON) and its signature, for a shred that happened. */
  receipt: string;
  signature: string;
}
