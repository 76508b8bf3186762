/**
 * Shared workers, many tenants, on PostgreSQL: two workers (two slots each) and an API process.
 *
 * - Fairness: one workspace floods the queue with 80 runs; another then sends 3. All three start
 *   before 8 more of the flood's do — twice the 4 slots there are: the flood's runs already claimed
 *   start, then each free slot goes to the workspace with fewer running, so the quiet one holds half
 *   the slots at once. That is the bound we hold to. In first-come order they would wait for the
 *   whole flood.
 * - Caps: with `scheduling.max_running_per_workspace: 3` and the agent's `limits.max_running: 2`, no
 *   workspace ever has more than 3 runs executing, nor more than 2 of the capped agent, across both
 *   workers; every run still completes.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { RunView } from "../../src/core/api.js";
import type { AgentDefinition, Project } from "../../src/definitions/types.js";
import { createScriptedClient } from "../../src/models/index.js";
import { type Outpost, startOutpost } from "../../src/runtime/index.js";
import type { Caller } from "../../src/security/types.js";
import { until } from "../helpers/until.js";
import { newDataDir, project, sleep } from "../runtime/fixtures.js";
import { createTestDatabase } from "./database.js";

const caller = (workspace: string): Caller => ({
  workspace,
  id: `key:${workspace}`,
  name: workspace,
  roles: ["admin"],
  groups: [],
  via: "api_key",
});

/** Each run's first model call, in the order they happened, and what was executing at once per workspace. */
function observedModel() {
  const starts: string[] = [];
  const inFlight = new Map<string, number>();
  const peak = new Map<string, number>();
  const model = createScriptedClient("m", async (req) => {
    const input = String(req.messages.find((m) => m.role === "user")?.content);
    const [workspace, agent] = input.split(" ");
    for (const k of [workspace, `${workspace}/${agent}`]) {
      inFlight.set(k, (inFlight.get(k) ?? 0) + 1);
      peak.set(k, Math.max(peak.get(k) ?? 0, inFlight.get(k) ?? 0));
    }
    starts.push(input);
    await sleep(15); // a model answering over the network: runs hold their slot meanwhile
    for (const k of [workspace, `${workspace}/${agent}`]) inFlight.set(k, (inFlight.get(k) ?? 0) - 1);
    return "Done.";
  });
  return { model, starts, peak };
}

async function cluster(p: Project, url: string, model: ReturnType<typeof observedModel>["model"]): Promise<Outpost[]> {
  const common = { project: p, databaseUrl: url, modelFor: () => model };
  return Promise.all([
    startOutpost({ ...common, dataDir: newDataDir(), concurrency: 0 }),
    startOutpost({ ...common, dataDir: newDataDir(), concurrency: 2 }),
    startOutpost({ ...common, dataDir: newDataDir(), concurrency: 2 }),
  ]);
}

const fairDb = await createTestDatabase("outpost_fair");
const capsDb = await createTestDatabase("outpost_caps");

describe.skipIf(!fairDb.reachable)("shared workers across workspaces (PostgreSQL)", () => {
  const open: Outpost[] = [];
  afterAll(async () => {
    await Promise.all(open.map((o) => o.close()));
    await fairDb.drop();
    await capsDb.drop();
  });

  it("a flood from one workspace does not delay another's runs beyond twice the slots there are", async () => {
    const { model, starts } = observedModel();
    const [api, ...workers] = await cluster(project([]), fairDb.url, model);
    open.push(api, ...workers);
    const flood = api.as(caller("flood"));
    const flooded: RunView[] = [];
    for (let i = 0; i < 80; i++) flooded.push(await flood.startRun({ agent: "clerk", input: `flood clerk ${i}` }));
    await until("the flood to be executing", async () => (starts.length >= 4 ? true : null));
    const other = api.as(caller("quiet"));
    const quiet: RunView[] = [];
    for (let i = 0; i < 3; i++) quiet.push(await other.startRun({ agent: "clerk", input: `quiet clerk ${i}` }));
    // From here on every claim prefers the quiet workspace; flood runs claimed before may still start after (a slot each).
    const sentAt = starts.length;
    await until("the quiet workspace's runs to finish", async () => {
      const runs = await Promise.all(quiet.map((r) => other.getRun(r.id)));
      return runs.every((r) => r.status === "completed") ? true : null;
    });
    const after = starts.slice(sentAt);
    const lastQuiet = Math.max(...[0, 1, 2].map((i) => after.indexOf(`quiet clerk ${i}`)));
    const floodBefore = after.slice(0, lastQuiet).filter((s) => s.startsWith("flood")).length;
    expect(
      floodBefore,
      `flood runs started before the quiet workspace's three: ${after.slice(0, lastQuiet + 1).join(", ")}`,
    ).toBeLessThanOrEqual(8);
    // The flood still drains, whole.
    await until(
      "the flood to drain",
      async () => ((await Promise.all(flooded.map((r) => flood.getRun(r.id)))).every((r) => r.status === "completed") ? true : null),
      60_000,
    );
  }, 120_000);

  it("caps per workspace and per agent hold across workers", async () => {
    const { model, peak } = observedModel();
    const base = project([]);
    const clerk = base.agents.get("clerk") as AgentDefinition;
    const capped: AgentDefinition = { ...clerk, name: "refunds", limits: { ...clerk.limits, maxRunning: 2 } };
    const p: Project = { ...base, agents: new Map([...base.agents, ["refunds", capped]]), maxRunningPerWorkspace: 3 };
    const [api, ...workers] = await cluster(p, capsDb.url, model);
    open.push(api, ...workers);
    const runs: { ws: string; id: string }[] = [];
    for (const ws of ["north", "south"]) {
      const as = api.as(caller(ws));
      for (let i = 0; i < 10; i++) {
        for (const agent of ["refunds", "clerk"]) runs.push({ ws, id: (await as.startRun({ agent, input: `${ws} ${agent} ${i}` })).id });
      }
    }
    await until(
      "every run to complete",
      async () => {
        const all = await Promise.all(runs.map((r) => api.as(caller(r.ws)).getRun(r.id)));
        return all.every((r) => r.status === "completed") ? true : null;
      },
      60_000,
    );
    for (const ws of ["north", "south"]) {
      expect(peak.get(ws), `${ws}: runs executing at once`).toBeLessThanOrEqual(3);
      expect(peak.get(`${ws}/refunds`), `${ws}: refunds executing at once`).toBeLessThanOrEqual(2);
    }
    // Four slots, two workspaces each allowed three: both ran more than one at a time (the caps bound, not serialise).
    expect(Math.max(peak.get("north") ?? 0, peak.get("south") ?? 0)).toBeGreaterThan(1);
  }, 120_000);
});
