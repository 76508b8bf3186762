/**
 * The vault on the real SQLite store: encryption round trip, binding of a ciphertext to its workspace and name,
 * wrong key, tampering, the key file; and `secret://` references reaching real systems (an MCP server over HTTP, an
 * OpenAPI API on 127.0.0.1) through the tool sources, with a missing secret reported as such.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { McpConnection, OpenApiConnection, ToolDefinition } from "../../src/definitions/types.js";
import { loadVaultKey, Redactor, Vault, VaultSecrets } from "../../src/security/vault/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import { mcpSource } from "../../src/tools/mcp.js";
import { openApiSource } from "../../src/tools/openapi.js";
import type { ToolSource } from "../../src/tools/source.js";
import { type System, startBillingApi, startLedgerMcp } from "./secret-systems.js";

const VALUE = "tok_live_9f8e7d6c5b4a";
const dirs: string[] = [];
const tmp = () => {
  const dir = mkdtempSync(join(tmpdir(), "outpost-vault-"));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

let store: Store;
let dataDir: string;
let vault: Vault;
beforeAll(async () => {
  dataDir = tmp();
  store = await openStore({ dataDir });
  vault = Vault.open(store.domain, { dataDir, env: {} });
});
afterAll(async () => {
  await store.close();
});

const errorOf = async (p: Promise<unknown>): Promise<Error> => {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a failure");
};

describe("Vault", () => {
  it("round-trips a value, encrypted at rest with a fresh nonce per write", async () => {
    const changes: unknown[] = [];
    const v = Vault.open(store.domain, { dataDir, env: {} }, { onChanged: (c) => changes.push(c) });
    expect(await v.set("acme", "ledger_token", VALUE, "key:k1")).toEqual({ created: true });
    expect(await v.get("acme", "ledger_token")).toBe(VALUE);
    const first = await store.domain.db.selectFrom("secrets").selectAll().where("name", "=", "ledger_token").executeTakeFirstOrThrow();
    expect(JSON.stringify(first)).not.toContain(VALUE);
    expect(Buffer.from(first.nonce, "base64")).toHaveLength(12);
    expect(await v.set("acme", "ledger_token", VALUE, "key:k2")).toEqual({ created: false });
    const second = await store.domain.db.selectFrom("secrets").selectAll().where("name", "=", "ledger_token").executeTakeFirstOrThrow();
    expect(second.nonce).not.toBe(first.nonce);
    expect(second.ciphertext).not.toBe(first.ciphertext);
    expect(second.key_id).toBe(v.keyId);
    expect(changes).toEqual([
      { workspace: "acme", name: "ledger_token", change: "set", by: "key:k1" },
      { workspace: "acme", name: "ledger_token", change: "set", by: "key:k2" },
    ]);
    expect(await v.get("acme", "nothing")).toBeNull();
  });

  it("lists names and times only, per workspace, and deletes", async () => {
    await vault.set("acme", "a.b-c_d", "value-one", "local");
    await vault.set("globex", "other", "value-two", null);
    const listed = await vault.list("acme");
    expect(listed.map((s) => s.name)).toContain("a.b-c_d");
    expect(listed.map((s) => s.name)).not.toContain("other");
    expect(JSON.stringify(listed)).not.toContain("value-one");
    expect(Object.keys(listed[0]!).sort()).toEqual(["createdAt", "name", "updatedAt", "updatedBy"]);
    expect(await vault.delete("acme", "a.b-c_d")).toBe(true);
    expect(await vault.delete("acme", "a.b-c_d")).toBe(false);
    expect(await vault.get("acme", "a.b-c_d")).toBeNull();
    expect(await vault.get("globex", "other")).toBe("value-two");
  });

  it("refuses names outside [A-Za-z0-9_.-] and empty values", async () => {
    for (const name of ["", "a b", "a/b", "é", "x".repeat(201)]) {
      expect((await errorOf(vault.set("acme", name, "v", null))).message).toMatch(/is not a secret name/);
    }
    expect((await errorOf(vault.set("acme", "empty", "", null))).message).toBe("the value of secret empty is empty");
  });

  it("binds a ciphertext to its workspace and name: a row moved to another tenant or name does not decrypt", async () => {
    await vault.set("acme", "moved", VALUE, null);
    const row = await store.domain.db
      .selectFrom("secrets")
      .selectAll()
      .where("workspace", "=", "acme")
      .where("name", "=", "moved")
      .executeTakeFirstOrThrow();
    await store.domain.write((trx) =>
      trx
        .insertInto("secrets")
        .values({ ...row, workspace: "globex" })
        .execute(),
    );
    await store.domain.write((trx) =>
      trx
        .insertInto("secrets")
        .values({ ...row, name: "renamed" })
        .execute(),
    );
    for (const [workspace, name] of [
      ["globex", "moved"],
      ["acme", "renamed"],
    ] as const) {
      const err = await errorOf(vault.get(workspace, name));
      expect(err.message).toBe(
        `secret ${name} of workspace ${workspace} fails its integrity check: its row in the secrets table was changed, or copied from another secret or workspace`,
      );
      expect(JSON.stringify(err)).not.toContain(VALUE);
    }
    expect(await vault.get("acme", "moved")).toBe(VALUE);
  });

  it("detects a tampered ciphertext, nonce or tag", async () => {
    for (const column of ["ciphertext", "nonce", "tag"] as const) {
      await vault.set("acme", "tampered", VALUE, null);
      const row = await store.domain.db.selectFrom("secrets").select(column).where("name", "=", "tampered").executeTakeFirstOrThrow();
      const bytes = Buffer.from(row[column], "base64");
      bytes[0] = bytes[0]! ^ 1;
      await store.domain.write((trx) =>
        trx
          .updateTable("secrets")
          .set({ [column]: bytes.toString("base64") })
          .where("name", "=", "tampered")
          .execute(),
      );
      expect((await errorOf(vault.get("acme", "tampered"))).message).toMatch(/secret tampered of workspace acme fails its integrity check/);
    }
  });

  it("names the key a secret was stored under when another key is in use, never the value", async () => {
    await vault.set("acme", "keyed", VALUE, null);
    const other = Vault.open(store.domain, { dataDir: tmp(), env: { OUTPOST_VAULT_KEY: randomBytes(32).toString("base64") } });
    const err = (await errorOf(other.get("acme", "keyed"))) as Error & { hint?: string };
    expect(err.message).toBe(
      `secret keyed of workspace acme was stored under vault key ${vault.keyId}, but the key in use (OUTPOST_VAULT_KEY) is ${other.keyId}`,
    );
    expect(err.hint).toMatch(/start Outpost with the key it was stored under/);
    expect(JSON.stringify({ m: err.message, h: err.hint })).not.toContain(VALUE);
    // Same key id (a forged key_id column) but the wrong key: the integrity check still refuses.
    await store.domain.write((trx) => trx.updateTable("secrets").set({ key_id: other.keyId }).where("name", "=", "keyed").execute());
    expect((await errorOf(other.get("acme", "keyed"))).message).toMatch(/fails its integrity check/);
  });
});

describe("the vault key", () => {
  it("is created in <dataDir>/vault.key with mode 0600 at first use, and read back after", () => {
    const dir = tmp();
    const first = loadVaultKey({ dataDir: dir, env: {} });
    const file = join(dir, "vault.key");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(first.key).toHaveLength(32);
    expect(first.id).toMatch(/^[0-9a-f]{16}$/);
    expect(Buffer.from(readFileSync(file, "utf8").trim(), "base64").equals(first.key)).toBe(true);
    expect(loadVaultKey({ dataDir: dir, env: {} }).id).toBe(first.id);
  });

  it("comes from OUTPOST_VAULT_KEY when set (no file), and a malformed one is named", () => {
    const dir = tmp();
    const key = randomBytes(32);
    expect(loadVaultKey({ dataDir: dir, env: { OUTPOST_VAULT_KEY: key.toString("base64") } }).key.equals(key)).toBe(true);
    expect(() => statSync(join(dir, "vault.key"))).toThrow();
    expect(() => loadVaultKey({ dataDir: dir, env: { OUTPOST_VAULT_KEY: "c2hvcnQ=" } })).toThrow(
      "OUTPOST_VAULT_KEY does not hold a vault key: it must be 32 bytes in base64 (44 characters), it decodes to 5 bytes",
    );
  });
});

describe("Redactor", () => {
  it("masks a value as written, JSON-escaped, base64 and URL-encoded", () => {
    const r = new Redactor();
    const value = 'p@ss "word"/+=';
    r.add("db", value);
    const text = [value, JSON.stringify(value), Buffer.from(value).toString("base64"), encodeURIComponent(value)].join(" | ");
    const masked = r.redact(text);
    expect(masked).toBe('[secret:db] | "[secret:db]" | [secret:db] | [secret:db]');
    expect(r.redactValue({ a: [value], b: 1 })).toEqual({ a: ["[secret:db]"], b: 1 });
    expect(r.add("tiny", "abc")).toBe(false); // too short to mask without garbling text
  });
});

// ── secret:// through the tool sources ─────────────────────────────────────────

interface LogLine {
  level: string;
  obj: object;
  msg: string;
}
function memoryLog() {
  const lines: LogLine[] = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, obj, msg });
  return { lines, info: at("info"), warn: at("warn"), error: at("error"), debug: at("debug") };
}

const context = (signal = new AbortController().signal) => ({
  runId: "run_1",
  sessionId: "ses_1",
  agent: "support",
  workspace: "acme",
  rootRunId: "run_1",
  dataDir: "/tmp",
  signal,
});
const tool = (s: ToolSource, name: string): ToolDefinition => {
  const def = s.tools().find((t) => t.name === name);
  if (!def) throw new Error(`no tool ${name}: ${s.tools().map((t) => t.name)} (${JSON.stringify(s.status())})`);
  return def;
};
const call = async (s: ToolSource, name: string, input: Record<string, unknown> = {}) =>
  String(await tool(s, name).handler({ input, idempotencyKey: "key-1", context: context() }));

describe("secret:// in connections", () => {
  const TOKEN = `tok_${randomBytes(12).toString("hex")}`;
  let ledger: System;
  let billing: System & { spec: string };
  const sources: ToolSource[] = [];
  const used: [string, string][] = [];
  let redactor: Redactor;
  let secrets: VaultSecrets;
  beforeAll(async () => {
    ledger = await startLedgerMcp(TOKEN);
    billing = await startBillingApi(TOKEN, tmp());
    await vault.set("acme", "ledger_token", TOKEN, null);
    redactor = new Redactor();
    secrets = new VaultSecrets(vault, "acme", { redactor, onSecretUsed: (name, connection) => used.push([name, connection]) });
  });
  afterEach(async () => {
    await Promise.all(sources.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await ledger.close();
    await billing.close();
  });

  const mcp = (headers: Record<string, string>, deps: { secrets?: VaultSecrets } = { secrets }, log = memoryLog()): ToolSource => {
    const c: McpConnection = {
      kind: "mcp",
      name: "ledger",
      transport: { type: "http", url: ledger.url, headers },
      timeoutMs: 10_000,
      connectTimeoutMs: 10_000,
      tools: {},
      file: "outpost.yaml",
    };
    const s = mcpSource(c, { env: {}, dataDir: "/tmp", log, ...deps });
    sources.push(s);
    return s;
  };
  const openapi = (auth: OpenApiConnection["auth"], log = memoryLog()): ToolSource => {
    const c: OpenApiConnection = {
      kind: "openapi",
      name: "billing",
      spec: billing.spec,
      headers: {},
      ...(auth ? { auth } : {}),
      timeoutMs: 10_000,
      tools: {},
      file: "outpost.yaml",
    };
    const s = openApiSource(c, { env: {}, dataDir: "/tmp", log, secrets });
    sources.push(s);
    return s;
  };

  it("sends an MCP HTTP header's secret:// to the server at connect time, and masks it in results and errors", async () => {
    used.length = 0;
    const s = mcp({ Authorization: "Bearer secret://ledger_token" });
    await s.start();
    expect(s.status()).toMatchObject({ state: "ready" });
    expect(ledger.seen.at(-1)).toBe(`Bearer ${TOKEN}`);
    expect(used).toContainEqual(["ledger_token", "ledger"]);
    expect(await call(s, "ledger.balance")).toBe("balance: 1200 EUR");
    expect(await call(s, "ledger.leak")).toBe("authorized as [secret:ledger_token]; b64 [secret:ledger_token]; url [secret:ledger_token]");
    const err = await errorOf(call(s, "ledger.fail"));
    expect(err.message).toBe("the ledger rejected credential [secret:ledger_token]");
  });

  it("reports a missing secret on the connection, saying how to set it", async () => {
    const s = mcp({ Authorization: "Bearer secret://nope_token" });
    await s.start();
    expect(s.status()).toMatchObject({
      state: "down",
      error: "secret://nope_token is not in the vault of workspace acme: outpost secrets set nope_token",
    });
  });

  it("says when a secret:// reference has no vault to come from", async () => {
    const s = mcp({ Authorization: "Bearer secret://ledger_token" }, {});
    await s.start();
    expect(s.status().error).toMatch(
      /^connections\.ledger\.mcp\.headers\.Authorization refers to secret:\/\/ledger_token, but this Outpost has no vault/,
    );
  });

  it("sends an OpenAPI bearer token from the vault at call time, and masks it in outputs and errors", async () => {
    const s = openapi({ type: "bearer", token: "secret://ledger_token" });
    await s.start();
    expect(await call(s, "billing.balance")).toBe('{"balance":1200}');
    expect(billing.seen.at(-1)).toBe(`Bearer ${TOKEN}`);
    const echoed = await call(s, "billing.echo");
    expect(echoed).not.toContain(TOKEN);
    expect(echoed).not.toContain(Buffer.from(TOKEN).toString("base64"));
    expect(echoed).toContain("[secret:ledger_token]");
    const err = await errorOf(call(s, "billing.fail"));
    expect(err.message).toMatch(/^HTTP 500 Internal Server Error: /);
    expect(err.message).not.toContain(TOKEN);
  });

  it("fails an OpenAPI call whose secret is missing, with how to set it", async () => {
    const s = openapi({ type: "bearer", token: "secret://billing_token" });
    await s.start();
    const err = await errorOf(call(s, "billing.balance"));
    expect(err.message).toBe("secret://billing_token is not in the vault of workspace acme: outpost secrets set billing_token");
  });

  it("uses a rotated secret from the next call on", async () => {
    const s = openapi({ type: "bearer", token: "secret://ledger_token" });
    await s.start();
    await vault.set("acme", "ledger_token", "rotated-but-wrong", null);
    try {
      expect((await errorOf(call(s, "billing.balance"))).message).toMatch(/^HTTP 401/);
    } finally {
      await vault.set("acme", "ledger_token", TOKEN, null);
    }
    expect(await call(s, "billing.balance")).toBe('{"balance":1200}');
  });
});
