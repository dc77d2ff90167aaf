// events.subscribe() against a real PDV server (run by tests/client/test_typescript.py): a
// holder principal tokenizes residents, the admin shreds them, and the holder's subscription
// sees the events, resumes after a dropped connection and honours its acknowledgements.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type Socket, connect, createServer } from "node:net";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { OutOfRange, PdvClient, type PdvEvent, type RecordTokens } from "../src/index.js";
import { env } from "./support/env.js";

const PURPOSE = "benefits_eligibility";
const DEADLINE_MS = 60_000;
const holderKey = () => env("PDV_EVENTS_HOLDER_KEY");

function client(apiKey: string, target = env("PDV_TARGET")): PdvClient {
  return new PdvClient(target, { apiKey, timeoutMs: 20_000 });
}

interface Watch {
  readonly events: PdvEvent[];
  error: unknown;
  close(): Promise<void>;
}

/** Runs `pdv.events.subscribe()` in the background and keeps what it yields, or how it failed. */
function collect(pdv: PdvClient): Watch {
  const stop = new AbortController();
  const watch: Watch = { events: [], error: undefined, close: async () => { stop.abort(); await loop; } };
  const loop = (async () => {
    try {
      for await (const event of pdv.events.subscribe({ signal: stop.signal, retryMs: 100, maxRetryMs: 1_000 })) {
        watch.events.push(event);
      }
    } catch (error) {
      watch.error = error;
    }
  })();
  return watch;
}

/** The first `count` events the watch received; throws if its subscription failed or the deadline passed. */
async function received(watch: Watch, count: number, what: string): Promise<PdvEvent[]> {
  const deadline = Date.now() + DEADLINE_MS;
  while (watch.error === undefined && watch.events.length < count) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(50);
  }
  if (watch.error !== undefined) {
    throw watch.error;
  }
  return watch.events.slice(0, count);
}

/** A TCP proxy to the server whose connections can be cut, as a network drop would. */
async function proxy(target: string): Promise<{ target: string; connections: () => number; drop: () => void; close: () => void }> {
  const at = target.lastIndexOf(":");
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((inbound) => {
    connections += 1;
    const outbound = connect(Number(target.slice(at + 1)), target.slice(0, at));
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket)).on("error", () => undefined);
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const drop = () => sockets.forEach((s) => s.destroy());
  return { target: `127.0.0.1:${port}`, connections: () => connections, drop, close: () => { server.close(); drop(); } };
}

async function residents(pdv: PdvClient, tag: string, n: number): Promise<RecordTokens[]> {
  const records = Array.from({ length: n }, (_, i) => ({ fields: { email: `${tag}${i}.ts@example.org`, full_name: `Ada Events ${"ABCDEF"[i]}` } }));
  return pdv.tokenize(records, { purpose: PURPOSE, source: "311" });
}

const pairs = (tokens: Record<string, string>) => Object.entries(tokens).sort();
const eventPairs = (event: PdvEvent) => event.tokens.map((t) => [t.field, t.token]).sort();

test("a holder receives one event per shred, naming its tokens and the receipt, never a value", async () => {
  const holder = client(holderKey());
  const admin = client(env("PDV_API_KEY"));
  const watch = collect(holder);
  try {
    const [rec] = await residents(holder, "events-shred", 1);
    const [outcome] = await admin.shredSubjects([rec.subjectId], { reason: "resident asked (ts events test)" });
    const [event] = await received(watch, 1, "the shred's event");
    assert.equal(event.kind, "shredded");
    assert.deepEqual(eventPairs(event), pairs(rec.tokens));
    assert.equal(event.receiptId, createHash("sha256").update(outcome.receipt).digest("hex"));
    assert.ok(event.at instanceof Date && Math.abs(Date.now() - event.at.getTime()) < 3_600_000);
    const shown = JSON.stringify(watch.events);
    assert.ok(!shown.includes("events-shred0.ts@example.org") && !shown.includes("Ada Events"), "a value in an event");
  } finally {
    await watch.close();
    holder.close();
    admin.close();
  }
});

test("after the connection drops, the subscription resumes after the last event handled; acknowledged events never come again", async () => {
  const cut = await proxy(env("PDV_TARGET"));
  const holder = client(holderKey(), cut.target);
  const direct = client(holderKey());
  const admin = client(env("PDV_API_KEY"));
  let watch = collect(holder);
  try {
    const [first, second, third, fourth] = await residents(direct, "events-resume", 4);
    await admin.shredSubjects([first.subjectId], { reason: "resident asked" });
    await received(watch, 1, "the first shred's event");
    cut.drop();
    await admin.shredSubjects([second.subjectId], { reason: "resident asked" });
    await admin.shredSubjects([third.subjectId], { reason: "resident asked" });
    const events = await received(watch, 3, "the shreds after the drop");
    await watch.close();
    assert.ok(cut.connections() >= 2, "the client connected again after the drop");
    assert.deepEqual(watch.events.map(eventPairs), [first, second, third].map((r) => pairs(r.tokens)));
    const cursors = events.map((e) => BigInt(e.cursor));
    assert.ok(cursors[0] < cursors[1] && cursors[1] < cursors[2], "cursors in order");
    // A new subscription (default cursor: after the last acknowledged) sees only what comes
    // next: events come in order, so a repeated one would come before the fourth shred's.
    watch = collect(direct);
    await admin.shredSubjects([fourth.subjectId], { reason: "resident asked" });
    const [next] = await received(watch, 1, "the fourth shred's event");
    assert.deepEqual(eventPairs(next), pairs(fourth.tokens));
  } finally {
    await watch.close();
    cut.close();
    for (const c of [holder, direct, admin]) c.close();
  }
});

test("leaving the loop leaves the event in hand unacknowledged: it comes again", async () => {
  const holder = client(holderKey());
  const admin = client(env("PDV_API_KEY"));
  try {
    const [rec] = await residents(holder, "events-break", 1);
    await admin.shredSubjects([rec.subjectId], { reason: "resident asked" });
    let inHand: PdvEvent | undefined;
    for await (const event of holder.events.subscribe()) {
      inHand = event;
      break;
    }
    assert.ok(inHand !== undefined);
    const watch = collect(holder);
    try {
      const [again] = await received(watch, 1, "the event again");
      assert.equal(again.cursor, inHand.cursor);
      assert.deepEqual(eventPairs(again), pairs(rec.tokens));
    } finally {
      await watch.close();
    }
  } finally {
    holder.close();
    admin.close();
  }
});

test("a cursor older than the events kept is OutOfRange, with the server's message saying where to resume", async () => {
  const lagging = client(env("PDV_EVENTS_LAGGING_KEY"));
  try {
    const subscription = lagging.events.subscribe({ retryMs: 100 });
    await assert.rejects(subscription.next(), (e: Error) =>
      e instanceof OutOfRange && /event_retention_seconds/.test(e.details) && /subscribe with cursor "\d+"/.test(e.details));
  } finally {
    lagging.close();
  }
});
