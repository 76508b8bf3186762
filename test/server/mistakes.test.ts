/**
 * What clients get wrong, and junk: every answer is the JSON error envelope
 * with a readable message, and the process keeps serving.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { http, type Stack, startStack } from "./helpers.js";

let stack: Stack;
let url: string;

beforeAll(async () => {
  stack = await startStack();
  url = stack.url;
});
afterAll(async () => {
  await stack?.close();
});

const expectError = (res: { status: number; body: any; text: string }, status: number, code: string) => {
  expect(res.status, res.text).toBe(status);
  expect(res.body, res.text).toEqual({
    error: { code, message: expect.any(String), ...(res.body?.error?.hint !== undefined ? { hint: expect.any(String) } : {}) },
  });
  expect(res.text).not.toMatch(/\n\s+at /); // never a stack trace
  return res.body.error as { code: string; message: string; hint?: string };
};

describe("bad bodies for POST /v1/runs", () => {
  it("missing fields are named, with an example of a correct body", async () => {
    // agent may be left out only to continue a session (its current agent answers).
    const e = expectError(await http(url, "POST", "/v1/runs", { body: { input: "hi" } }), 400, "invalid_request");
    expect(e.message).toBe("agent is required to start a new session");
    expect(e.hint).toContain("pass session_id");
    const none = expectError(await http(url, "POST", "/v1/runs", { body: {} }), 400, "invalid_request");
    expect(none.message).toBe("body.input: required");
    expect(none.hint).toContain('{"agent": "<name>", "input": "..."}');
  });

  it("an unknown field is rejected by name (not silently dropped)", async () => {
    const e = expectError(
      await http(url, "POST", "/v1/runs", { body: { agent: "support", input: "hi", inptu: "typo" } }),
      400,
      "invalid_request",
    );
    expect(e.message).toBe("body.inptu: unknown field");
  });

  it("wrong types are rejected, never coerced", async () => {
    const n = expectError(await http(url, "POST", "/v1/runs", { body: { agent: "support", input: 42 } }), 400, "invalid_request");
    expect(n.message).toBe("body.input: must be a string");
    const arr = expectError(await http(url, "POST", "/v1/runs", { body: { agent: ["support"], input: "x" } }), 400, "invalid_request");
    expect(arr.message).toBe("body.agent: must be a string");
    const empty = expectError(await http(url, "POST", "/v1/runs", { body: { agent: "", input: "x" } }), 400, "invalid_request");
    expect(empty.message).toBe("body.agent: must not be empty");
    const list = expectError(await http(url, "POST", "/v1/runs", { body: [1, 2] }), 400, "invalid_request");
    expect(list.message).toBe("body: must be an object");
    const nul = expectError(
      await http(url, "POST", "/v1/runs", { body: "null", headers: { "content-type": "application/json" } }),
      400,
      "invalid_request",
    );
    expect(nul.message).toMatch(/^body/);
  });

  it("an unknown agent is a 404 that lists the known ones", async () => {
    const e = expectError(await http(url, "POST", "/v1/runs", { body: { agent: "sales", input: "hi" } }), 404, "not_found");
    expect(e.message).toContain('"sales"');
    expect(e.hint).toContain("support");
  });

  it("starting a run in an unknown session is a 404", async () => {
    const e = expectError(
      await http(url, "POST", "/v1/runs", { body: { agent: "support", input: "hi", session_id: "ses_nope" } }),
      404,
      "not_found",
    );
    expect(e.message).toContain("ses_nope");
  });

  it("an empty Idempotency-Key header is rejected", async () => {
    const e = expectError(
      await http(url, "POST", "/v1/runs", { body: { agent: "support", input: "hi" }, headers: { "idempotency-key": "" } }),
      400,
      "invalid_request",
    );
    expect(e.message).toBe("headers.idempotency-key: must not be empty");
  });
});

describe("bad bodies elsewhere", () => {
  it("approvals: a decision other than approve/deny is named with the allowed values", async () => {
    const e = expectError(await http(url, "POST", "/v1/approvals/apr_x", { body: { decision: "yes" } }), 400, "invalid_request");
    expect(e.message).toBe('body.decision: must be one of "approve", "deny"');
    expect(e.hint).toContain('"decision"');
    const none = expectError(await http(url, "POST", "/v1/approvals/apr_x"), 400, "invalid_request");
    expect(none.message).toBe("body.decision: required");
  });

  it("external events need a name; cancel takes only a string reason", async () => {
    expect(expectError(await http(url, "POST", "/v1/runs/run_x/events", { body: { payload: 1 } }), 400, "invalid_request").message).toBe(
      "body.name: required",
    );
    expect(expectError(await http(url, "POST", "/v1/runs/run_x/cancel", { body: { reason: 5 } }), 400, "invalid_request").message).toBe(
      "body.reason: must be a string",
    );
    expect(expectError(await http(url, "POST", "/v1/runs/run_x/cancel", { body: { force: true } }), 400, "invalid_request").message).toBe(
      "body.force: unknown field",
    );
  });
});

describe("bad queries and ids", () => {
  it("limit must be 1..200 and an integer; status must be a known one; unknown parameters are named", async () => {
    expect(expectError(await http(url, "GET", "/v1/runs?limit=500"), 400, "invalid_request").message).toBe("query.limit: must be <= 200");
    expect(expectError(await http(url, "GET", "/v1/runs?limit=0"), 400, "invalid_request").message).toBe("query.limit: must be >= 1");
    expect(expectError(await http(url, "GET", "/v1/runs?limit=ten"), 400, "invalid_request").message).toBe(
      "query.limit: must be an integer",
    );
    expect(expectError(await http(url, "GET", "/v1/runs?status=done"), 400, "invalid_request").message).toMatch(
      /^query\.status: must be one of "queued", /,
    );
    expect(expectError(await http(url, "GET", "/v1/runs?agnet=support"), 400, "invalid_request").message).toBe(
      "query.agnet: unknown field",
    );
    expect(expectError(await http(url, "GET", "/v1/runs/run_x/events?after=-1"), 400, "invalid_request").message).toBe(
      "query.after: must be >= 0",
    );
    expect(expectError(await http(url, "GET", "/v1/approvals?status=maybe"), 400, "invalid_request").message).toMatch(/^query\.status/);
  });

  it("unknown run ids are 404s with a hint, on every run route", async () => {
    for (const path of ["/v1/runs/run_nope", "/v1/runs/run_nope/events", "/v1/runs/run_nope/stream"]) {
      const e = expectError(await http(url, "GET", path), 404, "not_found");
      expect(e.message).toBe('run "run_nope" does not exist');
      expect(e.hint).toBeTruthy();
    }
  });

  it("an unknown session id is a 404", async () => {
    const e = expectError(await http(url, "GET", "/v1/sessions/ses_nope"), 404, "not_found");
    expect(e.message).toContain("ses_nope");
  });

  it("a garbage Last-Event-ID is a 400", async () => {
    const run = (await http(url, "POST", "/v1/runs", { body: { agent: "support", input: "hi" } })).body;
    expect(
      expectError(await http(url, "GET", `/v1/runs/${run.id}/stream`, { headers: { "last-event-id": "abc" } }), 400, "invalid_request")
        .message,
    ).toBe("headers.last-event-id: has the wrong format");
  });

  it("unknown routes and methods are 404s in the envelope", async () => {
    const e = expectError(await http(url, "GET", "/v2/runs"), 404, "not_found");
    expect(e.message).toBe("no route GET /v2/runs");
    expect(e.hint).toContain("/docs");
    expectError(await http(url, "DELETE", "/v1/runs/run_x"), 404, "not_found");
    expectError(await http(url, "GET", "/"), 404, "not_found");
  });
});

describe("transport mistakes", () => {
  it("malformed JSON is a 400", async () => {
    const e = expectError(
      await http(url, "POST", "/v1/runs", { body: '{"agent": "support", "input": ', headers: { "content-type": "application/json" } }),
      400,
      "invalid_request",
    );
    expect(e.message).toBe("body is not valid JSON");
  });

  it("an empty body declared as JSON is a 400", async () => {
    const e = expectError(
      await http(url, "POST", "/v1/runs", { body: "", headers: { "content-type": "application/json" } }),
      400,
      "invalid_request",
    );
    expect(e.message).toContain("empty");
  });

  it("prototype-poisoning JSON is refused", async () => {
    const res = await http(url, "POST", "/v1/runs", {
      body: '{"agent":"support","input":"x","__proto__":{"polluted":1}}',
      headers: { "content-type": "application/json" },
    });
    expectError(res, 400, "invalid_request");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("a non-JSON content type is a 415", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/xml"]) {
      const e = expectError(
        await http(url, "POST", "/v1/runs", { body: "agent=support", headers: { "content-type": type } }),
        415,
        "invalid_request",
      );
      expect(e.message).toContain(type);
      expect(e.hint).toContain("application/json");
    }
  });

  it("a body over 1 MiB is a 413, and the server goes on", async () => {
    const e = expectError(
      await http(url, "POST", "/v1/runs", { body: { agent: "support", input: "x".repeat(1024 * 1024 + 10) } }),
      413,
      "payload_too_large",
    );
    expect(e.message).toContain("1048576");
    expect((await http(url, "GET", "/v1/health")).status).toBe(200);
  });

  it("a body just under the limit is accepted", async () => {
    const res = await http(url, "POST", "/v1/runs", { body: { agent: "support", input: "y".repeat(1024 * 1024 - 100) } });
    expect(res.status).toBe(201);
    await http(url, "POST", `/v1/runs/${res.body.id}/cancel`, { body: {} });
  });

  it("the body limit is configurable", async () => {
    const small = await startStack({ bodyLimit: 100 });
    try {
      const e = expectError(
        await http(small.url, "POST", "/v1/runs", { body: { agent: "support", input: "z".repeat(200) } }),
        413,
        "payload_too_large",
      );
      expect(e.message).toContain("100 bytes");
    } finally {
      await small.close();
    }
  });
});

describe("junk", () => {
  const raw = (payload: string | Buffer, { end = true } = {}) =>
    new Promise<string>((resolve) => {
      const socket = net.connect(Number(new URL(url).port), "127.0.0.1");
      let out = "";
      socket.on("data", (d) => (out += d.toString()));
      socket.on("error", () => resolve(out));
      socket.on("close", () => resolve(out));
      socket.on("connect", () => {
        socket.write(payload);
        if (end) socket.end();
        else setTimeout(() => socket.destroy(), 50);
      });
    });

  it("survives garbage bytes, broken HTTP, truncated bodies and abrupt disconnects", async () => {
    const answers = await Promise.all([
      raw(Buffer.from([0, 1, 2, 3, 255, 254, 13, 10, 13, 10])),
      raw("GET /v1/health HTTP/9.9\r\n\r\n"),
      raw('POST /v1/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"agent":', { end: false }),
      raw('POST /v1/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{"agent": "support"}'),
      raw("POST /v1/runs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n"),
      raw(`GET /v1/runs/${"%".repeat(10)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
      raw(`GET /v1/runs?limit=${"9".repeat(5000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
      raw(`GET /v1/agents/${"a".repeat(20_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    ]);
    // Whatever came back was HTTP, and never a stack trace.
    for (const a of answers) {
      if (a) expect(a).toMatch(/^HTTP\/1\.1 \d{3}/);
      expect(a).not.toMatch(/\n\s+at /);
    }
    const res = await http(url, "GET", "/v1/health");
    expect(res.status).toBe(200);
  });

  it("a malformed percent-encoding in the path is a 400 or 404 envelope", async () => {
    const res = await http(url, "GET", "/v1/runs/%E0%A4%A");
    expect([400, 404]).toContain(res.status);
    expectError(res, res.status, res.body.error.code);
  });

  it("deeply nested JSON does not crash the server", async () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    const res = await http(url, "POST", "/v1/runs", { body: deep, headers: { "content-type": "application/json" } });
    expect(res.status).toBe(400);
    expectError(res, 400, "invalid_request");
    expect((await http(url, "GET", "/v1/health")).status).toBe(200);
  });

  it("many concurrent bad requests and aborted streams leave the server healthy", async () => {
    const run = (await http(url, "POST", "/v1/runs", { body: { agent: "support", input: "Please refund order 1042" } })).body;
    const aborts = Array.from({ length: 20 }, async () => {
      const controller = new AbortController();
      const res = await fetch(`${url}/v1/runs/${run.id}/stream`, { signal: controller.signal });
      const reader = res.body!.getReader();
      await reader.read();
      controller.abort();
    });
    const bad = Array.from({ length: 50 }, (_, i) =>
      http(url, "POST", "/v1/runs", { body: i % 2 ? "{" : { agent: i }, headers: { "content-type": "application/json" } }),
    );
    const results = await Promise.all([...bad, ...aborts]);
    expect(results.slice(0, 50).every((r) => (r as { status: number }).status === 400)).toBe(true);
    expect((await http(url, "GET", "/v1/health")).status).toBe(200);
    await http(url, "POST", `/v1/runs/${run.id}/cancel`, { body: {} });
  });
});
