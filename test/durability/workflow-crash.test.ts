/**
 * Workflows under SIGKILL: worker processes run Outpost on a project whose workflow appends ledger entries in a loop
 * and then in two parallel branches (the crash tests' ledger tool: applied once per idempotency key, some calls slow
 * before or after applying). Each worker life is killed at an arbitrary moment — after some events, a few ms into a
 * step — and a fresh one continues on the same data folder. Then: every workflow run completed with its output, every
 * entry was applied exactly once, re-executions visibly reused the step's key, and every log is whole and ordered
 * with one step.completed per step.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadProject } from "../../src/definitions/index.js";
import { startOutpost } from "../../src/runtime/outpost.js";
import { localCaller } from "../../src/security/identity/index.js";
import { rand, readJsonLines, sleep } from "./fixtures/checks.js";
import { prepareWorkerCommand, WorkerProcess } from "./fixtures/harness.js";
import { LEDGER_TOOL, removeDir, tempDir, writeFiles } from "./fixtures/project.js";

const RUNS = 4;
const ENTRIES = 12;
const TARGET_KILLS = 10;

const WORKFLOW = `name: close
input:
  type: object
  required: [entries]
  properties:
    entries: { type: array, items: { type: integer } }
steps:
  - id: each
    for_each: "{{ input.entries }}"
    as: entry
    do:
      - id: append
        tool: ledger.append
        arguments: { i: "{{ entry }}" }
  - id: finish
    parallel:
      - - id: left
          tool: ledger.append
          arguments: { i: 100 }
      - - id: right
          tool: ledger.append
          arguments: { i: 101 }
output: "{{ $count(steps.each.output) }} entries, then {{ steps.left.output.i }} and {{ steps.right.output.i }}"
`;

const projectDir = writeFiles(tempDir("workflow-project"), {
  "outpost.yaml": "version: 1\nworkspace: durability\nmodels:\n  scripted:\n    provider: scripted\ndefaults:\n  model: scripted\n",
  "agents/clerk.yaml": "name: clerk\ninstructions: Unused here.\ntools:\n  - ledger.append\n",
  "tools/ledger.ts": LEDGER_TOOL,
  "workflows/close.yaml": WORKFLOW,
});
const dataDir = tempDir("workflow-data");
let bundleDir: string | undefined;
afterAll(() => {
  removeDir(projectDir);
  removeDir(dataDir);
  if (bundleDir) removeDir(bundleDir);
});

describe("workflows under SIGKILL", () => {
  it(`completes ${RUNS} workflow runs through ${TARGET_KILLS} kills, every step applied once`, async () => {
    const project = await loadProject(projectDir);
    const setup = await startOutpost({ project, dataDir, concurrency: 0 });
    const runIds: string[] = [];
    const entries = Array.from({ length: ENTRIES }, (_, i) => i);
    for (let k = 0; k < RUNS; k++)
      runIds.push((await setup.startWorkflowAs(localCaller("durability"), "close", { input: { entries } })).id);
    await setup.close();

    const command = await prepareWorkerCommand();
    if (command.dir) bundleDir = command.dir;
    let kills = 0;
    for (;;) {
      const w = new WorkerProcess(command, projectDir, dataDir, RUNS);
      await w.warm;
      w.go();
      if (kills >= TARGET_KILLS) {
        expect(await w.exited, `final worker failed:\n${w.stderr}`).toEqual({ code: 0, signal: null });
        break;
      }
      // Alternately: after a few events, or a few ms into a step (before or after its system applied it).
      const strike =
        kills % 2 === 0
          ? w.waitForLine(
              (
                (target) => () =>
                  w.events >= target
              )(rand(2, 12)),
            )
          : w.waitForLine((l) => l.includes(" step.started ")).then(() => sleep(rand(0, 15)));
      const ended = await Promise.race([
        strike.then(
          () => false,
          () => true,
        ),
        w.exited.then(() => true),
        sleep(5_000).then(() => false),
      ]);
      const exit = ended ? await w.exited : await w.kill();
      if (exit.signal !== "SIGKILL") {
        expect(exit, `worker died by itself:\n${w.stderr}`).toEqual({ code: 0, signal: null });
        break;
      }
      kills++;
    }
    expect(kills).toBeGreaterThanOrEqual(3);

    const check = await startOutpost({ project, dataDir, concurrency: 0 });
    try {
      for (const id of runIds) {
        const r = await check.getRun(id);
        expect(r.status, `${id}: ${JSON.stringify(r.error)}`).toBe("completed");
        expect(r.output).toBe(`${ENTRIES} entries, then 100 and 101`);
        const events = await check.getEvents(id);
        for (const [i, e] of events.entries()) expect(e.seq).toBe(i + 1);
        expect(events.filter((e) => e.type === "workflow.started")).toHaveLength(1);
        const completed = events.filter((e) => e.type === "step.completed").map((e) => e.data.path as string);
        expect(new Set(completed).size, "a step completed twice").toBe(completed.length);
        expect(completed.filter((p) => p.endsWith(".append"))).toHaveLength(ENTRIES);
      }
      const ledgerFile = path.join(dataDir, "ledger.jsonl");
      const ledger = readJsonLines<{ run: string; key: string; i: number }>(ledgerFile, readFileSync(ledgerFile, "utf8"));
      for (const id of runIds) {
        const mine = ledger.filter((l) => l.run === id);
        expect(mine.map((l) => l.i).sort((a, b) => a - b)).toEqual([...entries, 100, 101]);
        expect(new Set(mine.map((l) => l.key)).size).toBe(ENTRIES + 2);
        expect(mine.find((l) => l.i === 3)?.key).toBe(`${id}:each[3].append`);
      }
    } finally {
      await check.close();
    }
  }, 240_000);
});
