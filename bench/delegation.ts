/**
 * Delegation overhead: what Outpost adds when a run hands a task to another
 * agent (the parent commits the call, starts a child run, leaves memory while it
 * waits, the child runs, its answer is delivered and the parent is claimed again
 * and resumes), against single runs that make the same number of model turns
 * without delegating. The scripted model answers at once, so what is measured
 * is the platform.
 *
 *   delegating: parent — turn 1 calls delegate.worker, turn 2 answers; worker — answers (3 model turns, 2 runs)
 *   baseline:   one run — 2 turns each calling counter.add, turn 3 answers    (3 model turns, 1 run)
 *   fan-out:    parent — turn 1 calls delegate.worker 4 times at once, turn 2 answers; 4 workers answer (6 turns, 5 runs)
 *   baseline:   one run — 5 turns each calling counter.add, turn 6 answers   (6 model turns, 1 run)
 *
 * Runs go one at a time (start, wait for the root run to complete, next), modes
 * interleaved batch by batch so drift on a noisy machine hits all of them alike.
 */
import type { ScriptObject } from "../src/models/index.js";
import { createScriptedClient } from "../src/models/index.js";
import { type Driver, median, openDriver } from "./driver.js";
import { benchAgent, benchProject } from "./workload.js";

export const FAN_OUT = 4;

const counterTurns = (n: number) => Array.from({ length: n }, (_, i) => ({ tool_calls: [{ name: "counter.add", args: { n: i + 1 } }] }));
const delegateTurn = (n: number) => ({
  tool_calls: Array.from({ length: n }, (_, i) => ({ name: "delegate.worker", args: { task: `count the boxes in bay ${i + 1}` } })),
});
const scripts: Record<string, ScriptObject> = {
  desk: { dialogues: [{ turns: [delegateTurn(1), { text: "done" }] }] },
  lead: { dialogues: [{ turns: [delegateTurn(FAN_OUT), { text: "done" }] }] },
  worker: { dialogues: [{ turns: [{ text: "12 boxes" }] }] },
  solo3: { dialogues: [{ turns: [...counterTurns(2), { text: "done" }] }] },
  solo6: { dialogues: [{ turns: [...counterTurns(FAN_OUT + 1), { text: "done" }] }] },
};

/** ms per run, one figure per batch. */
interface Mode {
  agent: string;
  msPerRun: number[];
}

export interface DelegationResult {
  runsPerBatch: number;
  batches: number;
  delegating: number[];
  single: number[];
  fan: number[];
  single6: number[];
  /** Per batch: (delegating − single) ms; (fan − single6) / FAN_OUT ms. */
  addedMs: number[];
  addedFanMsPerChild: number[];
  /** Events in the store per run, by agent (parent counts exclude their children). */
  eventsPerRun: Record<string, number>;
  /** The event types of one delegating parent and of its child, in order. */
  parentTypes: string[];
  childTypes: string[];
}

async function batch(driver: Driver, agent: string, runs: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) await driver.run(agent);
  return (performance.now() - t0) / runs;
}

export async function delegationOverhead(quick: boolean): Promise<DelegationResult> {
  const runsPerBatch = quick ? 40 : 150;
  const batches = quick ? 3 : 7;
  const project = benchProject([
    benchAgent("desk", [], ["worker"]),
    benchAgent("lead", [], ["worker"]),
    benchAgent("worker", []),
    benchAgent("solo3", ["counter.add"]),
    benchAgent("solo6", ["counter.add"]),
  ]);
  const driver = await openDriver(project, createScriptedClient("scripted", scripts));
  const modes: Mode[] = ["desk", "solo3", "lead", "solo6"].map((agent) => ({ agent, msPerRun: [] }));
  try {
    for (const m of modes) await batch(driver, m.agent, runsPerBatch); // warm-up: JIT, statement caches
    for (let b = 0; b < batches; b++) {
      // Rotate the order, so that no mode always follows the same one.
      for (let k = 0; k < modes.length; k++) {
        const m = modes[(b + k) % modes.length];
        m.msPerRun.push(await batch(driver, m.agent, runsPerBatch));
      }
    }
  } finally {
    await driver.close();
  }
  const [desk, solo3, lead, solo6] = modes.map((m) => m.msPerRun);

  const perAgent = driver.query<{ agent: string; runs: number; events: number }>(
    "SELECT r.agent AS agent, COUNT(DISTINCT r.id) AS runs, COUNT(*) AS events FROM runs r JOIN events e ON e.run_id = r.id GROUP BY r.agent",
  );
  const eventsPerRun = Object.fromEntries(perAgent.map((r) => [r.agent, r.events / r.runs]));
  const [parent] = driver.query<{ id: string }>("SELECT id FROM runs WHERE agent = 'desk' ORDER BY id LIMIT 1");
  const typesOf = (id: string) =>
    driver.query<{ type: string }>(`SELECT type FROM events WHERE run_id = '${id}' ORDER BY seq`).map((r) => r.type);
  const [child] = driver.query<{ id: string }>(`SELECT id FROM runs WHERE parent_run_id = '${parent.id}'`);
  const parentTypes = typesOf(parent.id);
  const childTypes = typesOf(child.id);
  driver.remove();

  return {
    runsPerBatch,
    batches,
    delegating: desk,
    single: solo3,
    fan: lead,
    single6: solo6,
    addedMs: desk.map((d, i) => d - solo3[i]),
    addedFanMsPerChild: lead.map((f, i) => (f - solo6[i]) / FAN_OUT),
    eventsPerRun,
    parentTypes,
    childTypes,
  };
}

export const runsPerSec = (msPerRun: number[]) => 1000 / median(msPerRun);
