/**
 * `outpost context ls | show` through the real CLI on the local store: the entities agents looked up, with their
 * source, age and freshness (from the type's ttl in context/<type>.yaml), and the mistakes a person makes.
 */
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContextCache } from "../../src/context/index.js";
import { openStore } from "../../src/store/index.js";
import { removeDir, runCli, SHOP, tempDir } from "./harness.js";

const root = tempDir("outpost-context-");
const project = path.join(root, "shop");
const data = path.join(root, "data");
afterAll(() => removeDir(root));

beforeAll(async () => {
  cpSync(SHOP, project, { recursive: true });
  mkdirSync(path.join(project, "context"));
  writeFileSync(
    path.join(project, "context", "order.yaml"),
    "description: An order of the shop.\ntool: orders.lookup\nkey: order_id\nttl: 10m\n",
  );
  // What two lookups by the support agent left in the cache: one just now, one long ago.
  const store = await openStore({ dataDir: data });
  const cache = new ContextCache(store.domain);
  const source = { tool: "orders.lookup", run_id: "run_abc", agent: "support" };
  await cache.put("acme", {
    type: "order",
    id: "1001",
    subject: "order:1001",
    data: { status: "shipped" },
    classification: "internal",
    source,
    fetchedAt: Date.now() - 30_000,
  });
  await cache.put("acme", {
    type: "order",
    id: "1002",
    subject: "order:1002",
    data: { status: "open" },
    classification: "internal",
    source,
    fetchedAt: Date.now() - 3_600_000,
  });
  await store.close();
});

describe("outpost context on the local store", { timeout: 180_000 }, () => {
  const cli = (args: string[]) => runCli([...args, "--project", project, "--data", data]);

  it("lists what agents were served, newest first, and shows one with its data", async () => {
    const ls = await cli(["context", "ls"]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/ENTITY\s+CLASS\s+FETCHED\s+BY\s+TOOL/);
    expect(ls.stdout).toMatch(/order:1001\s+internal\s+\d+[sm] ago\s+agent:support \(run run_abc\)\s+orders\.lookup\s+fresh for \dm/);
    expect(ls.stdout).toMatch(/order:1002\s+internal\s+1h ago\s+.*expired: fetched again at the next lookup/);
    expect(ls.stdout.indexOf("order:1001")).toBeLessThan(ls.stdout.indexOf("order:1002"));
    expect(ls.stdout).toContain("context show order 1001");

    const show = await cli(["context", "show", "order", "1001", "--json"]);
    expect(show.code, show.stderr).toBe(0);
    const entity = JSON.parse(show.stdout);
    expect(entity).toMatchObject({ subject: "order:1001", data: { status: "shipped" }, expired: false });
    expect(Date.parse(entity.fresh_until) - Date.parse(entity.source.fetched_at)).toBe(600_000);

    const none = await cli(["context", "ls", "--type", "customer"]);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout).toContain("no agent has looked up a customer yet");
  });

  it("says what is wrong and how to fix it", async () => {
    const missing = await cli(["context", "show", "order", "9"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: no agent of workspace acme has looked up order 9 \(or it was erased\)$/m);
    expect(missing.stderr).toMatch(/^hint: entity types of this project: order; list what agents fetched with outpost context ls/m);
    const limit = await cli(["context", "ls", "--limit", "500"]);
    expect(limit.code).toBe(2);
    expect(limit.stderr).toMatch(/--limit 500: give a whole number from 1 to 200/);
    for (const r of [missing, limit]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
