// Against a real PDV server: run by tests/client/test_typescript.py, which starts the stack
// (OpenBao, a database, the gRPC server, and one with mTLS) and passes where it is in the
// environment. Without that environment these tests fail, naming what is missing.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { InvalidArgument, NotFound, PdvClient, PermissionDenied, type RecordInput, Unauthenticated, Unavailable } from "../src/index.js";
import { env } from "./support/env.js";

const PURPOSE = "benefits_eligibility";
const SOURCE = "311";
const EMAIL = "ada.ts@example.org";

function client(apiKey = env("PDV_API_KEY")): PdvClient {
  return new PdvClient(env("PDV_TARGET"), { apiKey, timeoutMs: 20_000 });
}

test("tokenize, detokenize and lookup round trip", async () => {
  const pdv = client();
  try {
    const [rec] = await pdv.tokenize([{ fields: { email: EMAIL, full_name: "Ada Lovelace" } }], { purpose: PURPOSE, source: SOURCE });
    assert.match(rec.subjectId, /^sub_/);
    assert.deepEqual(Object.keys(rec.tokens).sort(), ["email", "full_name"]);
    assert.equal(await pdv.detokenizeOne(rec.tokens.email, { purpose: PURPOSE }), EMAIL);
    const results = await pdv.detokenize([rec.tokens.full_name, [rec.tokens.email, "email"]], { purpose: PURPOSE });
    assert.deepEqual(results.map((r) => [r.field, r.value, r.code]), [["full_name", "Ada Lovelace", 0], ["email", EMAIL, 0]]);
    assert.deepEqual(await pdv.lookup("email", EMAIL, { purpose: PURPOSE }), [{ subjectId: rec.subjectId, token: rec.tokens.email }]);
    assert.deepEqual(await pdv.lookup("email", "nobody.ts@example.org", { purpose: PURPOSE }), []);
  } finally {
    pdv.close();
  }
});

test("a call larger than the batch size is sent in batches, and a retry with its request id is idempotent", async () => {
  const pdv = client();
  try {
    const records = Array.from({ length: 5 }, (_, i) => ({ fields: { email: `batch${i}.ts@example.org` } }));
    const options = { purpose: PURPOSE, source: SOURCE, requestId: "ts-batch-call", batchSize: 2 };
    const first = await pdv.tokenize(records, options);
    const again = await pdv.tokenize(records, options);
    assert.equal(first.length, 5);
    assert.deepEqual(again, first);
    const values = await pdv.detokenize(first.map((r) => r.tokens.email), { purpose: PURPOSE, batchSize: 2 });
    assert.deepEqual(values.map((r) => r.value), records.map((r) => r.fields.email));
  } finally {
    pdv.close();
  }
});

test("bad input is InvalidArgument (atomic) or an item error (partial), without echoing the value", async () => {
  const pdv = client();
  try {
    const bad: RecordInput[] = [{ fields: { email: EMAIL } }, { fields: { shoe_size: "secret-shoe-42" } }];
    await assert.rejects(pdv.tokenize(bad, { purpose: PURPOSE, source: SOURCE }), (e: Error) =>
      e instanceof InvalidArgument && e.requestId !== undefined && !e.message.includes("secret-shoe-42"));
    const partial = await pdv.tokenize(bad, { purpose: PURPOSE, source: SOURCE, mode: "partial" });
    assert.equal(partial[0].errors.length, 0);
    assert.deepEqual(partial[1].errors.map((e) => [e.index, e.field, e.code]), [[1, "shoe_size", 3]]);
    assert.ok(!JSON.stringify(partial).includes("secret-shoe-42"));
  } finally {
    pdv.close();
  }
});

test("a malformed token is InvalidArgument; a wrong API key is Unauthenticated", async () => {
  const pdv = client();
  const stranger = client("pdvk_not-a-key-of-this-server");
  try {
    await assert.rejects(pdv.detokenizeOne("not-a-token", { purpose: PURPOSE }), (e: Error) =>
      e instanceof InvalidArgument && /malformed token/.test(e.message));
    await assert.rejects(stranger.lookup("email", EMAIL, { purpose: PURPOSE }), Unauthenticated);
  } finally {
    pdv.close();
    stranger.close();
  }
});

test("shredding a subject makes its tokens NotFound, with a receipt the server verifies", async () => {
  const pdv = client();
  try {
    const [rec] = await pdv.tokenize([{ fields: { email: "shred.ts@example.org" } }], { purpose: PURPOSE, source: SOURCE });
    const [outcome] = await pdv.shredSubjects([rec.subjectId], { reason: "resident asked (ts client test)" });
    assert.equal(outcome.status, "shredded");
    assert.equal(await pdv.verifyReceipt(outcome.receipt, outcome.signature), true);
    assert.equal(await pdv.verifyReceipt(outcome.receipt.replace(rec.subjectId, "sub_forged"), outcome.signature), false);
    await assert.rejects(pdv.detokenizeOne(rec.tokens.email, { purpose: PURPOSE }), NotFound);
    const [again] = await pdv.shredSubjects([rec.subjectId], { reason: "again" });
    assert.equal(again.status, "already_shredded");
  } finally {
    pdv.close();
  }
});

test("an opt-out of a purpose is kept and hides the subject's values read for it", async () => {
  const pdv = client();
  try {
    const [rec] = await pdv.tokenize([{ fields: { email: "optout.ts@example.org" } }], { purpose: PURPOSE, source: SOURCE });
    assert.equal(await pdv.setConsent(rec.subjectId, PURPOSE, { optedOut: true }), true);
    assert.equal(await pdv.setConsent(rec.subjectId, PURPOSE, { optedOut: true }), false);
    assert.deepEqual(await pdv.getConsent(rec.subjectId), [PURPOSE]);
    await assert.rejects(pdv.detokenizeOne(rec.tokens.email, { purpose: PURPOSE }), NotFound);
    assert.equal(await pdv.setConsent(rec.subjectId, PURPOSE, { optedOut: false }), true);
    assert.equal(await pdv.detokenizeOne(rec.tokens.email, { purpose: PURPOSE }), "optout.ts@example.org");
  } finally {
    pdv.close();
  }
});

test("mTLS: a client certificate authenticates; an unlisted one is PermissionDenied; none fails the handshake", async () => {
  const target = env("PDV_TLS_TARGET");
  const ca = readFileSync(env("PDV_TLS_CA"));
  const pair = (prefix: string) => ({ ca, cert: readFileSync(env(`${prefix}_CERT`)), key: readFileSync(env(`${prefix}_KEY`)) });
  const listed = new PdvClient(target, { tls: pair("PDV_TLS"), timeoutMs: 20_000 });
  const unlisted = new PdvClient(target, { tls: pair("PDV_TLS_UNLISTED"), timeoutMs: 20_000 });
  const anonymous = new PdvClient(target, { tls: { ca }, timeoutMs: 20_000 });
  const plaintext = new PdvClient(target, { timeoutMs: 20_000 });
  try {
    const [rec] = await listed.tokenize([{ fields: { email: "tls.ts@example.org" } }], { purpose: PURPOSE, source: SOURCE });
    assert.equal(await listed.detokenizeOne(rec.tokens.email, { purpose: PURPOSE }), "tls.ts@example.org");
    await assert.rejects(unlisted.lookup("email", "x@example.org", { purpose: PURPOSE }), PermissionDenied);
    await assert.rejects(anonymous.lookup("email", "x@example.org", { purpose: PURPOSE }), Unavailable);
    await assert.rejects(plaintext.lookup("email", "x@example.org", { purpose: PURPOSE }), Unavailable);
  } finally {
    for (const c of [listed, unlisted, anonymous, plaintext]) c.close();
  }
});
