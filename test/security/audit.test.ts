import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { ev } from "../../src/core/events.js";
import {
  AuditLog,
  buildReport,
  canonicalJson,
  entryHashOf,
  loadAuditSigningKey,
  PUBLIC_KEY_FILE,
  parsePublicKey,
  SIGNING_KEY_FILE,
  verifyAudit,
} from "../../src/security/audit/index.js";
import { openStore } from "../../src/store/index.js";
import type { Store } from "../../src/store/types.js";
import { runCli } from "../cli/harness.js";
import { until } from "../helpers/until.js";
import { describeAuditTampering, testKey } from "./audit-tampering.js";

const dirs: string[] = [];
const tempDir = async () => {
  const d = await mkdtemp(path.join(tmpdir(), "outpost-audit-"));
  dirs.push(d);
  return d;
};
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describeAuditTampering("sqlite", async () => {
  const dataDir = await tempDir();
  const store = await openStore({ dataDir });
  const raw = new BetterSqlite3(path.join(dataDir, "outpost.db"));
  return {
    store,
    exec: async (text, params = []) => {
      const stmt = raw.prepare(text.replace(/\$\d+/g, "?"));
      const values = params.map((p) => (typeof p === "boolean" ? Number(p) : p));
      if (stmt.reader) return stmt.all(...values) as Record<string, unknown>[];
      stmt.run(...values);
      return [];
    },
    close: async () => {
      raw.close();
      await store.close();
    },
  };
});

describe("canonical JSON (RFC 8785)", () => {
  const fields = { workspace: "acme", seq: 1, at: 1_700_000_000_000, kind: "model.used", actor: "agent:a", run_id: null };

  it("sorts keys and writes numbers in their shortest ECMAScript form", () => {
    expect(canonicalJson({ b: 1, a: [1e21, 0.1, 1.0, -0, 1e-7], c: { z: null, y: "é\u2028" } })).toBe(
      '{"a":[1e+21,0.1,1,0,1e-7],"b":1,"c":{"y":"é\u2028","z":null}}',
    );
  });

  it("an entry's hash does not depend on key order or how its numbers were written", () => {
    const one = entryHashOf("0".repeat(64), fields, JSON.parse('{"cost_usd": 0.10, "tokens": {"out": 2e1, "in": 100}}'));
    const two = entryHashOf("0".repeat(64), fields, JSON.parse('{"tokens":{"in":1E2,"out":20.0},"cost_usd":1e-1}'));
    expect(one).toBe(two);
    expect(entryHashOf("0".repeat(64), fields, { cost_usd: 0.11 })).not.toBe(entryHashOf("0".repeat(64), fields, { cost_usd: 0.1 }));
  });
});

describe("audit log on SQLite", () => {
  let dataDir: string;
  let store: Store;
  const key = testKey();

  beforeEach(async () => {
    dataDir = await tempDir();
    store = await openStore({ dataDir });
  });
  afterEach(async () => {
    await store.close();
  });

  it("chains a run commit's entries with their workspace and run, in order, and empties the outbox", async () => {
    const { run } = await store.createRun({ workspace: "acme", agent: "refunds", input: "refund 42" });
    const [c] = await store.claimRuns("w", 1, 60_000);
    await store.commit({
      runId: run.id,
      leaseToken: c.leaseToken,
      expectedSeq: 1,
      events: [ev("model.called", { step: 1, model: "fast" })],
      patch: { status: "running", steps: 1, inputTokens: 0, outputTokens: 0, costUsd: 0 },
      audit: [
        { kind: "policy.decision", actor: "agent:refunds", data: { effect: "allow", action: "tool.call" } },
        { kind: "tool.executed", actor: "agent:refunds", data: { tool: "ledger.refund", is_error: false } },
      ],
    });
    const log = new AuditLog(store, key);
    await log.record("acme", [{ kind: "auth.failed", actor: "system", data: { reason: "unknown key", key_prefix: "op_12" } }]);
    expect(await log.flush()).toMatchObject({ chained: 3, checkpoints: 1 });
    const entries = await log.list("acme");
    expect(entries.map((e) => [e.seq, e.kind, e.runId])).toEqual([
      [3, "auth.failed", null],
      [2, "tool.executed", run.id],
      [1, "policy.decision", run.id],
    ]);
    expect(await log.list("acme", { runId: run.id, kind: "tool.executed" })).toHaveLength(1);
    expect(await log.pending("acme")).toBe(0);
    const v = await verifyAudit(store, "acme", { publicKey: key.publicKey });
    expect(v).toMatchObject({ ok: true, entries: 3, checkpoints: 1, lastSeq: 3, lastCheckpoint: { seq: 3, keyId: key.keyId } });
    await log.close();
  });

  it("keeps one chain per workspace, and checkpoints every N entries", async () => {
    const log = new AuditLog(store, key, { checkpointEvery: 5, checkpointMs: 3_600_000 });
    for (let i = 0; i < 12; i++) {
      await log.record(i % 3 === 0 ? "globex" : "acme", [{ kind: "secret.used", actor: "agent:a", data: { name: "crm", i } }]);
      await log.flush();
    }
    // acme: 8 entries, checkpoints at 1 (first), 6; globex: 4 entries, checkpoint at 1 only.
    const cps = await store.domain.db
      .selectFrom("audit_checkpoints")
      .select(["workspace", "seq"])
      .orderBy("workspace")
      .orderBy("seq")
      .execute();
    expect(cps.map((c) => `${c.workspace}@${c.seq}`)).toEqual(["acme@1", "acme@6", "globex@1"]);
    await log.close(); // signs the heads
    const acme = await verifyAudit(store, "acme", { publicKey: key.publicKey });
    const globex = await verifyAudit(store, "globex", { publicKey: key.publicKey });
    expect([acme.lastSeq, acme.lastCheckpoint?.seq, globex.lastSeq, globex.lastCheckpoint?.seq]).toEqual([8, 8, 4, 4]);
  });

  it("drains in the background once started", async () => {
    const log = new AuditLog(store, key);
    log.start(10);
    await log.record("acme", [{ kind: "key.created", actor: "local", data: { key_id: "k1", name: "ci", roles: ["builder"], groups: [] } }]);
    await until("the entry to be chained", async () => (await log.list("acme")).length === 1);
    await log.close();
    expect((await verifyAudit(store, "acme", { publicKey: key.publicKey })).ok).toBe(true);
  });

  it("an empty log verifies (nothing to prove yet)", async () => {
    expect(await verifyAudit(store, "acme", { publicKey: key.publicKey })).toMatchObject({ ok: true, entries: 0, lastSeq: 0 });
  });

  it("data stored in another but equal JSON form still verifies; a changed value does not", async () => {
    const log = new AuditLog(store, key);
    await log.record("acme", [{ kind: "model.used", actor: "agent:a", data: { cost_usd: 0.25, model: "m" } }]);
    await log.close();
    const raw = new BetterSqlite3(path.join(dataDir, "outpost.db"));
    try {
      raw.prepare("UPDATE audit_log SET data = ? WHERE seq = 1").run('{ "model": "m", "cost_usd": 2.5e-1 }');
      expect((await verifyAudit(store, "acme", { publicKey: key.publicKey })).ok).toBe(true);
      raw.prepare("UPDATE audit_log SET data = ? WHERE seq = 1").run('{"cost_usd":0.26,"model":"m"}');
      expect((await verifyAudit(store, "acme", { publicKey: key.publicKey })).problem).toMatchObject({ seq: 1, kind: "edited" });
    } finally {
      raw.close();
    }
  });

  it("verifies with a page size smaller than the log (keyset paging)", async () => {
    const log = new AuditLog(store, key, { checkpointEvery: 7, batch: 4 });
    await log.record(
      "acme",
      Array.from({ length: 50 }, (_, i) => ({ kind: "tool.executed", actor: "agent:a", data: { i } })),
    );
    await log.close();
    expect(await verifyAudit(store, "acme", { publicKey: key.publicKey, pageSize: 3 })).toMatchObject({
      ok: true,
      entries: 50,
      lastSeq: 50,
    });
  });
});

describe("the signing key", () => {
  it("is created 0600 in the data folder at first use, with its public key beside it, and reused after", async () => {
    const dataDir = await tempDir();
    const first = loadAuditSigningKey({ dataDir, env: {} });
    expect(statSync(path.join(dataDir, SIGNING_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(existsSync(path.join(dataDir, PUBLIC_KEY_FILE))).toBe(true);
    const again = loadAuditSigningKey({ dataDir, env: {} });
    expect(again.keyId).toBe(first.keyId);
    expect(first.keyId).toMatch(/^[0-9a-f]{16}$/);
    const pub = parsePublicKey(readFileSync(path.join(dataDir, PUBLIC_KEY_FILE), "utf8"), PUBLIC_KEY_FILE);
    expect(pub.equals(first.publicKey)).toBe(true);
  });

  it("comes from OUTPOST_AUDIT_SIGNING_KEY when set; a wrong one is an error that says how to make one", async () => {
    const dataDir = await tempDir();
    const k = testKey();
    const pem = k.privateKey.export({ format: "pem", type: "pkcs8" }) as string;
    expect(loadAuditSigningKey({ dataDir, env: { OUTPOST_AUDIT_SIGNING_KEY: pem } }).keyId).toBe(k.keyId);
    expect(existsSync(path.join(dataDir, SIGNING_KEY_FILE))).toBe(false);
    expect(() => loadAuditSigningKey({ dataDir, env: { OUTPOST_AUDIT_SIGNING_KEY: "nope" } })).toThrow(
      /OUTPOST_AUDIT_SIGNING_KEY is not a PKCS#8/,
    );
  });
});

describe("transparency reports", () => {
  let store: Store;
  let dataDir: string;
  const key = testKey();

  beforeEach(async () => {
    dataDir = await tempDir();
    store = await openStore({ dataDir });
    const log = new AuditLog(store, key);
    const r = (runId: string, kind: string, data: Record<string, unknown>, actor = "agent:refunds") => ({ kind, actor, runId, data });
    await log.record("acme", [
      r("run_1", "policy.decision", {
        agent: "refunds",
        action: "tool.call",
        resource: { type: "Tool", id: "ledger.issue_refund" },
        effect: "allow",
        policies: ["p1"],
      }),
      r("run_1", "tool.executed", { agent: "refunds", tool: "crm.customer", classification: "restricted", is_error: false }),
      r("run_1", "model.used", {
        agent: "refunds",
        model: "local-llama",
        location: "on_prem",
        run_classification: "restricted",
        input_tokens: 100,
        output_tokens: 20,
        cost_usd: 0,
      }),
      r("run_1", "model.used", {
        agent: "refunds",
        model: "gpt",
        location: "external",
        run_classification: "internal",
        input_tokens: 1000,
        output_tokens: 200,
        cost_usd: 0.5,
      }),
      r("run_1", "approval.requested", { approval_id: "apr_1", run_id: "run_1", agent: "refunds", tool: "ledger.issue_refund" }),
      r(
        "run_1",
        "approval.denied",
        { approval_id: "apr_1", run_id: "run_1", agent: "refunds", tool: "ledger.issue_refund", by: "key:ana", reason: "too | much" },
        "key:ana",
      ),
      r("run_2", "policy.decision", {
        agent: "refunds",
        action: "tool.call",
        resource: { type: "Tool", id: "ledger.transfer" },
        effect: "deny",
        policies: ["forbid-transfer"],
      }),
      r("run_2", "guardrail.injection", { run_id: "run_2", tool: "tickets.read", findings: ["ignore your instructions"] }),
      r("run_2", "budget.blocked", { run_id: "run_2", agent: "refunds", cap: "agent:refunds/day", limit: 5, spent: 4.9 }),
      r(
        "run_3",
        "model.used",
        { agent: "support", model: "gpt", location: "external", input_tokens: 1, output_tokens: 1, cost_usd: 9 },
        "agent:support",
      ),
    ]);
    await log.close();
  });
  afterEach(async () => {
    await store.close();
  });

  it("summarises one agent's verified entries", async () => {
    const { json, markdown } = await buildReport(store, "acme", { agent: "refunds", since: 0, publicKey: key.publicKey });
    expect(json.verification).toMatchObject({ ok: true, problem: null, coveredBy: { seq: 10 } });
    expect(json.entries).toBe(9);
    expect(json.actionsByKind).toMatchObject({ "policy.decision": 2, "model.used": 2, "guardrail.injection": 1 });
    expect(json.dataClasses).toEqual({ restricted: 2, internal: 1 });
    expect(json.approvals).toMatchObject({ requested: 1, denied: 1, approved: 0 });
    expect(json.policy).toEqual({ allowed: 1, denied: 1 });
    expect(json.blocked.map((b) => b.kind)).toEqual(["policy.decision", "guardrail.injection", "budget.blocked"]);
    expect(json.blocked[0].what).toContain("ledger.transfer");
    expect(json.models).toEqual([
      { model: "local-llama", location: "on_prem", calls: 1, inputTokens: 100, outputTokens: 20, costUsd: 0 },
      { model: "gpt", location: "external", calls: 1, inputTokens: 1000, outputTokens: 200, costUsd: 0.5 },
    ]);
    expect(json.spendUsd).toBe(0.5);
    expect(markdown).toContain("Audit log verified: 10 entries");
    expect(markdown).toContain("| gpt | external | 1 | 1000 | 200 | $0.50 |");
    expect(markdown).toContain("too much"); // a pipe in entry data does not break the table
    expect(markdown).not.toContain("support");
  });

  it("a period outside the entries reports nothing", async () => {
    const { json } = await buildReport(store, "acme", {
      since: Date.now() + 60_000,
      until: Date.now() + 120_000,
      publicKey: key.publicKey,
    });
    expect(json.entries).toBe(0);
    expect(json.spendUsd).toBe(0);
  });

  it("a tampered log is stated first and nothing from the bad entry on is summarised", async () => {
    const raw = new BetterSqlite3(path.join(dataDir, "outpost.db"));
    raw.prepare("UPDATE audit_log SET data = replace(data, '0.5', '0.05') WHERE seq = 4").run();
    raw.close();
    const { json, markdown } = await buildReport(store, "acme", { agent: "refunds", since: 0, publicKey: key.publicKey });
    expect(json.verification).toMatchObject({ ok: false, problem: { seq: 4, kind: "edited" } });
    expect(json.entries).toBe(3);
    expect(json.spendUsd).toBe(0);
    expect(markdown.split("\n").find((l) => l.startsWith(">"))).toContain("FAILED VERIFICATION");
    expect(markdown).toContain("only entries before seq 4");
  });
});

describe("outpost audit verify | list, outpost report (the real CLI, local store)", () => {
  it("verifies (exit 0), lists, reports; after tampering exits 1 naming the first bad entry", async () => {
    const dataDir = await tempDir();
    const store = await openStore({ dataDir });
    const log = new AuditLog(store, loadAuditSigningKey({ dataDir, env: {} }));
    await log.record("shop", [
      {
        kind: "model.used",
        actor: "agent:assistant",
        runId: "run_1",
        data: { agent: "assistant", model: "m", location: "on_prem", cost_usd: 0.25 },
      },
      { kind: "budget.blocked", actor: "agent:assistant", runId: "run_1", data: { agent: "assistant", cap: "day", limit: 1, spent: 1 } },
      { kind: "auth.failed", actor: "system", data: { reason: "unknown key" } },
    ]);
    await log.close();
    await store.close();
    const common = ["--data", dataDir, "--workspace", "shop"];

    const ok = await runCli(["audit", "verify", ...common]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("ok: workspace shop, 3 entries, chain intact");

    const listed = await runCli(["audit", "list", "--kind", "budget.blocked", "--json", ...common]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).map((e: { seq: number }) => e.seq)).toEqual([2]);

    const outDir = path.join(dataDir, "report");
    const rep = await runCli(["report", "--agent", "assistant", "--since", "30d", "--out", outDir, ...common]);
    expect(rep.code, rep.stderr).toBe(0);
    expect(JSON.parse(readFileSync(path.join(outDir, "report.json"), "utf8"))).toMatchObject({ entries: 2, spendUsd: 0.25 });
    expect(readFileSync(path.join(outDir, "report.md"), "utf8")).toContain("budget cap day");

    const raw = new BetterSqlite3(path.join(dataDir, "outpost.db"));
    raw.prepare("DELETE FROM audit_log WHERE seq = 2").run();
    raw.close();
    const bad = await runCli(["audit", "verify", ...common]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("first bad entry seq 2 (deleted)");

    const usage = await runCli(["report", "--since", "yesterday-ish", ...common]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("--since");
  }, 60_000);
});
