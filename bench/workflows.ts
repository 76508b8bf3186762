/**
 * Workflows and schedules: the time per workflow step (a tool step: its intent and outcome committed, its arguments
 * evaluated, its policy decided) against the time per agent step (a model turn or a tool call of the standard
 * workload), one run at a time; and firings per second of a busy schedule table (every schedule due at once, each
 * firing recorded and its run created, the due ones taken a batch per tick). Runs on its own too:
 *   npx tsx bench/workflows.ts [--quick]
 */
import { rmSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { startOutpost } from "../src/runtime/index.js";
import { localCaller } from "../src/security/identity/index.js";
import { normalizeSteps, workflowFileSchema } from "../src/workflows/definition.js";
import { median, tempDir } from "./driver.js";
import { benchAgent, benchModel, benchProject, STEPS_PER_RUN, TOOL_CALLS } from "./workload.js";

export interface WorkflowBench {
  workflowStepUs: number;
  agentStepUs: number;
  steps: number;
  runs: number;
  schedules: number;
  firingsPerSec: number;
}

const STEPS = TOOL_CALLS;

export async function workflowOverhead(quick: boolean): Promise<WorkflowBench> {
  const runs = quick ? 30 : 150;
  const project = benchProject();
  const flow = workflowFileSchema.parse({
    name: "adder",
    steps: Array.from({ length: STEPS }, (_, i) => ({ id: `add_${i}`, tool: "counter.add", arguments: { n: `{{ ${i} + 1 }}` } })),
  });
  project.workflows = new Map([
    [
      "adder",
      {
        name: "adder",
        description: "",
        team: null,
        clearance: "internal",
        inputSchema: null,
        onEvents: [],
        steps: normalizeSteps(flow.steps),
        output: undefined,
        file: "workflows/adder.yaml",
      },
    ],
  ]);
  const dataDir = tempDir("workflows");
  const o = await startOutpost({ project, dataDir, modelFor: () => benchModel(), pollMs: 20 });
  const done = (id: string) =>
    new Promise<void>((resolve) => {
      const check = async () => {
        for await (const _ of o.streamEvents(id)) void _;
        resolve();
      };
      void check();
    });
  try {
    const time = async (start: () => Promise<{ id: string }>) => {
      const per: number[] = [];
      for (let r = 0; r < runs; r++) {
        const t = performance.now();
        await done((await start()).id);
        per.push(performance.now() - t);
      }
      return median(per);
    };
    await time(() => o.startWorkflowAs(localCaller("bench"), "adder", {})); // warm-up
    const workflowMs = await time(() => o.startWorkflowAs(localCaller("bench"), "adder", {}));
    const agentMs = await time(() => o.startRun({ agent: "bench", input: "go" }));
    return {
      workflowStepUs: (workflowMs * 1000) / STEPS,
      agentStepUs: (agentMs * 1000) / STEPS_PER_RUN,
      steps: STEPS,
      runs,
      ...(await firings(quick)),
    };
  } finally {
    await o.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Every schedule of the table due at once: one tick records each firing and creates its run. */
async function firings(quick: boolean): Promise<{ schedules: number; firingsPerSec: number }> {
  const schedules = quick ? 500 : 2_000;
  const agents = Array.from({ length: schedules }, (_, i) => {
    const a = benchAgent(`clerk-${i}`, ["counter.add"]);
    a.schedules = [{ name: "minutely", cron: "* * * * *", timezone: "UTC", input: "check", missed: "skip" }];
    return a;
  });
  const now = { t: Date.parse("2026-12-07T09:00:30Z") };
  const dataDir = tempDir("schedules");
  const o = await startOutpost({
    project: benchProject(agents),
    dataDir,
    modelFor: () => benchModel(),
    concurrency: 0,
    clock: () => now.t,
    triggerTicks: false,
  });
  try {
    await o.triggers.tick(); // every schedule starts from now
    now.t = Date.parse("2026-12-07T09:01:00.500Z");
    const t = performance.now();
    let fired = 0;
    for (let n = await o.triggers.tick(); n > 0; n = await o.triggers.tick()) fired += n; // a tick takes a batch of the due schedules
    const s = (performance.now() - t) / 1000;
    if (fired !== schedules) throw new Error(`workflows bench: ${fired} of ${schedules} schedules fired`);
    return { schedules, firingsPerSec: fired / s };
  } finally {
    await o.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export function workflowsSection(r: WorkflowBench): string {
  return `## Workflows and schedules

| measure | value |
|---|---|
| workflow tool step, one run at a time (µs/step, median of ${r.runs} runs × ${r.steps} steps) | ${r.workflowStepUs.toFixed(0)} |
| agent step, one run at a time (µs/step, median of ${r.runs} runs × ${STEPS_PER_RUN} steps) | ${r.agentStepUs.toFixed(0)} |
| schedule firings per second (${r.schedules.toLocaleString("en-US")} schedules due at once) | ${r.firingsPerSec.toFixed(0)} |

A workflow tool step commits twice (step.started with its evaluated arguments and key, policy.decided with it;
then step.completed) and evaluates its JSONata arguments; an agent step of the standard workload is one commit (a
model turn or a tool call, scripted model, no latency). A firing is a compare-and-set of its schedule's cursor and
the firing's row in one transaction, then its run created with the firing's key.
`;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await workflowOverhead(process.argv.includes("--quick"));
  console.log(workflowsSection(r));
}
