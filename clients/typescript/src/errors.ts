/**
 * Errors thrown by PdvClient, one class per gRPC status code the service uses, named like
 * the Python client's (pdv_client.errors).
 *
 * errorForStatus is the one place that maps a status (a failed grpc-js call, or a per-item
 * code number from a response) to a class. Messages carry the server's message only; the
 * client never formats request values into them.
 */

import { status as Status } from "@grpc/grpc-js";

export { Status };

/** Base of every error the client throws for a non-OK status. */
export class PdvError extends Error {
  /** The status a class stands for; a bare PdvError carries the code that has no class. */
  static readonly statusCode: Status = Status.UNKNOWN;
  /** The gRPC status code of the failure. */
  readonly status: Status;
  /** The request id of the failed call, when it had one (for a batched call, the failed batch's). */
  readonly requestId: string | undefined;
  /** The server's message, without the status prefix. */
  readonly details: string;

  constructor(details = "", options: { status?: Status; requestId?: string } = {}) {
    const status = options.status ?? (new.target as typeof PdvError).statusCode;
    super(details ? `${Status[status]}: ${details}` : Status[status]);
    this.name = new.target.name;
    this.status = status;
    this.details = details;
    this.requestId = options.requestId;
  }
}

/** A field, purpose or record was rejected (INVALID_ARGUMENT). */
export class InvalidArgument extends PdvError {
  static override readonly statusCode = Status.INVALID_ARGUMENT;
}

/** The token or subject does not exist, or was shredded (NOT_FOUND). */
export class NotFound extends PdvError {
  static override readonly statusCode = Status.NOT_FOUND;
}

/** The item already exists, e.g. a request id reused for other content (ALREADY_EXISTS). */
export class AlreadyExists extends PdvError {
  static override readonly statusCode = Status.ALREADY_EXISTS;
}

/** The caller may not do this for this purpose or field (PERMISSION_DENIED). */
export class PermissionDenied extends PdvError {
  static override readonly statusCode = Status.PERMISSION_DENIED;
}

/** Missing or invalid API key or client certificate (UNAUTHENTICATED). */
export class Unauthenticated extends PdvError {
  static override readonly statusCode = Status.UNAUTHENTICATED;
}

/** Rate limit, batch size or the server's item budget exceeded (RESOURCE_EXHAUSTED). */
export class ResourceExhausted extends PdvError {
  static override readonly statusCode = Status.RESOURCE_EXHAUSTED;
}

/** The system is not in a state to serve this, e.g. a restore not reconciled (FAILED_PRECONDITION). */
export class FailedPrecondition extends PdvError {
  static override readonly statusCode = Status.FAILED_PRECONDITION;
}

/**
 * The server or its key store is unreachable, or it is shutting down; retry later
 * (UNAVAILABLE). A TLS handshake the server refuses (no, an expired or a foreign client
 * certificate) also ends here: it happens before any call exists.
 */
export class Unavailable extends PdvError {
  static override readonly statusCode = Status.UNAVAILABLE;
}

/** The call did not finish within its timeout (DEADLINE_EXCEEDED). */
export class DeadlineExceeded extends PdvError {
  static override readonly statusCode = Status.DEADLINE_EXCEEDED;
}

/** An events cursor older than the events the server keeps; the message says where to resume (OUT_OF_RANGE). */
export class OutOfRange extends PdvError {
  static override readonly statusCode = Status.OUT_OF_RANGE;
}

/** The server failed unexpectedly (INTERNAL). */
export class Internal extends PdvError {
  static override readonly statusCode = Status.INTERNAL;
}

const BY_STATUS = new Map<Status, typeof PdvError>(
  [
    InvalidArgument,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    Unauthenticated,
    ResourceExhausted,
    FailedPrecondition,
    Unavailable,
    DeadlineExceeded,
    OutOfRange,
    Internal,
  ].map((cls) => [cls.statusCode, cls]),
);

/** What grpc-js hands a failed call's callback (a ServiceError), as far as it is read here. */
export interface CallFailure {
  code?: number;
  details?: string;
}

/**
 * The PdvError subclass instance for a failed call or item.
 *
 * @param status a grpc-js ServiceError (its code and details are used, `message` is
 *   ignored), or a status code number as found in per-item `code` fields.
 * @param message the server's message for a code number.
 * @throws RangeError for status OK (0): OK is not an error.
 */
export function errorForStatus(
  status: CallFailure | number,
  message = "",
  requestId?: string,
): PdvError {
  let code: number;
  if (typeof status === "number") {
    code = status;
  } else {
    // A failure without a numeric code (not from a call) counts as UNKNOWN.
    code = typeof status.code === "number" ? status.code : Status.UNKNOWN;
    message = status.details ?? "";
  }
  if (code === Status.OK) {
    throw new RangeError("status OK is not an error");
  }
  const known = Status[code] === undefined ? Status.UNKNOWN : (code as Status);
  const cls = BY_STATUS.get(known) ?? PdvError;
  return new cls(message, { status: known, requestId });
}
