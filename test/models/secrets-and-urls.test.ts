/**
 * The model layer: secrets in URLs/headers, and error messages that
 * name what is wrong. Each test pins a defect found in review.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelCandidate } from "../../src/definitions/types.js";
import { createModelClient, describeModel, type ModelRequest } from "../../src/models/index.js";

const PASSWORD = "hunter2-Pa55word";

function candidate(over: Partial<ModelCandidate>): ModelCandidate {
  return {
    provider: "openai-compatible",
    model: "m",
    requiresEnv: [],
    location: "local",
    price: { inputPerMTok: 0, outputPerMTok: 0 },
    timeoutMs: 5_000,
    maxRetries: 0,
    ...over,
  };
}

const request = (): ModelRequest =>
  ({ agent: "support", messages: [{ role: "user", content: "hi" }], tools: [] }) as unknown as ModelRequest;

async function failure(c: ModelCandidate, env: NodeJS.ProcessEnv = {}): Promise<{ code: string; message: string }> {
  const client = createModelClient("assistant", c, { scriptsDir: "/nonexistent", env });
  try {
    await client.generate(request());
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error("expected the call to fail");
}

// A tiny server whose answers are chosen per test.
let mode: "echo-credentials" | "html-200" = "html-200";
let server: http.Server;
let base: string;
beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      if (mode === "echo-credentials") {
        res.writeHead(401, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: `invalid gateway key ${String(req.headers["x-gateway-key"])}` } }));
      } else {
        res.writeHead(200, { "content-type": "text/html" });
        res.end("<html><body>Please log in to the proxy</body></html>");
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe("secrets never enter an error message or a description", () => {
  it("a password in base_url (http://user:pass@host) is not shown in the model error", async () => {
    // Once: `the model call failed: Request cannot be constructed from a URL that includes
    // credentials: http://admin:hunter2-Pa55word@127.0.0.1:9/v1/chat/completions` — the password ends
    // up in the run's error, its event log and `outpost runs show`.
    const e = await failure(candidate({ baseUrl: `http://admin:${PASSWORD}@127.0.0.1:9/v1` }));
    expect(e.message).not.toContain(PASSWORD);
  });

  it("a password in base_url is not shown in the model description (the `outpost up` banner)", () => {
    const client = createModelClient("assistant", candidate({ baseUrl: `http://admin:${PASSWORD}@127.0.0.1:9/v1` }), {
      scriptsDir: "/nonexistent",
      env: {},
    });
    expect(describeModel(client)).not.toContain(PASSWORD);
  });

  it("a header value of an openai candidate (e.g. a gateway key from ${VAR}) is redacted like openai-compatible ones", async () => {
    mode = "echo-credentials";
    const secret = "gw-live-0123456789abcdef";
    const e = await failure(candidate({ provider: "openai", apiKeyEnv: "K", baseUrl: base, headers: { "x-gateway-key": secret } }), {
      K: "plain-key-value",
    });
    expect(e.code).toBe("auth");
    expect(e.message).not.toContain(secret);
  });
});

describe("model errors say what is wrong", () => {
  it("a base_url without http:// names the URL it could not use", async () => {
    // Once: `model "assistant" (openai-compatible m): the model call failed: Invalid URL` (code unknown).
    const e = await failure(candidate({ baseUrl: "127.0.0.1:11434/v1" }));
    expect(e.message).toContain("127.0.0.1:11434/v1");
  });

  it("an HTTP 200 answer that is not JSON is not reported as 'the provider rejected the request (HTTP 200 …)'", async () => {
    mode = "html-200";
    const e = await failure(candidate({ baseUrl: base }));
    expect(e.message).not.toMatch(/rejected the request \(HTTP 200/);
  });
});
