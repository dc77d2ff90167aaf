// What the client does on its own, without a server: error classes, local argument checks,
// and that neither the API key nor a value shows in what gets printed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { inspect } from "node:util";

import {
  AlreadyExists, DeadlineExceeded, DetokenizeResult, FailedPrecondition, Internal, InvalidArgument, NotFound,
  OutOfRange, PdvClient, PdvError, PermissionDenied, ResourceExhausted, Status, Unauthenticated, Unavailable, errorForStatus,
  tlsCredentials,
} from "../src/index.js";

const CLASSES = [
  [InvalidArgument, Status.INVALID_ARGUMENT], [NotFound, Status.NOT_FOUND], [AlreadyExists, Status.ALREADY_EXISTS],
  [PermissionDenied, Status.PERMISSION_DENIED], [Unauthenticated, Status.UNAUTHENTICATED],
  [ResourceExhausted, Status.RESOURCE_EXHAUSTED], [FailedPrecondition, Status.FAILED_PRECONDITION],
  [Unavailable, Status.UNAVAILABLE], [DeadlineExceeded, Status.DEADLINE_EXCEEDED], [OutOfRange, Status.OUT_OF_RANGE],
  [Internal, Status.INTERNAL],
] as const;
const API_KEY = "pdvk_unit-test-key-0123456789";
const CANARY = "canary-value@example.org";

test("every status the service uses maps to its class, named after it", () => {
  for (const [cls, code] of CLASSES) {
    const error = errorForStatus({ code, details: "why" }, "", "req-1/0");
    assert.ok(error instanceof cls && error instanceof PdvError && error instanceof Error);
    assert.equal(error.status, code);
    assert.equal(error.name, cls.name);
    assert.equal(error.details, "why");
    assert.equal(error.message, `${Status[code]}: why`);
    assert.equal(error.requestId, "req-1/0");
    assert.equal(errorForStatus(code, "item").constructor, cls);
  }
});

test("a code without a class is a bare PdvError keeping the code; OK is not an error", () => {
  const error = errorForStatus(Status.UNIMPLEMENTED, "no such method");
  assert.equal(error.constructor, PdvError);
  assert.equal(error.status, Status.UNIMPLEMENTED);
  assert.equal(errorForStatus(99, "").status, Status.UNKNOWN);
  assert.throws(() => errorForStatus(Status.OK), RangeError);
});

test("the client never shows its API key when printed or serialised", () => {
  const client = new PdvClient("127.0.0.1:1", { apiKey: API_KEY });
  try {
    for (const text of [inspect(client, { showHidden: true, depth: 10 }), JSON.stringify(client), String(client),
      inspect(client.events, { showHidden: true, depth: 10 }), JSON.stringify(client.events)]) {
      assert.ok(!text.includes(API_KEY), "API key in printed client");
    }
    assert.match(inspect(client), /apiKey: <redacted>/);
  } finally {
    client.close();
  }
});

test("a result's value stays out of console.log and JSON, and is there when read", () => {
  const result = new DetokenizeResult("pdv_tok", "email", CANARY, 0, "");
  assert.ok(!inspect(result).includes(CANARY) && !JSON.stringify(result).includes(CANARY));
  assert.equal(result.value, CANARY);
  assert.equal(result.toError(), undefined);
  assert.ok(new DetokenizeResult("pdv_x", "", "", Status.NOT_FOUND, "not found").toError() instanceof NotFound);
});

test("malformed arguments are refused before anything is sent, naming no value", async () => {
  const client = new PdvClient("127.0.0.1:1", { apiKey: API_KEY, timeoutMs: 1 });
  try {
    const bad = [{ fields: { email: 42 as unknown as string } }];
    await assert.rejects(client.tokenize(bad, { purpose: "p", source: "s" }), (e: Error) =>
      e instanceof TypeError && e.message.includes('"email"') && !e.message.includes("42"));
    await assert.rejects(client.tokenize([{ fields: {}, extra: CANARY } as never], { purpose: "p", source: "s" }),
      (e: Error) => e instanceof TypeError && !e.message.includes(CANARY));
    await assert.rejects(client.detokenize([[CANARY] as never], { purpose: "p" }), TypeError);
    await assert.rejects(client.lookupMany([["email"]] as never, { purpose: "p" }), TypeError);
    await assert.rejects(client.detokenize(["t"], { purpose: "p", batchSize: 0 }), RangeError);
    assert.throws(() => new PdvClient("127.0.0.1:1", { apiKey: "" }), RangeError);
    assert.throws(() => tlsCredentials({ ca: "x", cert: "y" }), TypeError);
  } finally {
    client.close();
  }
  await assert.rejects(client.lookup("email", "x", { purpose: "p" }), /closed/);
});

test("a server that is not there is Unavailable, within the deadline", async () => {
  const client = new PdvClient("127.0.0.1:1", { timeoutMs: 5_000 });
  try {
    await assert.rejects(client.lookup("email", "x@example.org", { purpose: "p" }), (e: Error) =>
      e instanceof Unavailable && !e.message.includes("x@example.org"));
  } finally {
    client.close();
  }
});
