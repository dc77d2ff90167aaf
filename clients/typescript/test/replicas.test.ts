// Two PDV replicas on one PostgreSQL database, one client balancing every call over both
// with grpc-js's round_robin (what README shows for a headless Service). Run by
// tests/client/test_typescript.py, which then checks that both replicas answered.
import assert from "node:assert/strict";
import { test } from "node:test";

import { PdvClient } from "../src/index.js";
import { env } from "./support/env.js";

const PURPOSE = "benefits_eligibility";
const ROUND_ROBIN = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] });

test("round_robin over two replicas: each call is answered, and what one stored the other reads", async () => {
  const pdv = new PdvClient(env("PDV_REPLICAS_TARGET"), {
    apiKey: env("PDV_REPLICAS_API_KEY"),
    timeoutMs: 20_000,
    channelOptions: { "grpc.service_config": ROUND_ROBIN },
  });
  try {
    const stored: [string, string][] = [];
    for (let i = 0; i < 20; i++) {
      const email = `replica${i}.ts@example.org`;
      const [rec] = await pdv.tokenize([{ fields: { email } }], { purpose: PURPOSE, source: "311", requestId: `ts-replicas-${i}` });
      stored.push([rec.tokens.email, email]);
    }
    // One read per token, so consecutive reads alternate replicas as the writes did.
    for (const [token, email] of stored) {
      assert.equal(await pdv.detokenizeOne(token, { purpose: PURPOSE }), email);
    }
  } finally {
    pdv.close();
  }
});
