/**
 * `context.lookup` on a real SQLite store, its resolving tool a project tool with a real handler (it counts its calls
 * and can be made to fail): shared for the ttl, fetched again after it or on `refresh`, a stale copy served with why
 * when the system fails, concurrent lookups sharing one fetch, the class never below the tool's, workspaces apart.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { ContextCache, contextLookupTool, type LookupResult } from "../../src/context/index.js";
import type { ContextEntityType, ToolContext, ToolDefinition } from "../../src/definitions/types.js";
import { openStore, type Store } from "../../src/store/index.js";

let dataDir: string;
let store: Store;
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "outpost-context-"));
  store = await openStore({ dataDir });
});
afterAll(async () => {
  await store?.close();
  await rm(dataDir, { recursive: true, force: true });
});

const MINUTE = 60_000;

function setup(o: { classification?: ContextEntityType["classification"]; toolClassification?: ToolDefinition["classification"] } = {}) {
  let now = 1_000_000;
  let calls = 0;
  let failing: string | null = null;
  const crm: ToolDefinition = {
    name: "crm.get_customer",
    description: "A customer",
    input: z.object({ customer_id: z.string().regex(/^C-\d+$/, "ids look like C-1042") }),
    sideEffects: false,
    ...(o.toolClassification ? { classification: o.toolClassification } : {}),
    handler: async ({ input }) => {
      calls++;
      if (failing) throw new Error(failing);
      return JSON.stringify({ id: input.customer_id, name: `Customer ${input.customer_id}`, version: calls });
    },
  };
  const types = new Map<string, ContextEntityType>([
    [
      "customer",
      {
        type: "customer",
        description: "A customer.",
        tool: "crm.get_customer",
        key: "customer_id",
        ttlMs: 10 * MINUTE,
        file: "context/customer.yaml",
        ...(o.classification ? { classification: o.classification } : {}),
      },
    ],
  ]);
  const tool = contextLookupTool({
    types,
    tool: (name) => (name === crm.name ? crm : undefined),
    connectionClassification: () => "confidential",
    cache: new ContextCache(store.domain),
    clock: () => now,
  });
  const lookup = (args: unknown, workspace = "ws-a", agent = "support") =>
    tool.handler({
      input: args as never,
      idempotencyKey: "k",
      context: {
        workspace,
        agent,
        runId: `run-${agent}`,
        sessionId: "s",
        rootRunId: "r",
        dataDir,
        signal: new AbortController().signal,
      } as ToolContext,
    }) as Promise<LookupResult>;
  return {
    tool,
    lookup,
    calls: () => calls,
    advance: (ms: number) => {
      now += ms;
    },
    fail: (why: string | null) => {
      failing = why;
    },
  };
}

describe("context.lookup", () => {
  it("fetches once and shares the entity, with its source and age, until its ttl has passed", async () => {
    const c = setup();
    const first = await c.lookup({ type: "customer", id: "C-1" }, "share", "support");
    expect(first).toMatchObject({
      subject: "customer:C-1",
      data: { name: "Customer C-1", version: 1 },
      source: { tool: "crm.get_customer", cached: false, age_seconds: 0, fetched_by: "agent:support (run run-support)" },
    });
    c.advance(3 * MINUTE);
    const second = await c.lookup({ type: "customer", id: "C-1" }, "share", "refunds");
    expect(second).toMatchObject({
      data: { version: 1 },
      source: { cached: true, age_seconds: 180, fetched_by: "agent:support (run run-support)" },
    });
    expect(c.calls()).toBe(1);
    c.advance(8 * MINUTE);
    const third = await c.lookup({ type: "customer", id: "C-1" }, "share", "refunds");
    expect(third).toMatchObject({ data: { version: 2 }, source: { cached: false, fetched_by: "agent:refunds (run run-refunds)" } });
    expect(c.calls()).toBe(2);
  });

  it("fetches again on refresh", async () => {
    const c = setup();
    await c.lookup({ type: "customer", id: "C-2" }, "refresh");
    const again = await c.lookup({ type: "customer", id: "C-2", refresh: true }, "refresh");
    expect(again.source.cached).toBe(false);
    expect(c.calls()).toBe(2);
  });

  it("serves the copy it has, saying why and how old, when the system fails; with none, the failure", async () => {
    const c = setup();
    await c.lookup({ type: "customer", id: "C-3" }, "stale");
    c.advance(30 * MINUTE);
    c.fail("crm is down for maintenance");
    const stale = await c.lookup({ type: "customer", id: "C-3" }, "stale");
    expect(stale).toMatchObject({
      data: { version: 1 },
      stale: "crm.get_customer failed: crm is down for maintenance",
      source: { cached: true, age_seconds: 1800 },
    });
    await expect(c.lookup({ type: "customer", id: "C-4" }, "stale")).rejects.toThrow("crm is down for maintenance");
  });

  it("lets concurrent lookups of one entity share one fetch", async () => {
    const c = setup();
    const all = await Promise.all([1, 2, 3, 4].map(() => c.lookup({ type: "customer", id: "C-5" }, "together")));
    expect(c.calls()).toBe(1);
    expect(new Set(all.map((r) => JSON.stringify(r.data))).size).toBe(1);
  });

  it("keeps each workspace's entities to itself", async () => {
    const c = setup();
    await c.lookup({ type: "customer", id: "C-6" }, "tenant-a");
    const other = await c.lookup({ type: "customer", id: "C-6" }, "tenant-b");
    expect(other.source.cached).toBe(false);
    expect(c.calls()).toBe(2);
    const cache = new ContextCache(store.domain);
    expect((await cache.list("tenant-b")).map((e) => e.source.run_id)).toEqual(["run-support"]);
    expect(await cache.list("tenant-none")).toEqual([]);
  });

  it("names the types it knows, and says what is wrong with an id the tool would refuse", async () => {
    const c = setup();
    expect(c.tool.context?.resolve({ type: "parcel", id: "1" })).toEqual({ error: 'unknown entity type "parcel" — known: customer' });
    expect(c.tool.context?.resolve({ type: "customer" })).toMatchObject({
      error: expect.stringContaining("context.lookup takes {type, id}"),
    });
    await expect(c.lookup({ type: "customer", id: "1042" }, "ids")).rejects.toThrow(
      '"1042" is not a customer id crm.get_customer takes (customer_id): ids look like C-1042',
    );
    expect(c.calls()).toBe(0);
    expect(c.tool.description).toContain("customer (A customer)");
  });

  it("decides a lookup as its tool's call, at a class never below the tool's (its connection's when it sets none)", async () => {
    const plain = setup().tool.context?.resolve({ type: "customer", id: "C-7" });
    expect(plain).toMatchObject({ tool: { name: "crm.get_customer", classification: "confidential" }, args: { customer_id: "C-7" } });
    const raised = setup({ classification: "restricted" }).tool.context?.resolve({ type: "customer", id: "C-7" });
    expect(raised).toMatchObject({ tool: { classification: "restricted" } });
    const notLowered = setup({ classification: "public", toolClassification: "restricted" });
    expect(notLowered.tool.context?.resolve({ type: "customer", id: "C-7" })).toMatchObject({ tool: { classification: "restricted" } });
    const result = await notLowered.lookup({ type: "customer", id: "C-7" }, "classes");
    expect(result.classification).toBe("restricted");
    expect(notLowered.tool.resultClassification?.(result)).toBe("restricted");
  });
});
