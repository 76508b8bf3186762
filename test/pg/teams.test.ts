/**
 * Delegation on PostgreSQL with two Outpost processes' worth of workers on one database: parents and
 * children are claimed by whichever worker is free, children's results reach their parents exactly
 * once, and a cancel from one node stops a tree the other is running.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { delegateToolName } from "../../src/definitions/index.js";
import type { AgentDefinition, Project } from "../../src/definitions/types.js";
import { createScriptedClient, type ModelRequest } from "../../src/models/index.js";
import { readsData } from "../../src/models/scripted/client.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import { defaultLimits } from "../runtime/fixtures.js";
import { createTestDatabase } from "./database.js";

const db = await createTestDatabase("outpost_teams");

function agent(name: string, delegates: string[] = []): AgentDefinition {
  return {
    name,
    description: name,
    instructions: name,
    model: "m",
    tools: [...delegates.map((d) => ({ name: delegateToolName(d) })), { name: "wait.for_event" }],
    delegates,
    handoffs: [],
    fanOut: "all",
    limits: defaultLimits,
    file: `agents/${name}.yaml`,
  };
}

const project = (): Project => {
  const root = mkdtempSync(join(tmpdir(), "outpost-pg-teams-"));
  return {
    root,
    workspace: "pg-teams",
    models: new Map(),
    agents: new Map(
      [agent("lead", ["a", "b", "c"]), agent("a"), agent("b"), agent("c"), agent("boss", ["sleeper"]), agent("sleeper")].map((a) => [
        a.name,
        a,
      ]),
    ),
    tools: new Map(),
    connections: new Map(),
    teams: new Map(),
    defaults: { model: "m", limits: defaultLimits },
    scriptsDir: join(root, "scripts"),
  };
};

/** Decides by what the conversation holds, so any process answers the same. */
const model = createScriptedClient("m", (req: ModelRequest) => {
  const results = req.messages.filter((m) => m.role === "tool").map((m) => readsData(m.content));
  const input = req.messages.find((m) => m.role === "user")?.content ?? "";
  switch (req.agent) {
    case "lead":
      if (results.length > 0) return `lead: ${results.join(" + ")}`;
      return {
        toolCalls: ["a", "b", "c"].map((w) => ({ name: `delegate.${w}`, arguments: JSON.stringify({ task: `${w} for ${input}` }) })),
      };
    case "boss":
      return results.length > 0 ? "boss done" : { toolCalls: [{ name: "delegate.sleeper", arguments: JSON.stringify({ task: "sleep" }) }] };
    case "sleeper":
      return { toolCalls: [{ name: "wait.for_event", arguments: JSON.stringify({ name: "never" }) }] };
    default:
      return `${req.agent} did "${input}"`;
  }
});

describe.skipIf(!db.reachable)("delegation on PostgreSQL, two nodes", () => {
  let one: Outpost;
  let two: Outpost;
  beforeAll(async () => {
    const p = project();
    const start = () =>
      startOutpost({
        project: p,
        dataDir: mkdtempSync(join(tmpdir(), "outpost-pg-teams-data-")),
        databaseUrl: db.url,
        modelFor: () => model,
        pollMs: 50,
      });
    one = await start();
    two = await start();
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
    await db.drop();
  });

  const finish = async (o: Outpost, id: string) => {
    for await (const e of o.streamEvents(id)) void e;
    return o.getRun(id);
  };

  it("fans out from many parents at once; every child reports to its parent exactly once", async () => {
    const parents = await Promise.all(Array.from({ length: 8 }, (_, i) => one.startRun({ agent: "lead", input: `job ${i}` })));
    const done = await Promise.all(parents.map((p, i) => finish(i % 2 ? one : two, p.id)));
    for (const [i, run] of done.entries()) {
      expect(run.status).toBe("completed");
      expect(run.output).toBe(`lead: a did "a for job ${i}" + b did "b for job ${i}" + c did "c for job ${i}"`);
      const events = await two.getEvents(run.id);
      const started = events.filter((e) => e.type === "delegation.started").map((e) => e.data.child_run_id);
      const finished = events.filter((e) => e.type === "child.finished").map((e) => e.data.child_run_id);
      expect(started).toHaveLength(3);
      expect([...finished].sort()).toEqual([...started].sort());
      const tree = await one.getRunTree(run.id);
      expect(tree.children.map((c) => [c.run.agent, c.run.status, c.run.parent_run_id])).toEqual([
        ["a", "completed", run.id],
        ["b", "completed", run.id],
        ["c", "completed", run.id],
      ]);
    }
  });

  it("a cancel sent to one node stops the tree wherever it runs", async () => {
    const boss = await one.startRun({ agent: "boss", input: "go" });
    let sleeper: string | undefined;
    for (let i = 0; i < 200 && !sleeper; i++) {
      const tree = await two.getRunTree(boss.id);
      if (tree.children[0]?.run.status === "waiting") sleeper = tree.children[0].run.id;
      else await new Promise((r) => setTimeout(r, 50));
    }
    expect(sleeper).toBeDefined();
    await two.cancelRun(boss.id, "not needed");
    const b = await finish(one, boss.id);
    expect(b.status).toBe("cancelled");
    expect((await one.getRun(sleeper as string)).status).toBe("cancelled");
  });
});
