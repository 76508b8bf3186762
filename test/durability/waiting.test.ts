/**
 * Waiting: a run that waits (for an approval, a time, an external event) lives
 * only in the store. It survives its process being killed or closed; the next
 * process holds nothing for it until the store wakes it; approvals fail closed.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { RunView } from "../../src/core/api.js";
import { isTerminal } from "../../src/core/api.js";
import { OutpostError } from "../../src/core/errors.js";
import { loadProject } from "../../src/definitions/index.js";
import type { Project } from "../../src/definitions/types.js";
import { type Outpost, startOutpost } from "../../src/runtime/outpost.js";
import { logProblems, readJsonLines, sleep, until } from "./fixtures/checks.js";
import { prepareWorkerCommand, WorkerProcess } from "./fixtures/harness.js";
import { EVENT_NAME, removeDir, tempDir, writeWaitingProject } from "./fixtures/project.js";

const SLEEP_SECONDS = 1;
const projectDir = writeWaitingProject(tempDir("waiting-project"), SLEEP_SECONDS);
const dirs: string[] = [projectDir];
afterAll(() => {
  for (const d of dirs) removeDir(d);
});

let project: Project | undefined;
async function loadOnce(): Promise<Project> {
  if (!project) {
    project = await loadProject(projectDir);
  }
  return project;
}

function dataFolder(): string {
  const d = tempDir("waiting-data");
  dirs.push(d);
  return d;
}

const open = async (dataDir: string): Promise<Outpost> => startOutpost({ project: await loadOnce(), dataDir, pollMs: 50 });

const settled = (outpost: Outpost, id: string) =>
  until(
    () => outpost.getRun(id),
    (r) => isTerminal(r.status),
    15_000,
    `run ${id} to end`,
  );
const waiting = (outpost: Outpost, id: string) =>
  until(
    () => outpost.getRun(id),
    (r) => r.status === "waiting",
    15_000,
    `run ${id} to wait`,
  );

function payments(dataDir: string): { run: string; key: string; to: string; amount: number }[] {
  const file = path.join(dataDir, "payments.jsonl");
  return existsSync(file) ? readJsonLines(file, readFileSync(file, "utf8")) : [];
}

/** The run as the store has it, and proof that no process holds it: no lease, and its log does not move. */
async function heldByNobody(outpost: Outpost, id: string) {
  const before = await outpost.store.getRun(outpost.project.workspace, id);
  await sleep(200); // several scheduler polls (pollMs 50) of the new process
  const after = await outpost.store.getRun(outpost.project.workspace, id);
  expect(after?.leaseOwner).toBeNull();
  expect(after?.leaseExpiresAt).toBeNull();
  expect(after?.lastSeq).toBe(before?.lastSeq);
  return after;
}

async function conflict(p: Promise<unknown>): Promise<OutpostError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OutpostError);
  expect((err as OutpostError).code).toBe("conflict");
  return err as OutpostError;
}

describe("waiting survives the process (approvals, timers, events)", () => {
  it("approvals: waits across a SIGKILL of its worker; approve runs the tool once, deny never runs it; decisions are final", async () => {
    const dataDir = dataFolder();
    // Queue two runs, then let a worker process take them to their approvals, and SIGKILL it there.
    const setup = await startOutpost({ project: await loadOnce(), dataDir, concurrency: 0 });
    const alice = await setup.startRun({ agent: "payer", input: "alice" });
    const bob = await setup.startRun({ agent: "payer", input: "bob" });
    await setup.close();

    const command = await prepareWorkerCommand();
    if (command.dir) dirs.push(command.dir);
    const worker = new WorkerProcess(command, projectDir, dataDir, 1_000_000);
    try {
      await worker.warm;
      let waitingRuns = 0;
      const bothWaiting = worker.waitForLine((l) => l.includes(" run.waiting ") && ++waitingRuns === 2);
      worker.go();
      await bothWaiting;
    } finally {
      const exit = await worker.kill();
      expect(exit.signal, worker.stderr).toBe("SIGKILL");
    }

    const outpost = await open(dataDir);
    try {
      const pending = await outpost.listApprovals({ status: "pending" });
      expect(pending.map((a) => a.run_id).sort()).toEqual([alice.id, bob.id].sort());
      for (const run of [alice, bob]) {
        const view = await outpost.getRun(run.id);
        expect(view.status).toBe("waiting");
        expect(view.waiting_for?.kind).toBe("approval");
        const record = await heldByNobody(outpost, run.id);
        expect(record?.status).toBe("waiting");
      }
      expect(payments(dataDir)).toEqual([]);

      const approvalOf = (runId: string) => pending.find((a) => a.run_id === runId)?.id as string;
      const approved = await outpost.decideApproval(approvalOf(alice.id), { decision: "approve", by: "manager" });
      expect(approved.status).toBe("approved");
      const done = await settled(outpost, alice.id);
      expect(done.status).toBe("completed");
      expect(done.output).toBe("paid alice");
      expect(payments(dataDir).filter((p) => p.run === alice.id)).toHaveLength(1);

      await outpost.decideApproval(approvalOf(bob.id), { decision: "deny", reason: "over budget", by: "manager" });
      const denied = await settled(outpost, bob.id);
      expect(denied.status).toBe("failed");
      expect(denied.error?.code).toBe("approval_denied");
      expect(denied.error?.message).toContain("over budget");
      expect(payments(dataDir).filter((p) => p.run === bob.id)).toEqual([]);

      // Fail closed: a decided approval cannot be decided again, either way.
      await conflict(outpost.decideApproval(approvalOf(alice.id), { decision: "approve" }));
      await conflict(outpost.decideApproval(approvalOf(bob.id), { decision: "approve" }));
      expect(await outpost.listApprovals({ status: "pending" })).toEqual([]);

      expect(logProblems(await outpost.getEvents(alice.id), "run.completed")).toEqual([]);
      expect(logProblems(await outpost.getEvents(bob.id), "run.failed")).toEqual([]);
      expect((await outpost.getEvents(bob.id)).some((e) => e.type === "tool.called")).toBe(false);
      expect(payments(dataDir)).toHaveLength(1);
    } finally {
      await outpost.close();
    }
  }, 60_000);

  it("wait.until: the timer survives a restart, and the run completes once the time has passed", async () => {
    const dataDir = dataFolder();
    const first = await open(dataDir);
    let run: RunView;
    try {
      run = await first.startRun({ agent: "sleeper", input: "nap" });
      run = await waiting(first, run.id);
      expect(run.waiting_for?.kind).toBe("timer");
    } finally {
      await first.close();
    }
    const until = Date.parse((run.waiting_for as { until: string }).until);

    const second = await open(dataDir);
    try {
      const record = await second.store.getRun(second.project.workspace, run.id);
      expect(record?.status).toBe("waiting");
      expect(record?.leaseOwner).toBeNull();
      expect(record?.wakeAt).toBe(until); // the store holds the timer

      const done = await settled(second, run.id);
      expect(done.status).toBe("completed");
      expect(done.output).toBe("woke up");
      const events = await second.getEvents(run.id);
      expect(logProblems(events, "run.completed")).toEqual([]);
      const resumed = events.find((e) => e.type === "run.resumed");
      expect(resumed?.data.reason).toBe("timer");
      expect(Date.parse(resumed?.at as string)).toBeGreaterThanOrEqual(until); // never woken early
    } finally {
      await second.close();
    }
  }, 30_000);

  it("wait.for_event: waits across a restart, ignores other events, wakes on sendEvent with its payload", async () => {
    const dataDir = dataFolder();
    const first = await open(dataDir);
    let run: RunView;
    try {
      run = await first.startRun({ agent: "listener", input: "where is my parcel" });
      run = await waiting(first, run.id);
      expect(run.waiting_for).toEqual({ kind: "event", event: EVENT_NAME });
    } finally {
      await first.close();
    }

    const second = await open(dataDir);
    try {
      await heldByNobody(second, run.id);
      const other = await second.sendEvent(run.id, { name: "something.else", payload: { x: 1 } });
      expect(other.status).toBe("waiting");
      await heldByNobody(second, run.id);

      await second.sendEvent(run.id, { name: EVENT_NAME, payload: { tracking: "TRK-42" } });
      const done = await settled(second, run.id);
      expect(done.status).toBe("completed");
      expect(done.output).toBe("got TRK-42");
      const events = await second.getEvents(run.id);
      expect(logProblems(events, "run.completed")).toEqual([]);
      expect(events.filter((e) => e.type === "event.received").map((e) => e.data.name)).toEqual(["something.else", EVENT_NAME]);
    } finally {
      await second.close();
    }
  }, 30_000);

  it("cancelling a waiting run ends it; its approval is no longer pending and approving it afterwards fails closed", async () => {
    const dataDir = dataFolder();
    const first = await open(dataDir);
    let run: RunView;
    try {
      run = await first.startRun({ agent: "payer", input: "mallory" });
      await waiting(first, run.id);
    } finally {
      await first.close();
    }

    const second = await open(dataDir);
    try {
      const [approval] = (await second.listApprovals({ status: "pending" })).filter((a) => a.run_id === run.id);
      expect(approval).toBeDefined();
      const cancelled = await second.cancelRun(run.id, "customer withdrew");
      expect(cancelled.status).toBe("cancelled");
      expect((await second.listApprovals({ status: "pending" })).filter((a) => a.run_id === run.id)).toEqual([]);
      const [after] = (await second.listApprovals()).filter((a) => a.id === approval.id);
      expect(after.status).toBe("denied");

      await conflict(second.decideApproval(approval.id, { decision: "approve", by: "late-manager" }));
      await sleep(200); // scheduler polls: nothing may wake it
      const final = await second.getRun(run.id);
      expect(final.status).toBe("cancelled");
      const events = await second.getEvents(run.id);
      expect(logProblems(events, "run.cancelled")).toEqual([]);
      expect(events.some((e) => e.type === "tool.called" || e.type === "approval.decided")).toBe(false);
      expect(payments(dataDir)).toEqual([]);
    } finally {
      await second.close();
    }
  }, 30_000);
});
