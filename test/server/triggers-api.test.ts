/**
 * Triggers over HTTP and through the CLI against a server: the project's schedules with their next occurrence and
 * latest firing, a trigger's firings, any role may read them, another workspace sees none, an unknown trigger is a
 * 404 that lists the known ones.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProject } from "../../src/definitions/index.js";
import { runCli } from "../cli/harness.js";
import { http, type Stack, startStack } from "./helpers.js";

const SHOP = path.resolve(import.meta.dirname, "../fixtures/shop");
let stack: Stack;
const call = (method: string, p: string, headers?: Record<string, string>) => http(stack.url, method, p, headers ? { headers } : {});

beforeAll(async () => {
  const project = await loadProject(SHOP);
  const support = project.agents.get("support");
  if (!support) throw new Error("no support agent");
  support.schedules = [
    { name: "morning-digest", cron: "30 7 * * 1-5", timezone: "Europe/Berlin", input: "Summarise open tickets.", missed: "skip" },
  ];
  stack = await startStack({ project });
});
afterAll(async () => {
  await stack?.close();
});

describe("GET /v1/triggers", () => {
  it("lists the schedules with their next occurrence, and each one's firings; any role may read", async () => {
    await stack.outpost.triggers.tick(); // registers the schedule
    const key = await http(stack.url, "POST", "/v1/keys", { body: { name: "viewer-1", roles: ["viewer"] } });
    expect(key.status, key.text).toBe(201);
    const asViewer = { authorization: `Bearer ${key.body.key}` };
    const list = await call("GET", "/v1/triggers", asViewer);
    expect(list.status, list.text).toBe(200);
    expect(list.body.triggers).toEqual([
      {
        id: "schedule:support.morning-digest",
        kind: "schedule",
        agent: "support",
        name: "morning-digest",
        cron: "30 7 * * 1-5",
        timezone: "Europe/Berlin",
        missed: "skip",
        input: "Summarise open tickets.",
        path: null,
        signed: null,
        next_at: expect.any(String),
        last_firing: null,
      },
    ]);
    const next = new Date(list.body.triggers[0].next_at);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect([1, 2, 3, 4, 5]).toContain(next.getUTCDay());
    const firings = await call("GET", "/v1/triggers/schedule:support.morning-digest/firings?limit=5", asViewer);
    expect(firings.status, firings.text).toBe(200);
    expect(firings.body).toEqual({ firings: [] });

    const unknown = await call("GET", "/v1/triggers/schedule:support.nightly/firings");
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.hint).toContain("schedule:support.morning-digest");
    expect((await call("GET", "/v1/triggers/schedule:support.morning-digest/firings?limit=0")).status).toBe(400);
    expect((await call("GET", "/v1/triggers", { authorization: "Bearer nope" })).status).toBe(401);

    const doc = (await call("GET", "/openapi.json")).body;
    expect(doc.paths["/v1/triggers"].get.tags).toEqual(["triggers"]);
    expect(doc.paths["/v1/triggers/{id}/firings"].get.tags).toEqual(["triggers"]);
  });

  it("shows another workspace no triggers", async () => {
    expect((await http(stack.url, "POST", "/v1/workspaces", { body: { id: "globex" } })).status).toBe(201);
    const key = await http(stack.url, "POST", "/v1/keys", { body: { name: "globex-admin", roles: ["admin"], workspace: "globex" } });
    const globex = { authorization: `Bearer ${key.body.key}` };
    expect((await call("GET", "/v1/triggers", globex)).body).toEqual({ triggers: [] });
    expect((await call("GET", "/v1/triggers/schedule:support.morning-digest/firings", globex)).status).toBe(404);
  });

  it("outpost triggers ls and firings, against the server", async () => {
    const ls = await runCli(["triggers", "ls", "--server", stack.url]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/TRIGGER\s+WHEN\s+NEXT\s+LAST/);
    expect(ls.stdout).toMatch(/schedule:support\.morning-digest\s+30 7 \* \* 1-5 \(Europe\/Berlin\)\s+\S+\s+never fired/);
    expect(ls.stdout).toContain("triggers firings schedule:support.morning-digest");
    const firings = await runCli(["triggers", "firings", "schedule:support.morning-digest", "--server", stack.url]);
    expect(firings.code, firings.stderr).toBe(0);
    expect(firings.stdout).toContain("schedule:support.morning-digest has not fired yet");
    const unknown = await runCli(["triggers", "firings", "nope", "--server", stack.url]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^error: there is no trigger "nope" in workspace acme$/m);
  });
});
