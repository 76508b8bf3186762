/**
 * Acme's month-end close under SIGKILL, at every step. Worker processes run Outpost on examples/acme (scripted model;
 * the ledger a real stdio MCP server over its SQLite database) and the close of a month with one refund that does not
 * match its credit note. Each worker life is frozen at the next moment of the close — a step just started or just
 * completed (reconcile, the branch, the invoicing agent's step, the controller's approval, the posting), the agent's
 * child run created, its ledger read sent, its answer committed before the workflow heard — and SIGKILLed; a fresh
 * process continues on the same data folder. The controller approves only after the kill that found the run waiting.
 * Then: the close completed once, with the invoicing agent's typed answer; each step completed exactly once; every log
 * is whole; the ledger holds one closing of the month and no reopening.
 */
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { openLedger } from "../../examples/acme/systems/ledger.js";
import { loadProject } from "../../src/definitions/index.js";
import { startOutpost } from "../../src/runtime/outpost.js";
import { localCaller } from "../../src/security/identity/index.js";
import { addMismatchedRefund } from "../helpers/acme-ledger.js";
import { ACME_DIR, go, killGroup, prepareAcmeWorkerCommand, procAvailable, systemProcesses, WorkerProcess } from "./fixtures/acme.js";
import type { Hold } from "./fixtures/acme-worker.js";
import { sleep } from "./fixtures/checks.js";
import { removeDir, tempDir } from "./fixtures/project.js";

const MONTH = "2026-11";
/** The workflow run and the invoicing agent's run its `explain` step starts. */
const EXPECTED_RUNS = 2;
const started = (step: string): Hold => ({ name: `${step} started`, type: "step.started", match: `"path":"${step}"`, mode: "sync" });
const completed = (step: string): Hold => ({ name: `${step} completed`, type: "step.completed", match: `"path":"${step}"`, mode: "sync" });
/** The moments, in the order the close reaches them: each worker life is frozen at the first not yet reached. */
const MOMENTS: Hold[] = [
  started("reconcile"),
  completed("reconcile"),
  // The agent step creates its child run (keyed by the step) before it records its start.
  { name: "invoicing's run created", type: "created", match: "invoicing new" },
  started("explain"),
  { name: "invoicing's ledger read sent", type: "tool.called", match: '"ledger.get_invoice"', mode: "after-send" },
  { name: "invoicing answered, the workflow not told", type: "run.completed", match: "summary" },
  completed("explain"),
  { name: "waiting for the controller", type: "approval.requested", match: "workflow.approval" },
  { name: "approved, not resumed", type: "approval.decided", match: '"approve"' },
  // The posting's intent committed and its request sent: the ledger has applied it, the workflow not recorded it.
  { name: "posting sent to the ledger", type: "step.started", match: '"path":"post"', mode: "after-send" },
  completed("post"),
];
/** Moments of the invoicing agent's run, which runs beside its parent in the same worker. */
const CHILD_MOMENTS = ["invoicing's ledger read sent", "invoicing answered, the workflow not told"];
const LIFE_TIMEOUT_MS = 40_000;

const dataDir = tempDir("month-end-data");
let bundleDir: string | undefined;
afterAll(() => {
  for (const p of systemProcesses(dataDir)) killGroup(p.pid);
  removeDir(dataDir);
  if (bundleDir) removeDir(bundleDir);
});

/** The ledger as the close finds it: seeded, plus a November refund of 14.95 whose credit note says 10.00. */
function seedLedger(): void {
  const { db } = openLedger(path.join(dataDir, "acme", "ledger.db"));
  try {
    addMismatchedRefund(db, "K1");
  } finally {
    db.close();
  }
}

/** Kills what a killed worker left of its system servers (their stdin closed, they mostly exit by themselves). */
async function reapSystems(): Promise<void> {
  await sleep(250);
  for (const p of systemProcesses(dataDir)) killGroup(p.pid);
}

describe("Acme's month-end close under SIGKILL at every step", () => {
  it("closes the month once, through a kill at each step", async () => {
    expect(procAvailable(), "this test finds the systems' processes through /proc").toBe(true);
    seedLedger();
    const project = await loadProject(ACME_DIR);
    const setup = await startOutpost({ project: { ...project, connections: new Map() }, dataDir, concurrency: 0 });
    const close = await setup.startWorkflowAs(localCaller("acme"), "month-end-close", { input: { month: MONTH } });
    await setup.close();

    const command = await prepareAcmeWorkerCommand();
    if (command.dir) bundleDir = command.dir;
    const reached: string[] = [];
    let approve = false;
    for (let n = 1; ; n++) {
      expect(n, `too many worker lives; reached: ${reached.join(", ")}`).toBeLessThan(MOMENTS.length + 4);
      const w = new WorkerProcess(command, ACME_DIR, dataDir, EXPECTED_RUNS);
      await w.warm;
      // The child's moments are armed once its parent's step start was killed at: else the child, resuming first,
      // would always freeze the process before the parent records that start.
      const armed = (m: Hold) => !CHILD_MOMENTS.includes(m.name) || reached.includes("explain started");
      const holds = MOMENTS.filter((m) => !reached.includes(m.name) && armed(m));
      go(w, { holds, approve });
      const held = w.waitForLine((l) => l.startsWith("held "));
      held.catch(() => undefined);
      const strike = await Promise.race([
        held.then(
          (line) => line,
          () => null,
        ),
        w.exited.then(() => null),
        sleep(LIFE_TIMEOUT_MS).then(() => "timeout"),
      ]);
      if (strike === "timeout") {
        await w.kill();
        throw new Error(`worker life ${n} stalled (reached: ${reached.join(", ")}); last line: ${w.lastLine}\n${w.stderr}`);
      }
      if (strike === null) {
        expect(await w.exited, `worker ${n} ended by itself:\n${w.stderr}`).toEqual({ code: 0, signal: null });
        expect(w.lastLine).toBe("done");
        break;
      }
      const hold = holds.find((h) => strike.startsWith(`held ${h.name} `));
      expect(hold, strike).toBeDefined();
      reached.push(hold?.name ?? "");
      // The controller decides once the close has been found waiting (by a process that then died).
      if (hold?.type === "approval.requested") approve = true;
      // after-send: the request is on its way to the ledger; give it time to be applied before the kill.
      if (hold?.mode === "after-send") await sleep(300);
      expect((await w.kill()).signal).toBe("SIGKILL");
      await reapSystems();
    }
    // Every moment of the workflow's own log was reached and killed at. The child run's moments race with its
    // parent's (both resume in the same worker), so one of them may pass unseen while the other froze the process.
    const why = `reached: ${reached.join(", ")}`;
    for (const m of MOMENTS.filter((x) => !CHILD_MOMENTS.includes(x.name))) expect(reached, why).toContain(m.name);
    expect(reached.filter((r) => CHILD_MOMENTS.includes(r)).length, why).toBeGreaterThanOrEqual(CHILD_MOMENTS.length - 1);

    const check = await startOutpost({ project: { ...project, connections: new Map() }, dataDir, concurrency: 0 });
    try {
      const run = await check.getRun(close.id);
      expect(run.status, JSON.stringify(run.error)).toBe("completed");
      expect(JSON.parse(run.output as string)).toMatchObject({ month: MONTH, closing_id: expect.stringMatching(/^CLOSE-/), mismatches: 1 });
      const events = await check.getEvents(close.id);
      for (const [i, e] of events.entries()) expect(e.seq).toBe(i + 1);
      expect(events.filter((e) => e.type === "workflow.started")).toHaveLength(1);
      const done = events.filter((e) => e.type === "step.completed").map((e) => e.data.path);
      // Each step started once and each leaf completed once (a branch is complete when its arm is: no event of its own).
      const begun = events.filter((e) => e.type === "step.started").map((e) => e.data.path);
      expect(begun.sort()).toEqual(["controller", "explain", "mismatches", "post", "reconcile"]);
      expect(done.sort()).toEqual(["controller", "explain", "post", "reconcile"]);
      expect(events.some((e) => e.type === "workflow.compensating")).toBe(false);
      expect(events.find((e) => e.type === "step.completed" && e.data.path === "explain")?.data.output).toEqual({
        summary: expect.stringContaining("RF-K1"),
        refund_ids: ["RF-K1"],
      });
      const children = (await check.listRuns({ agent: "invoicing" })).items;
      expect(children.map((c) => c.status)).toEqual(["completed"]);
    } finally {
      await check.close();
    }
    const ledger = new Database(path.join(dataDir, "acme", "ledger.db"), { readonly: true });
    try {
      expect(ledger.prepare("SELECT month, refunds FROM closed_periods").all()).toEqual([{ month: MONTH, refunds: 1 }]);
      const posts = ledger.prepare("SELECT COUNT(*) AS n FROM idempotency WHERE tool = 'post_closing_entries'").get() as { n: number };
      expect(posts.n).toBe(1);
      expect((ledger.prepare("SELECT COUNT(*) AS n FROM idempotency WHERE tool = 'reopen_period'").get() as { n: number }).n).toBe(0);
    } finally {
      ledger.close();
    }
    expect(systemProcesses(dataDir)).toEqual([]);
  }, 300_000);
});
