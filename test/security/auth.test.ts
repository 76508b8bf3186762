/**
 * Authentication and roles over real HTTP: API keys (valid, revoked, expired, unknown), OIDC tokens signed with
 * jose and checked against a JWKS served by a local HTTP server, the role of every route, the keys API, and the
 * per-key rate limit. The stack here is built without the tests' credential-adding fetch, so nothing is sent
 * that a test does not name.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProject } from "../../src/definitions/index.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { IdentityStore } from "../../src/security/identity/index.js";
import type { Role } from "../../src/security/types.js";
import { type AuthFailedEvent, ROUTE_ROLES } from "../../src/server/auth.js";
import { createServer, listen } from "../../src/server/index.js";
import { TEST_ADMIN_KEY } from "../helpers/auth.js";
import { http, SHOP } from "../server/helpers.js";

const ISSUER = "https://login.example.test";
const AUDIENCE = "outpost-api";

interface Stack {
  url: string;
  outpost: Outpost;
  server: FastifyInstance;
  failures: AuthFailedEvent[];
  close(): Promise<void>;
}

async function stack(options: { jwksUrl?: string; perMinute?: number } = {}): Promise<Stack> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "outpost-auth-"));
  const project = await loadProject(SHOP);
  if (options.jwksUrl) {
    project.auth = {
      oidc: { issuer: ISSUER, audience: AUDIENCE, jwksUrl: options.jwksUrl, rolesClaim: "outpost.roles", groupsClaim: "groups" },
    };
  }
  const env: NodeJS.ProcessEnv = { ...process.env, OUTPOST_ADMIN_KEY: TEST_ADMIN_KEY };
  delete env.OPENAI_API_KEY;
  delete env.OUTPOST_LLM_BASE_URL;
  delete env.OUTPOST_DATABASE_URL;
  const outpost = await startOutpost({ project, dataDir, env });
  const failures: AuthFailedEvent[] = [];
  const server = await createServer(outpost, {
    version: "test",
    onAuthFailed: (e) => failures.push(e),
    ...(options.perMinute ? { rateLimitPerMinute: options.perMinute } : {}),
  });
  const url = await listen(server, { host: "127.0.0.1", port: 0 });
  return {
    url,
    outpost,
    server,
    failures,
    async close() {
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

let s: Stack;
let jwks: Server;
let jwksUrl: string;
let signingKey: CryptoKey;
let strangerKey: CryptoKey;
const keys: Partial<Record<Role, string>> = {};

beforeAll(async () => {
  const pair = await generateKeyPair("RS256");
  signingKey = pair.privateKey;
  strangerKey = (await generateKeyPair("RS256")).privateKey;
  const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  jwks = createHttpServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
  const address = jwks.address();
  jwksUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/jwks.json`;
  s = await stack({ jwksUrl });
  for (const role of ["builder", "operator", "auditor", "viewer"] as const) {
    keys[role] = (
      await s.outpost.security.identities.store.createKey({ workspace: "acme", name: role, roles: [role], createdBy: "test" })
    ).key;
  }
  keys.admin = TEST_ADMIN_KEY;
});

afterAll(async () => {
  await s?.close();
  await new Promise((resolve) => jwks?.close(resolve));
});

function token(
  claims: Record<string, unknown>,
  o: { issuer?: string; audience?: string; expires?: string | number; key?: CryptoKey; sub?: string } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "RS256", kid: "k1" })
    .setIssuer(o.issuer ?? ISSUER)
    .setAudience(o.audience ?? AUDIENCE)
    .setSubject(o.sub ?? "alice")
    .setIssuedAt()
    .setExpirationTime(o.expires ?? "5m")
    .sign(o.key ?? signingKey);
}

describe("without credentials", () => {
  it("only GET /v1/health answers; everything else is a 401 with WWW-Authenticate and a hint", async () => {
    expect((await http(s.url, "GET", "/v1/health")).status).toBe(200);
    for (const [method, route] of [
      ["GET", "/openapi.json"],
      ["GET", "/docs"],
      ["GET", "/v1/agents"],
      ["GET", "/v1/runs"],
      ["POST", "/v1/runs"],
      ["GET", "/v1/models"],
      ["POST", "/v1/chat/completions"],
      ["POST", "/mcp"],
      ["GET", "/a2a/support/.well-known/agent-card.json"],
      ["POST", "/a2a/support"],
      ["GET", "/v1/keys"],
      ["GET", "/v1/no-such-route"],
    ]) {
      const res = await http(s.url, method, route, method === "POST" ? { body: {} } : {});
      expect(res.status, `${method} ${route}`).toBe(401);
      expect(res.headers.get("www-authenticate"), `${method} ${route}`).toMatch(/^Bearer/);
      expect(res.body.error.code).toBe("unauthorized");
      expect(res.body.error.hint).toMatch(/outpost keys create/);
    }
    expect(s.failures.at(-1)).toMatchObject({ reason: "no_credentials", method: "GET", url: "/v1/no-such-route" });
  });
});

describe("API keys", () => {
  it("a key works as Authorization: Bearer and as x-api-key; a wrong one is a 401 reported without the key", async () => {
    expect((await http(s.url, "GET", "/v1/runs", { headers: bearer(TEST_ADMIN_KEY) })).status).toBe(200);
    expect((await http(s.url, "GET", "/v1/runs", { headers: { "x-api-key": keys.viewer as string } })).status).toBe(200);
    const wrong = `opk_${"x".repeat(40)}`;
    const res = await http(s.url, "GET", "/v1/runs", { headers: bearer(wrong) });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
    const failure = s.failures.at(-1);
    expect(failure).toMatchObject({ reason: "unknown_key", keyPrefix: "opk_xxxxxx" });
    expect(JSON.stringify(s.failures)).not.toContain(wrong);
  });

  it("a revoked key stops working at once; an expired key does not work", async () => {
    const identities = s.outpost.security.identities.store;
    const { key, record } = await identities.createKey({ workspace: "acme", name: "temp", roles: ["viewer"], createdBy: "test" });
    expect((await http(s.url, "GET", "/v1/runs", { headers: bearer(key) })).status).toBe(200);
    await identities.revokeKey("acme", record.id);
    const revoked = await http(s.url, "GET", "/v1/runs", { headers: bearer(key) });
    expect(revoked.status).toBe(401);
    expect(revoked.body.error.message).toContain("revoked");
    expect(s.failures.at(-1)?.reason).toBe("revoked");

    // Created two hours ago, expiring an hour ago.
    const past = new IdentityStore(s.outpost.store.domain, () => Date.now() - 2 * 3_600_000);
    const old = await past.createKey({
      workspace: "acme",
      name: "old",
      roles: ["viewer"],
      createdBy: "test",
      expiresAt: Date.now() - 3_600_000,
    });
    const expired = await http(s.url, "GET", "/v1/runs", { headers: bearer(old.key) });
    expect(expired.status).toBe(401);
    expect(s.failures.at(-1)?.reason).toBe("expired");
  });

  it("keys are stored as SHA-256 only, and last_used_at is set when a key is used", async () => {
    const rows = await s.outpost.store.domain.db.selectFrom("api_keys").selectAll().execute();
    const stored = JSON.stringify(rows);
    for (const k of Object.values(keys)) expect(stored).not.toContain(k);
    const viewer = rows.find((r) => r.name === "viewer");
    expect(viewer?.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(viewer?.last_used_at).not.toBeNull();
  });

  it("the keys API: an admin creates a key (shown once), lists keys without secrets, revokes one", async () => {
    const created = await http(s.url, "POST", "/v1/keys", {
      headers: bearer(TEST_ADMIN_KEY),
      body: { name: "ci", roles: ["operator"], groups: ["finance"] },
    });
    expect(created.status).toBe(201);
    expect(created.body.key).toMatch(/^opk_[0-9A-Za-z]{32,}$/);
    expect(created.body).toMatchObject({ workspace: "acme", name: "ci", roles: ["operator"], groups: ["finance"], revoked_at: null });
    expect(created.body.created_by).toMatch(/^key:/);
    const list = await http(s.url, "GET", "/v1/keys", { headers: bearer(created.body.key) });
    expect(list.status).toBe(403); // an operator is no admin
    expect(list.body.error.message).toContain("needs the role admin");
    const listed = await http(s.url, "GET", "/v1/keys", { headers: bearer(TEST_ADMIN_KEY) });
    expect(listed.body.map((k: { name: string }) => k.name)).toContain("ci");
    expect(listed.text).not.toContain(created.body.key);
    expect(listed.text).not.toMatch(/"(key|hash)"/);
    const revoked = await http(s.url, "DELETE", `/v1/keys/${created.body.id}`, { headers: bearer(TEST_ADMIN_KEY) });
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked_at).not.toBeNull();
    expect((await http(s.url, "GET", "/v1/runs", { headers: bearer(created.body.key) })).status).toBe(401);
    expect((await http(s.url, "DELETE", "/v1/keys/key_nope", { headers: bearer(TEST_ADMIN_KEY) })).status).toBe(404);
  });
});

describe("OIDC tokens", () => {
  it("a token from the issuer is the caller user:<sub> with the roles of its claim; its runs record who started them", async () => {
    const jwt = await token({ outpost: { roles: ["operator", "not-a-role"] }, groups: ["finance"], email: "alice@example.test" });
    const res = await http(s.url, "POST", "/v1/runs", { headers: bearer(jwt), body: { agent: "support", input: "hello" } });
    expect(res.status).toBe(201);
    const run = await s.outpost.store.getRun("acme", res.body.id);
    expect(run?.startedBy).toBe("user:alice");
    // operator may not manage keys
    const keysRes = await http(s.url, "GET", "/v1/keys", { headers: bearer(jwt) });
    expect(keysRes.status).toBe(403);
    expect(keysRes.body.error.message).toContain("alice@example.test has operator");
  });

  it("wrong issuer, wrong audience, an expired token or another signer: 401, each reported with its reason", async () => {
    const cases: [string, Promise<string>, string][] = [
      ["issuer", token({ outpost: { roles: ["admin"] } }, { issuer: "https://evil.example.test" }), "wrong_issuer"],
      ["audience", token({ outpost: { roles: ["admin"] } }, { audience: "someone-else" }), "wrong_audience"],
      ["expired", token({ outpost: { roles: ["admin"] } }, { expires: Math.floor(Date.now() / 1000) - 600 }), "expired"],
      ["signer", token({ outpost: { roles: ["admin"] } }, { key: strangerKey }), "bad_signature"],
    ];
    for (const [label, jwt, reason] of cases) {
      const res = await http(s.url, "GET", "/v1/runs", { headers: bearer(await jwt) });
      expect(res.status, label).toBe(401);
      expect(res.headers.get("www-authenticate"), label).toContain("invalid_token");
      expect(s.failures.at(-1)?.reason, label).toBe(reason);
    }
    const garbage = await http(s.url, "GET", "/v1/runs", { headers: bearer("not.a.jwt") });
    expect(garbage.status).toBe(401);
  });
});

describe("roles", () => {
  /** A request that passes authentication and roles for each route; what it answers after that does not matter. */
  const probe = (route: string) => route.replace(/:(\w+)/g, "nope_$1");

  it("every route answers each role as ROUTE_ROLES says: 403 naming the role needed, or through", async () => {
    // Routes of parts this project does not use (e.g. the vault's) are not registered here.
    const routes = Object.entries(ROUTE_ROLES).filter(([route, roles]) => {
      const [method, url] = route.split(" ") as [string, string];
      return roles !== "public" && s.server.hasRoute({ method: method as "GET", url });
    });
    expect(routes.length).toBeGreaterThan(25);
    const mismatches: string[] = [];
    for (const [route, allowed] of routes) {
      const [method, pathname] = route.split(" ") as [string, string];
      for (const role of ["builder", "operator", "auditor", "viewer", "admin"] as const) {
        const res = await http(s.url, method, probe(pathname), {
          headers: bearer(keys[role] as string),
          ...(method === "POST" || method === "PUT" ? { body: {} } : {}),
        });
        // A webhook delivery without a signature needs a key that may start runs.
        const needed = (allowed === "signed" ? ["builder", "operator"] : allowed) as readonly Role[];
        const expected = role === "admin" || needed.includes(role);
        const through = res.status !== 403 && res.status !== 401;
        if (through !== expected) mismatches.push(`${route} as ${role}: ${res.status}`);
        if (!expected && res.status === 403) {
          expect(res.body.error.message).toContain(`needs the role ${needed.join(" or ")}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
  });

  it("a viewer reads but cannot start, cancel, send events or decide approvals", async () => {
    const v = bearer(keys.viewer as string);
    expect((await http(s.url, "GET", "/v1/agents", { headers: v })).status).toBe(200);
    expect((await http(s.url, "POST", "/v1/runs", { headers: v, body: { agent: "support", input: "hi" } })).status).toBe(403);
    const op = await http(s.url, "POST", "/v1/runs", { headers: bearer(keys.operator as string), body: { agent: "support", input: "hi" } });
    expect(op.status).toBe(201);
    expect((await http(s.url, "POST", `/v1/runs/${op.body.id}/cancel`, { headers: v, body: {} })).status).toBe(403);
    expect((await http(s.url, "POST", `/v1/runs/${op.body.id}/events`, { headers: v, body: { name: "x" } })).status).toBe(403);
    expect((await http(s.url, "POST", "/v1/approvals/apr_x", { headers: v, body: { decision: "approve" } })).status).toBe(403);
  });
});

describe("rate limit", () => {
  it("over the limit a key gets 429 with Retry-After in the usual envelope; another key is not held up", async () => {
    const limited = await stack({ perMinute: 5 });
    try {
      const other = (
        await limited.outpost.security.identities.store.createKey({ workspace: "acme", name: "other", roles: ["viewer"], createdBy: "t" })
      ).key;
      const statuses: number[] = [];
      let last: Awaited<ReturnType<typeof http<any>>> | undefined;
      for (let i = 0; i < 6; i++) {
        last = await http(limited.url, "GET", "/v1/agents", { headers: bearer(TEST_ADMIN_KEY) });
        statuses.push(last.status);
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      expect(Number(last?.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(last?.body.error.code).toBe("rate_limited");
      expect(last?.body.error.hint).toMatch(/Retry-After/);
      expect((await http(limited.url, "GET", "/v1/agents", { headers: bearer(other) })).status).toBe(200);
      expect((await http(limited.url, "GET", "/v1/health")).status).toBe(200);
    } finally {
      await limited.close();
    }
  });
});
