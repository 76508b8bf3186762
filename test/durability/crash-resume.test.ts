/**
 * Crash and resume: worker processes running Outpost are SIGKILLed at
 * arbitrary points — during startup, between commits, inside tool calls
 * (before and after the side effect) — and restarted, until every run has
 * finished. Then: every run completed, every side effect was applied exactly
 * once per idempotency key (with retries visibly reusing the key), and every
 * event log is complete and ordered.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { EventView } from "../../src/core/api.js";
import { loadProject } from "../../src/definitions/index.js";
import { startOutpost } from "../../src/runtime/outpost.js";
import { logProblems, rand, readJsonLines, sleep } from "./fixtures/checks.js";
import { prepareWorkerCommand, WorkerProcess } from "./fixtures/harness.js";
import {
  LEDGER_ANSWER,
  LEDGER_STEPS,
  removeDir,
  sleepsAfterApply,
  sleepsBeforeApply,
  tempDir,
  writeLedgerProject,
} from "./fixtures/project.js";

const RUNS = 12;
const TARGET_KILLS = 22;
/** Events the workers commit for all runs (all but run.started, written when a run is created): a budget guide. */
const EXPECTED_EVENTS = RUNS * (LEDGER_STEPS * 4 + 3);

const projectDir = writeLedgerProject(tempDir("ledger-project"));
const dataDir = tempDir("ledger-data");
let bundleDir: string | undefined;
afterAll(() => {
  removeDir(projectDir);
  removeDir(dataDir);
  if (bundleDir) removeDir(bundleDir);
});

/** `event <run> <seq> <type> <detail>` → the run and ledger index of a tool.called line, if it is one. */
function called(line: string): { run: string; i: number } | null {
  const parts = line.split(" ");
  if (parts[0] !== "event" || parts[3] !== "tool.called") return null;
  return { run: parts[1], i: (JSON.parse(parts.slice(4).join(" ")) as { i: number }).i };
}

const calledSlow = (line: string, slow: (run: string, i: number) => boolean) => {
  const c = called(line);
  return c !== null && slow(c.run, c.i);
};

type Strategy = "startup" | "timer" | "events" | "after-model-call" | "before-apply" | "after-apply";
const ROTATION: Strategy[] = ["events", "after-apply", "timer", "before-apply", "after-model-call", "events", "after-apply", "startup"];

/**
 * Waits for this strategy's moment to strike; resolves with a description of it. `aimed` is set once
 * the moment is chosen and only a short delay remains (the event budget no longer pre-empts it then).
 */
async function moment(w: WorkerProcess, strategy: Strategy, aimed: { at: boolean }): Promise<string> {
  switch (strategy) {
    case "startup": {
      const ms = rand(0, 60);
      await sleep(ms);
      return `${ms} ms after go`;
    }
    case "timer": {
      await w.ready;
      const ms = rand(0, 150);
      await sleep(ms);
      return `${ms} ms after ready`;
    }
    case "events": {
      const k = rand(1, 60);
      const target = w.events + k;
      if (w.events < target) await w.waitForLine(() => w.events >= target);
      return `after ${k} events`;
    }
    case "after-model-call": {
      await w.waitForLine((l) => l.includes(" model.called "));
      aimed.at = true;
      const ms = rand(0, 2);
      await sleep(ms);
      return `${ms} ms after a model.called`;
    }
    case "before-apply": {
      const line = await w.waitForLine((l) => calledSlow(l, sleepsBeforeApply));
      aimed.at = true;
      const ms = rand(0, 4);
      await sleep(ms);
      return `${ms} ms into ${line.split(" ").slice(3).join(" ")}`;
    }
    case "after-apply": {
      const line = await w.waitForLine((l) => calledSlow(l, sleepsAfterApply));
      aimed.at = true;
      const ms = rand(3, 12);
      await sleep(ms);
      return `${ms} ms into ${line.split(" ").slice(3).join(" ")}`;
    }
  }
}

interface Kill {
  strategy: Strategy;
  when: string;
  eventsSeen: number;
  lastLine: string;
}

describe("crash and resume (worker processes SIGKILLed and restarted)", () => {
  it(`completes ${RUNS} runs of ${LEDGER_STEPS} tool calls each through ${TARGET_KILLS} kills, with every side effect applied once`, async () => {
    // The runs are queued by an API-only Outpost (no workers), which then lets go of the data folder.
    const project = await loadProject(projectDir);
    const setup = await startOutpost({ project, dataDir, concurrency: 0 });
    const runIds: string[] = [];
    for (let k = 0; k < RUNS; k++) runIds.push((await setup.startRun({ agent: "ledger", input: `ledger run ${k}` })).id);
    await setup.close();

    const command = await prepareWorkerCommand();
    if (command.dir) bundleDir = command.dir;
    const spawnWorker = () => new WorkerProcess(command, projectDir, dataDir, RUNS);

    const kills: Kill[] = [];
    let lives = 0;
    let reported = 0; // events reported by all workers: each was committed, none twice
    // Workers warming up (loading modules, the project) while the current one lives, so a restart follows a kill at once.
    const spares: WorkerProcess[] = [spawnWorker(), spawnWorker()];
    try {
      for (;;) {
        const w = spares.shift() as WorkerProcess;
        await w.warm;
        if (kills.length + spares.length < TARGET_KILLS) spares.push(spawnWorker());
        lives++;
        w.go();
        if (kills.length >= TARGET_KILLS) {
          const exit = await w.exited;
          reported += w.events;
          expect(exit, `final worker failed:\n${w.stderr}`).toEqual({ code: 0, signal: null });
          expect(w.lastLine).toBe("done");
          break;
        }
        // Spread the remaining work over the remaining kills, so the target is reached before the runs end.
        const remaining = Math.max(0, EXPECTED_EVENTS - reported);
        const budget = Math.max(1, Math.floor((0.8 * remaining) / (TARGET_KILLS - kills.length + 1)));
        const strategy = ROTATION[kills.length % ROTATION.length];
        const aimed = { at: false };
        const strike = await Promise.race([
          moment(w, strategy, aimed).catch(() => null),
          w
            .waitForLine(() => w.events >= budget && !aimed.at)
            .then(
              () => `at the event budget (${budget})`,
              () => null,
            ),
          w.exited.then(() => null),
          sleep(5000).then(() => "fallback: 5 s"),
        ]);
        const exit = strike === null ? await w.exited : await w.kill();
        reported += w.events;
        if (exit.signal !== "SIGKILL") {
          // It ended by itself (every run done before the kill target: asserted below), or it failed.
          expect(exit, `worker died by itself:\n${w.stderr}`).toEqual({ code: 0, signal: null });
          break;
        }
        kills.push({
          strategy,
          when: strike as string,
          eventsSeen: w.events,
          lastLine: w.lastLine.split(" ").slice(3, 4).join(" ") || w.lastLine,
        });
      }
    } finally {
      await Promise.all(spares.map((s) => s.dismiss()));
    }

    // ---- verify, from a fresh Outpost on the same data folder (API only) ----
    const check = await startOutpost({ project, dataDir, concurrency: 0 });
    try {
      const runs = await Promise.all(runIds.map((id) => check.getRun(id)));
      for (const r of runs) {
        expect(r.status, `${r.id}: ${JSON.stringify(r.error)}`).toBe("completed");
        expect(r.output).toBe(LEDGER_ANSWER);
      }

      const logs = new Map<string, EventView[]>();
      for (const id of runIds) logs.set(id, await check.getEvents(id));
      for (const [id, events] of logs) expect(logProblems(events, "run.completed"), id).toEqual([]);

      const ledgerFile = path.join(dataDir, "ledger.jsonl");
      const attemptsFile = path.join(dataDir, "attempts.jsonl");
      const ledger = readJsonLines<{ run: string; key: string; i: number }>(ledgerFile, readFileSync(ledgerFile, "utf8"));
      const attempts = readJsonLines<{ run: string; key: string; i: number; pid: number }>(
        attemptsFile,
        readFileSync(attemptsFile, "utf8"),
      );

      // Each key's line exists exactly once; no key was applied twice.
      const linesPerKey = new Map<string, number>();
      for (const l of ledger) linesPerKey.set(l.key, (linesPerKey.get(l.key) ?? 0) + 1);
      expect([...linesPerKey].filter(([, n]) => n !== 1)).toEqual([]);
      expect(ledger.length).toBe(RUNS * LEDGER_STEPS);

      const attemptsPerKey = new Map<string, { n: number; pids: Set<number> }>();
      for (const a of attempts) {
        const entry = attemptsPerKey.get(a.key) ?? { n: 0, pids: new Set<number>() };
        entry.n++;
        entry.pids.add(a.pid);
        attemptsPerKey.set(a.key, entry);
      }

      for (const id of runIds) {
        const mine = ledger.filter((l) => l.run === id);
        // 30 distinct keys per run, one per index, each its line exactly once.
        expect(new Set(mine.map((l) => l.key)).size).toBe(LEDGER_STEPS);
        expect(mine.map((l) => l.i).sort((a, b) => a - b)).toEqual([...Array(LEDGER_STEPS).keys()]);
        // The keys are exactly the ones the log committed with the tool intents, for the same entries.
        const intents = (logs.get(id) as EventView[])
          .filter((e) => e.type === "tool.called")
          .map((e) => ({ key: e.data.idempotency_key as string, i: (e.data.arguments as { i: number }).i }));
        expect(intents).toHaveLength(LEDGER_STEPS);
        expect(new Map(mine.map((l) => [l.key, l.i]))).toEqual(new Map(intents.map((t) => [t.key, t.i])));
      }

      // Every attempt used a committed key; every key was attempted at least once; retries reused the key.
      for (const a of attempts) expect(linesPerKey.has(a.key), `attempt with unknown key ${a.key}`).toBe(true);
      for (const key of linesPerKey.keys()) expect(attemptsPerKey.get(key)?.n ?? 0).toBeGreaterThanOrEqual(1);
      const retried = [...attemptsPerKey.values()].filter((e) => e.n > 1);
      const retriedAcrossProcesses = retried.filter((e) => e.pids.size > 1);
      expect(attempts.length).toBeGreaterThanOrEqual(ledger.length);
      expect(retried.length).toBeGreaterThan(0);
      expect(retriedAcrossProcesses.length).toBe(retried.length); // a call is retried only by a new process

      // Retries after the side effect was applied were answered by the de-duplication, not applied again.
      const deduplicated = [...logs.values()]
        .flat()
        .filter((e) => e.type === "tool.completed" && String(e.data.output).includes('"duplicate":true')).length;

      console.log(
        [
          `crash-resume (${command.description}): ${kills.length} kills over ${lives} worker lives; ${RUNS} runs × ${LEDGER_STEPS} side effects; ${reported} events committed by workers`,
          `  attempts ${attempts.length} for ${ledger.length} applied entries; ${retried.length} keys retried; ${deduplicated} retries answered as duplicates`,
          `  kills by strategy: ${JSON.stringify(countBy(kills.map((k) => k.strategy)))}`,
          `  last line seen before each kill: ${JSON.stringify(countBy(kills.map((k) => k.lastLine)))}`,
          `  kill moments: ${kills.map((k) => `${k.strategy}: ${k.when}`).join("; ")}`,
        ].join("\n"),
      );
      expect(kills.length).toBeGreaterThanOrEqual(20);
      expect(deduplicated).toBeGreaterThan(0);
    } finally {
      await check.close();
    }
  }, 120_000);
});

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
