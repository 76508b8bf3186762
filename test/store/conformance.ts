/**
 * The store conformance suite: one contract (src/store/types.ts), every driver.
 *
 * `open` must return a fresh, empty store on every call (each test gets its own);
 * `cleanup` runs once after the whole suite (drop temp folders, databases).
 * Every test uses its own workspace names too, so a driver that leaks rows
 * across workspaces is caught even where the data is shared.
 */
import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { OutpostError } from "../../src/core/errors.js";
import { ev, type NewEvent, type RunEvent } from "../../src/core/events.js";
import { newId } from "../../src/core/ids.js";
import { type ClaimedRun, CommitConflict, type CommitRequest, type RunPatch, type RunRecord, type Store } from "../../src/store/types.js";

const LEASE = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const uniq = (prefix: string) => `${prefix}-${randomBytes(4).toString("hex")}`;

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected the promise to reject, but it resolved");
}

async function expectOutpostError(p: Promise<unknown>, code: OutpostError["code"]): Promise<OutpostError> {
  const err = await rejection(p);
  expect(err, String(err)).toBeInstanceOf(OutpostError);
  expect((err as OutpostError).code).toBe(code);
  return err as OutpostError;
}

async function expectConflict(p: Promise<unknown>, reason: CommitConflict["reason"]): Promise<void> {
  const err = await rejection(p);
  expect(err, String(err)).toBeInstanceOf(CommitConflict);
  expect((err as CommitConflict).reason).toBe(reason);
}

const running = (over: Partial<RunPatch> = {}): RunPatch => ({
  status: "running",
  steps: 0,
  inputTokens: 0,
  outputTokens: 0,
  costUsd: 0,
  ...over,
});

const step = (n: number): NewEvent => ev("model.called", { step: n, model: "fast" });

export function describeStoreConformance(name: string, open: () => Promise<Store>, cleanup?: () => Promise<void>): void {
  describe(`store conformance: ${name}`, () => {
    let store: Store;
    let W: string; // this test's workspace
    let OTHER: string; // another tenant

    beforeEach(async () => {
      store = await open();
      W = uniq("ws");
      OTHER = uniq("other");
    });
    afterEach(async () => {
      await store?.close();
    });
    if (cleanup) afterAll(cleanup);

    const create = async (
      input: string,
      over: { workspace?: string; agent?: string; sessionId?: string; idempotencyKey?: string } = {},
    ) => {
      const { run } = await store.createRun({
        workspace: over.workspace ?? W,
        agent: over.agent ?? "support",
        input,
        ...(over.sessionId ? { sessionId: over.sessionId } : {}),
        ...(over.idempotencyKey ? { idempotencyKey: over.idempotencyKey } : {}),
      });
      return run;
    };

    /** Claims `runId`, which must be the only claimable run. */
    const claim = async (runId: string, owner = "w1", leaseMs = LEASE): Promise<ClaimedRun> => {
      const claimed = await store.claimRuns(owner, 100, leaseMs);
      expect(
        claimed.map((x) => x.run.id),
        `only run ${runId} should be claimable`,
      ).toEqual([runId]);
      return claimed[0];
    };

    /** Commits on behalf of a claim; tracks expectedSeq from the store. */
    const commit = async (c: ClaimedRun, events: NewEvent[], patch: RunPatch, extra: Partial<CommitRequest> = {}) => {
      const run = (await store.getRun(c.run.workspace, c.run.id)) as RunRecord;
      return store.commit({ runId: c.run.id, leaseToken: c.leaseToken, expectedSeq: run.lastSeq, events, patch, ...extra });
    };

    /** A run parked waiting for approval `approvalId` (created by the commit, as the executor does). */
    const waitingForApproval = async (input = "refund order 42", workspace?: string) => {
      const run = await create(input, { workspace });
      const c = await claim(run.id);
      const approvalId = newId("apr");
      await commit(
        c,
        [
          ev("approval.requested", { approval_id: approvalId, call_id: "call_1", tool: "payments.refund", arguments: { order: 42 } }),
          ev("run.waiting", { for: { kind: "approval", approval_id: approvalId } }),
        ],
        running({ status: "waiting", waitingFor: { kind: "approval", approval_id: approvalId }, release: true }),
        { approval: { id: approvalId, callId: "call_1", tool: "payments.refund", arguments: { order: 42 } } },
      );
      return { run, approvalId, claim: c };
    };

    const waitingForEvent = async (eventName: string) => {
      const run = await create("wait for a parcel");
      const c = await claim(run.id);
      await commit(
        c,
        [ev("run.waiting", { for: { kind: "event", event: eventName } })],
        running({ status: "waiting", waitingFor: { kind: "event", event: eventName }, release: true }),
      );
      return run;
    };

    const types = async (runId: string, after = 0) => (await store.getEvents(runId, after)).map((e) => e.type);

    // ───────────────────────────── createRun ─────────────────────────────
    describe("createRun", () => {
      it("starts a new session and writes run.started", async () => {
        const before = Date.now();
        const { run, created } = await store.createRun({ workspace: W, agent: "support", input: "where is order 42?" });
        expect(created).toBe(true);
        expect(run).toMatchObject({
          workspace: W,
          agent: "support",
          input: "where is order 42?",
          status: "queued",
          sessionSeq: 1,
          lastSeq: 1,
          output: null,
          error: null,
          steps: 0,
          inputTokens: 0,
          outputTokens: 0,
          costUsd: 0,
          waitingFor: null,
          wakeAt: null,
          leaseOwner: null,
          cancelRequested: null,
          idempotencyKey: null,
          completedAt: null,
        });
        expect(run.id).toMatch(/^run_/);
        expect(run.sessionId).toMatch(/^ses_/);
        expect(run.createdAt).toBeGreaterThanOrEqual(before);
        expect(await store.getRun(W, run.id)).toEqual(run);

        const session = await store.getSession(W, run.sessionId);
        expect(session).toMatchObject({ id: run.sessionId, workspace: W, agent: "support" });

        const events = await store.getEvents(run.id);
        expect(events).toHaveLength(1);
        expect(events[0]).toMatchObject({
          seq: 1,
          type: "run.started",
          data: { agent: "support", input: "where is order 42?", session_id: run.sessionId },
        });
        expect(events[0].at).toBeGreaterThanOrEqual(before);
      });

      it("continuing a session gives each run the next session order", async () => {
        const first = await create("one");
        const second = await create("two", { sessionId: first.sessionId });
        const third = await create("three", { sessionId: first.sessionId });
        expect([first.sessionSeq, second.sessionSeq, third.sessionSeq]).toEqual([1, 2, 3]);
        expect(second.sessionId).toBe(first.sessionId);
        expect(third.sessionId).toBe(first.sessionId);
        const other = await create("another conversation");
        expect(other.sessionId).not.toBe(first.sessionId);
        expect(other.sessionSeq).toBe(1);

        const inSession = await store.listSessionRuns(first.sessionId);
        expect(inSession.map((r) => r.input)).toEqual(["one", "two", "three"]);
        expect((await store.getEvents(second.id))[0].data).toMatchObject({ session_id: first.sessionId });
      });

      it("an unknown session, or another workspace's session, is not_found and creates nothing", async () => {
        await expectOutpostError(store.createRun({ workspace: W, agent: "support", input: "x", sessionId: "ses_nope" }), "not_found");
        const theirs = await create("theirs", { workspace: OTHER });
        await expectOutpostError(store.createRun({ workspace: W, agent: "support", input: "x", sessionId: theirs.sessionId }), "not_found");
        expect(await store.listRuns({ workspace: W, limit: 100 })).toEqual([]);
        expect(await store.listSessionRuns(theirs.sessionId)).toHaveLength(1);
        // The failed attempt must not have advanced the other tenant's session order.
        const next = await create("theirs again", { workspace: OTHER, sessionId: theirs.sessionId });
        expect(next.sessionSeq).toBe(2);
      });

      it("an idempotency key returns the same run; reusing it for another request is a conflict", async () => {
        const a = await store.createRun({ workspace: W, agent: "support", input: "refund 42", idempotencyKey: "k1" });
        const b = await store.createRun({ workspace: W, agent: "support", input: "refund 42", idempotencyKey: "k1" });
        expect(a.created).toBe(true);
        expect(b.created).toBe(false);
        expect(b.run.id).toBe(a.run.id);
        expect(b.run.idempotencyKey).toBe("k1");

        await expectOutpostError(store.createRun({ workspace: W, agent: "support", input: "refund 43", idempotencyKey: "k1" }), "conflict");
        await expectOutpostError(store.createRun({ workspace: W, agent: "billing", input: "refund 42", idempotencyKey: "k1" }), "conflict");
        expect(await store.listRuns({ workspace: W, limit: 100 })).toHaveLength(1);
        expect(await store.getEvents(a.run.id)).toHaveLength(1);

        // Keys are per workspace: the same key elsewhere is a different run.
        const c = await store.createRun({ workspace: OTHER, agent: "support", input: "refund 42", idempotencyKey: "k1" });
        expect(c.created).toBe(true);
        expect(c.run.id).not.toBe(a.run.id);
      });

      it("concurrent retries with one idempotency key create exactly one run", async () => {
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, () => store.createRun({ workspace: W, agent: "support", input: "refund 42", idempotencyKey: "retry" })),
        );
        const errors = results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason));
        expect(errors, "every retry should get the run, none an error").toEqual([]);
        const ok = results.map((r) => (r as PromiseFulfilledResult<{ run: RunRecord; created: boolean }>).value);
        expect(new Set(ok.map((r) => r.run.id)).size).toBe(1);
        expect(ok.filter((r) => r.created)).toHaveLength(1);
        expect(await store.listRuns({ workspace: W, limit: 100 })).toHaveLength(1);
      });
    });

    // ───────────────────────────── reads ─────────────────────────────
    describe("reads are scoped by workspace", () => {
      it("a run, its session and its approvals are invisible from another workspace", async () => {
        const { run, approvalId } = await waitingForApproval("mine");
        await create("theirs", { workspace: OTHER });

        expect(await store.getRun(OTHER, run.id)).toBeNull();
        expect(await store.getSession(OTHER, run.sessionId)).toBeNull();
        expect(await store.getApproval(OTHER, approvalId)).toBeNull();
        expect(await store.listApprovals(OTHER)).toEqual([]);
        expect(await store.listApprovals(OTHER, "pending")).toEqual([]);
        const theirs = await store.listRuns({ workspace: OTHER, limit: 100 });
        expect(theirs.map((r) => r.input)).toEqual(["theirs"]);
        expect(await store.listRuns({ workspace: OTHER, sessionId: run.sessionId, limit: 100 })).toEqual([]);

        expect((await store.getRun(W, run.id))?.id).toBe(run.id);
        expect((await store.getApproval(W, approvalId))?.runId).toBe(run.id);
        expect((await store.listRuns({ workspace: W, limit: 100 })).map((r) => r.id)).toEqual([run.id]);
      });

      it("listRuns filters by agent, status and session, newest first", async () => {
        const a1 = await create("a1", { agent: "support" });
        const c = await claim(a1.id);
        await commit(c, [ev("run.completed", { output: "done" })], running({ status: "completed", output: "done", release: true }));
        const b1 = await create("b1", { agent: "billing" });
        const a2 = await create("a2", { agent: "support", sessionId: a1.sessionId });

        const all = await store.listRuns({ workspace: W, limit: 100 });
        expect(all.map((r) => r.id)).toEqual([a1.id, b1.id, a2.id].sort().reverse());
        expect((await store.listRuns({ workspace: W, agent: "support", limit: 100 })).map((r) => r.id).sort()).toEqual(
          [a1.id, a2.id].sort(),
        );
        expect((await store.listRuns({ workspace: W, agent: "billing", limit: 100 })).map((r) => r.id)).toEqual([b1.id]);
        expect((await store.listRuns({ workspace: W, status: "completed", limit: 100 })).map((r) => r.id)).toEqual([a1.id]);
        expect((await store.listRuns({ workspace: W, status: "queued", limit: 100 })).map((r) => r.id).sort()).toEqual(
          [b1.id, a2.id].sort(),
        );
        expect((await store.listRuns({ workspace: W, sessionId: a1.sessionId, limit: 100 })).map((r) => r.id).sort()).toEqual(
          [a1.id, a2.id].sort(),
        );
        expect(await store.listRuns({ workspace: W, agent: "support", status: "failed", limit: 100 })).toEqual([]);
        expect(await store.listRuns({ workspace: W, limit: 1 })).toHaveLength(1);
      });

      it("pages with `before` cover every run exactly once", async () => {
        const ids: string[] = [];
        for (let i = 0; i < 7; i++) ids.push((await create(`r${i}`)).id);
        await create("elsewhere", { workspace: OTHER });
        const seen: string[] = [];
        let before: string | undefined;
        for (let page = 0; page < 10; page++) {
          const items = await store.listRuns({ workspace: W, limit: 3, before });
          if (items.length === 0) break;
          expect(items.length).toBeLessThanOrEqual(3);
          seen.push(...items.map((r) => r.id));
          before = items[items.length - 1].id;
        }
        expect(seen).toEqual([...ids].sort().reverse());
        expect(await store.listRuns({ workspace: W, limit: 10, before: seen[seen.length - 1] })).toEqual([]);
      });
    });

    // ───────────────────────────── claiming ─────────────────────────────
    describe("claimRuns", () => {
      it("claims a queued run under a lease, once", async () => {
        const run = await create("hello");
        const before = Date.now();
        const claimed = await store.claimRuns("w1", 10, LEASE);
        expect(claimed.map((c) => c.run.id)).toEqual([run.id]);
        expect(claimed[0].leaseToken).toEqual(expect.any(String));
        expect(claimed[0].leaseToken.length).toBeGreaterThan(8);
        const now = await store.getRun(W, run.id);
        expect(now?.status).toBe("running");
        expect(now?.leaseOwner).toBe("w1");
        expect(now?.leaseExpiresAt).toBeGreaterThanOrEqual(before + LEASE);
        expect(now?.leaseExpiresAt).toBeLessThanOrEqual(Date.now() + LEASE);
        // A live lease is never handed out again.
        expect(await store.claimRuns("w2", 10, LEASE)).toEqual([]);
        expect(await store.claimRuns("w1", 10, LEASE)).toEqual([]);
      });

      it("respects the limit and hands out distinct lease tokens per claim", async () => {
        for (let i = 0; i < 5; i++) await create(`r${i}`);
        const first = await store.claimRuns("w1", 2, LEASE);
        const second = await store.claimRuns("w2", 2, LEASE);
        const third = await store.claimRuns("w3", 2, LEASE);
        expect([first.length, second.length, third.length]).toEqual([2, 2, 1]);
        expect(new Set([...first, ...second, ...third].map((c) => c.run.id)).size).toBe(5);
        expect(first[0].leaseToken).not.toBe(second[0].leaseToken);
      });

      it("concurrent claimers never get the same run", async () => {
        const ids = new Set<string>();
        for (let i = 0; i < 60; i++) ids.add((await create(`r${i}`, { workspace: i % 2 ? W : OTHER })).id);
        const byOwner = new Map<string, string[]>();
        const claimer = async (owner: string) => {
          const mine: string[] = [];
          for (let round = 0; round < 50; round++) {
            const got = await store.claimRuns(owner, 7, LEASE);
            if (got.length === 0) break;
            mine.push(...got.map((c) => c.run.id));
          }
          byOwner.set(owner, mine);
        };
        await Promise.all(["a", "b", "c", "d", "e"].map(claimer));
        const all = [...byOwner.values()].flat();
        expect(all.length, "a run was claimed twice").toBe(new Set(all).size);
        expect(new Set(all)).toEqual(ids);
        // Every run is leased by the owner that got it.
        for (const [owner, mine] of byOwner) {
          for (const id of mine.slice(0, 3)) {
            const r = (await store.getRun(W, id)) ?? (await store.getRun(OTHER, id));
            expect(r?.leaseOwner).toBe(owner);
          }
        }
      });

      it("a flood from one workspace does not starve another: claims take the least busy workspace first", async () => {
        for (let i = 0; i < 30; i++) await create(`flood ${i}`);
        const theirs = [await create("a", { workspace: OTHER }), await create("b", { workspace: OTHER })];
        // Both idle: one each in turn, oldest first.
        const first = await store.claimRuns("w1", 4, LEASE);
        expect(first.map((c) => c.run.workspace).sort()).toEqual([OTHER, OTHER, W, W].sort());
        // The flood's first runs, not any later ones.
        expect(first.filter((c) => c.run.workspace === W).map((c) => c.run.input)).toEqual(["flood 0", "flood 1"]);
        expect(first.filter((c) => c.run.workspace === OTHER).map((c) => c.run.id)).toEqual(theirs.map((r) => r.id));
        // A tie goes to the oldest run: the flood's next.
        const tie = await store.claimRuns("w2", 1, LEASE);
        expect(tie.map((c) => c.run.input)).toEqual(["flood 2"]);
        // The other workspace, with fewer running (2 against 3), goes first when it sends more, older floods or not.
        const late = await create("c", { workspace: OTHER });
        const second = await store.claimRuns("w2", 1, LEASE);
        expect(second.map((c) => c.run.id)).toEqual([late.id]);
        const rest = await store.claimRuns("w3", 100, LEASE);
        expect(new Set([...first, ...tie, ...second, ...rest].map((c) => c.run.id)).size).toBe(33);
      });

      it("caps: no workspace, and no agent of a workspace, executes more than its limit at once", async () => {
        for (let i = 0; i < 6; i++) await create(`r${i}`, { agent: "refunds" });
        for (let i = 0; i < 6; i++) await create(`s${i}`, { agent: "support" });
        for (let i = 0; i < 6; i++) await create(`o${i}`, { workspace: OTHER, agent: "refunds" });
        const caps = { perWorkspace: 5, perAgent: { refunds: 2 } };
        const first = await store.claimRuns("w1", 100, LEASE, caps);
        const count = (claimed: ClaimedRun[], workspace: string, agent?: string) =>
          claimed.filter((c) => c.run.workspace === workspace && (agent === undefined || c.run.agent === agent)).length;
        expect(count(first, W)).toBe(5);
        expect(count(first, W, "refunds")).toBe(2);
        expect(count(first, OTHER)).toBe(2); // its agent's cap, not the workspace's
        // Full: another worker gets nothing until something ends.
        expect(await store.claimRuns("w2", 100, LEASE, caps)).toEqual([]);
        const refund = first.find((c) => c.run.workspace === W && c.run.agent === "refunds") as ClaimedRun;
        await commit(refund, [ev("run.completed", { output: "done" })], running({ status: "completed", output: "done", release: true }));
        const next = await store.claimRuns("w2", 100, LEASE, caps);
        expect(next.map((c) => [c.run.workspace, c.run.agent])).toEqual([[W, "refunds"]]);
        // Without caps, everything left is claimable.
        expect((await store.claimRuns("w3", 100, LEASE)).length).toBe(18 - 8);
      });

      it("runs of one session execute in order: the next waits while an earlier one is active", async () => {
        const first = await create("one");
        const second = await create("two", { sessionId: first.sessionId });
        const lone = await create("lone");
        const c1 = await store.claimRuns("w1", 10, LEASE);
        expect(c1.map((c) => c.run.id).sort()).toEqual([first.id, lone.id].sort());

        // While the first waits (e.g. for approval), the second still may not start.
        const c = c1.find((x) => x.run.id === first.id) as ClaimedRun;
        await commit(
          c,
          [ev("run.waiting", { for: { kind: "event", event: "go" } })],
          running({ status: "waiting", waitingFor: { kind: "event", event: "go" }, release: true }),
        );
        expect(await store.claimRuns("w1", 10, LEASE)).toEqual([]);

        // Once the first ends, the second is claimable.
        await store.applyExternal(W, { kind: "event", runId: first.id, name: "go", payload: null });
        const again = await store.claimRuns("w1", 10, LEASE);
        expect(again.map((x) => x.run.id)).toEqual([first.id]);
        await commit(again[0], [ev("run.completed", { output: "done" })], running({ status: "completed", output: "done", release: true }));
        const next = await store.claimRuns("w1", 10, LEASE);
        expect(next.map((x) => x.run.id)).toEqual([second.id]);
      });

      it("a failed or cancelled earlier run releases the session too", async () => {
        const first = await create("one");
        const second = await create("two", { sessionId: first.sessionId });
        await store.applyExternal(W, { kind: "cancel", runId: first.id, reason: "changed my mind" });
        const claimed = await store.claimRuns("w1", 10, LEASE);
        expect(claimed.map((c) => c.run.id)).toEqual([second.id]);
      });

      it("claims waiting runs whose timer is due, not future timers or other waits", async () => {
        const due = await create("due");
        const future = await create("future");
        const onEvent = await create("event");
        const cs = await store.claimRuns("w1", 10, LEASE);
        const byId = new Map(cs.map((c) => [c.run.id, c]));
        const past = Date.now() - 1000;
        const later = Date.now() + 3_600_000;
        await commit(
          byId.get(due.id) as ClaimedRun,
          [ev("run.waiting", { for: { kind: "timer", until: new Date(past).toISOString() } })],
          running({ status: "waiting", waitingFor: { kind: "timer", until: new Date(past).toISOString() }, wakeAt: past, release: true }),
        );
        await commit(
          byId.get(future.id) as ClaimedRun,
          [ev("run.waiting", { for: { kind: "timer", until: new Date(later).toISOString() } })],
          running({ status: "waiting", waitingFor: { kind: "timer", until: new Date(later).toISOString() }, wakeAt: later, release: true }),
        );
        await commit(
          byId.get(onEvent.id) as ClaimedRun,
          [ev("run.waiting", { for: { kind: "event", event: "x" } })],
          running({ status: "waiting", waitingFor: { kind: "event", event: "x" }, release: true }),
        );
        const f = await store.getRun(W, future.id);
        expect(f).toMatchObject({ status: "waiting", wakeAt: later, leaseOwner: null, waitingFor: { kind: "timer" } });

        const woken = await store.claimRuns("w2", 10, LEASE);
        expect(woken.map((c) => c.run.id)).toEqual([due.id]);
        expect(await store.getRun(W, due.id)).toMatchObject({ status: "running", leaseOwner: "w2" });
        expect(await store.claimRuns("w3", 10, LEASE)).toEqual([]);
      });

      it("takes over an expired lease, not a live one; the old holder is fenced off", async () => {
        const run = await create("slow");
        const old = await claim(run.id, "w1", 600);
        expect(await store.claimRuns("w2", 10, LEASE)).toEqual([]);
        await sleep(800);
        const taken = await store.claimRuns("w2", 10, LEASE);
        expect(taken.map((c) => c.run.id)).toEqual([run.id]);
        expect(taken[0].leaseToken).not.toBe(old.leaseToken);
        expect(await store.getRun(W, run.id)).toMatchObject({ status: "running", leaseOwner: "w2" });

        await expectConflict(
          store.commit({ runId: run.id, leaseToken: old.leaseToken, expectedSeq: 1, events: [step(1)], patch: running() }),
          "lease_lost",
        );
        const ok = await store.commit({
          runId: run.id,
          leaseToken: taken[0].leaseToken,
          expectedSeq: 1,
          events: [step(1)],
          patch: running(),
        });
        expect(ok.lastSeq).toBe(2);
        // The log records under which lease each event was committed: the takeover's, never the fenced holder's.
        const leases = await store.domain.db
          .selectFrom("events")
          .select(["seq", "lease"])
          .where("run_id", "=", run.id)
          .orderBy("seq")
          .execute();
        expect(leases).toEqual([
          { seq: 1, lease: null },
          { seq: 2, lease: taken[0].leaseToken },
        ]);
      });

      it("renewLeases extends only the owner's leases", async () => {
        const mine = await create("mine");
        await claim(mine.id, "w1", 600);
        const theirs = await create("theirs");
        await claim(theirs.id, "w2", 600);
        await store.renewLeases("w1", [mine.id, theirs.id], LEASE);
        await store.renewLeases("w1", [], LEASE);
        await sleep(800);
        const claimed = await store.claimRuns("w3", 10, LEASE);
        expect(claimed.map((c) => c.run.id)).toEqual([theirs.id]);
        expect((await store.getRun(W, mine.id))?.leaseOwner).toBe("w1");
      });

      it("releaseLease hands a run back only with the right token", async () => {
        const run = await create("x");
        const c = await claim(run.id);
        await store.releaseLease(run.id, "not-the-token");
        expect(await store.claimRuns("w2", 10, LEASE)).toEqual([]);
        await store.releaseLease(run.id, c.leaseToken);
        const r = await store.getRun(W, run.id);
        expect(r).toMatchObject({ leaseOwner: null, leaseExpiresAt: null, lastSeq: 1 });
        const again = await store.claimRuns("w2", 10, LEASE);
        expect(again.map((x) => x.run.id)).toEqual([run.id]);
        await expectConflict(
          store.commit({ runId: run.id, leaseToken: c.leaseToken, expectedSeq: 1, events: [step(1)], patch: running() }),
          "lease_lost",
        );
      });

      it("releaseAllLeases frees every leased run", async () => {
        const a = await create("a");
        await claim(a.id);
        const b = await create("b");
        await create("c");
        const rest = await store.claimRuns("w1", 10, LEASE);
        expect(rest.map((x) => x.run.id)).toContain(b.id);
        expect(rest).toHaveLength(2);
        expect(await store.releaseAllLeases()).toBe(3);
        expect(await store.releaseAllLeases()).toBe(0);
        expect((await store.getRun(W, a.id))?.leaseOwner).toBeNull();
        const again = await store.claimRuns("w2", 10, LEASE);
        expect(again.map((x) => x.run.id)).toContain(a.id);
        expect(again.map((x) => x.run.id)).toContain(b.id);
      });

      it("terminal runs are never claimed", async () => {
        const done = await create("done");
        const c = await claim(done.id);
        await commit(c, [ev("run.completed", { output: "ok" })], running({ status: "completed", output: "ok", release: true }));
        const cancelled = await create("cancelled");
        await store.applyExternal(W, { kind: "cancel", runId: cancelled.id, reason: "no" });
        expect(await store.claimRuns("w2", 10, LEASE)).toEqual([]);
      });
    });

    // ───────────────────────────── commit ─────────────────────────────
    describe("commit", () => {
      it("appends events with consecutive seqs and updates the run", async () => {
        const run = await create("q");
        const c = await claim(run.id);
        const t0 = Date.now();
        const r1 = await store.commit({ runId: run.id, leaseToken: c.leaseToken, expectedSeq: 1, events: [step(1)], patch: running() });
        expect(r1.lastSeq).toBe(2);
        expect(r1.at).toBeGreaterThanOrEqual(t0);
        expect(r1.cancelRequested).toBeNull();
        const responded = ev("model.responded", {
          step: 1,
          text: "",
          tool_calls: [{ id: "c1", name: "orders.lookup", arguments: '{"id":42}' }],
          usage: { input_tokens: 120, output_tokens: 30 },
          cost_usd: 0.0015,
          model: "gpt",
          finish_reason: "tool-calls",
        });
        const called = ev("tool.called", {
          call_id: "c1",
          tool: "orders.lookup",
          arguments: { id: 42 },
          idempotency_key: `${run.id}.1.c1`,
        });
        const r2 = await store.commit({
          runId: run.id,
          leaseToken: c.leaseToken,
          expectedSeq: 2,
          events: [responded, called],
          patch: running({ steps: 1, inputTokens: 120, outputTokens: 30, costUsd: 0.0015 }),
        });
        expect(r2.lastSeq).toBe(4);
        const events = await store.getEvents(run.id);
        expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
        expect(events.map((e) => e.type)).toEqual(["run.started", "model.called", "model.responded", "tool.called"]);
        expect(events[2].at).toBe(r2.at);
        expect(events[3].at).toBe(r2.at);
        expect(await store.getRun(W, run.id)).toMatchObject({
          status: "running",
          lastSeq: 4,
          steps: 1,
          inputTokens: 120,
          outputTokens: 30,
          costUsd: 0.0015,
          leaseOwner: "w1",
          completedAt: null,
        });

        // getEvents(after)
        expect((await store.getEvents(run.id, 2)).map((e) => e.seq)).toEqual([3, 4]);
        expect(await store.getEvents(run.id, 4)).toEqual([]);
        expect(await store.getEvents("run_unknown")).toEqual([]);

        // A commit with no events still updates the run (and needs the right seq).
        const r3 = await store.commit({
          runId: run.id,
          leaseToken: c.leaseToken,
          expectedSeq: 4,
          events: [],
          patch: running({ steps: 2 }),
        });
        expect(r3.lastSeq).toBe(4);
        expect((await store.getRun(W, run.id))?.steps).toBe(2);
      });

      it("a terminal commit records the outcome and releases the lease", async () => {
        const ok = await create("ok");
        const bad = await create("bad");
        const cs = await store.claimRuns("w1", 10, LEASE);
        const cOk = cs.find((c) => c.run.id === ok.id) as ClaimedRun;
        const cBad = cs.find((c) => c.run.id === bad.id) as ClaimedRun;
        const r = await commit(
          cOk,
          [ev("run.completed", { output: "all done" })],
          running({ status: "completed", steps: 3, output: "all done", release: true }),
        );
        await commit(
          cBad,
          [ev("run.failed", { error: { code: "max_steps", message: "too many" } })],
          running({ status: "failed", error: { code: "max_steps", message: "too many" }, release: true }),
        );
        expect(await store.getRun(W, ok.id)).toMatchObject({
          status: "completed",
          output: "all done",
          error: null,
          steps: 3,
          completedAt: r.at,
          leaseOwner: null,
          leaseExpiresAt: null,
        });
        expect(await store.getRun(W, bad.id)).toMatchObject({
          status: "failed",
          error: { code: "max_steps", message: "too many" },
          leaseOwner: null,
        });
        expect((await store.getRun(W, bad.id))?.completedAt).toEqual(expect.any(Number));
        // The released lease no longer fences anything in: the old token is dead.
        await expectConflict(
          store.commit({ runId: ok.id, leaseToken: cOk.leaseToken, expectedSeq: 2, events: [step(9)], patch: running() }),
          "lease_lost",
        );
      });

      it("a stale lease token is refused (lease_lost) and writes nothing", async () => {
        const run = await create("x");
        const c = await claim(run.id);
        const before = await store.getRun(W, run.id);
        await expectConflict(
          store.commit({
            runId: run.id,
            leaseToken: "forged",
            expectedSeq: 1,
            events: [step(1)],
            patch: running({ status: "completed", output: "pwned" }),
          }),
          "lease_lost",
        );
        expect(await store.getRun(W, run.id)).toEqual(before);
        expect(await types(run.id)).toEqual(["run.started"]);
        // The real holder still commits.
        expect(
          (await store.commit({ runId: run.id, leaseToken: c.leaseToken, expectedSeq: 1, events: [step(1)], patch: running() })).lastSeq,
        ).toBe(2);
        // An unknown run is lease_lost too.
        await expectConflict(
          store.commit({ runId: "run_nope", leaseToken: c.leaseToken, expectedSeq: 1, events: [step(1)], patch: running() }),
          "lease_lost",
        );
      });

      it("a stale expectedSeq is refused (seq_conflict) and writes nothing", async () => {
        const run = await create("x");
        const c = await claim(run.id);
        await store.commit({ runId: run.id, leaseToken: c.leaseToken, expectedSeq: 1, events: [step(1)], patch: running({ steps: 1 }) });
        const before = await store.getRun(W, run.id);
        for (const stale of [0, 1, 3]) {
          await expectConflict(
            store.commit({ runId: run.id, leaseToken: c.leaseToken, expectedSeq: stale, events: [step(2)], patch: running({ steps: 9 }) }),
            "seq_conflict",
          );
        }
        expect(await store.getRun(W, run.id)).toEqual(before);
        expect((await store.getEvents(run.id)).map((e) => e.seq)).toEqual([1, 2]);
      });

      it("audit entries land in the outbox with the commit; a refused commit (lease lost, seq conflict) leaves none", async () => {
        const run = await create("x");
        const c = await claim(run.id);
        const outbox = () => store.domain.db.selectFrom("audit_outbox").selectAll().where("run_id", "=", run.id).orderBy("id").execute();
        const audit = [
          { kind: "policy.decision", actor: "agent:support", data: { effect: "allow", amount: 12.5, nested: { b: 1, a: [1, "x"] } } },
          { kind: "tool.executed", actor: "agent:support", data: { tool: "crm.lookup", is_error: false } },
        ];
        const ok = await store.commit({
          runId: run.id,
          leaseToken: c.leaseToken,
          expectedSeq: 1,
          events: [step(1)],
          patch: running(),
          audit,
        });
        const rows = await outbox();
        expect(rows.map((r) => [r.workspace, r.run_id, Number(r.at), r.kind, r.actor, JSON.parse(r.data)])).toEqual(
          audit.map((e) => [W, run.id, ok.at, e.kind, e.actor, e.data]),
        );
        expect(new Set(rows.map((r) => r.id)).size).toBe(2);
        const refused = [{ kind: "tool.executed", actor: "agent:support", data: { tool: "payments.refund" } }];
        await expectConflict(
          store.commit({ runId: run.id, leaseToken: "forged", expectedSeq: 2, events: [step(2)], patch: running(), audit: refused }),
          "lease_lost",
        );
        await expectConflict(
          store.commit({ runId: run.id, leaseToken: c.leaseToken, expectedSeq: 1, events: [step(2)], patch: running(), audit: refused }),
          "seq_conflict",
        );
        expect(await outbox()).toHaveLength(2);
      });

      it("an event delivered while a worker holds the run moves the log on: the worker's next commit is seq_conflict", async () => {
        const run = await create("x");
        const c = await claim(run.id);
        const ext = await store.applyExternal(W, { kind: "event", runId: run.id, name: "parcel.arrived", payload: { id: 7 } });
        expect(ext.woke).toBe(false);
        expect(ext.run.lastSeq).toBe(2);
        await expectConflict(
          store.commit({ runId: run.id, leaseToken: c.leaseToken, expectedSeq: 1, events: [step(1)], patch: running() }),
          "seq_conflict",
        );
        expect(
          (await store.commit({ runId: run.id, leaseToken: c.leaseToken, expectedSeq: 2, events: [step(1)], patch: running() })).lastSeq,
        ).toBe(3);
        expect(await types(run.id)).toEqual(["run.started", "event.received", "model.called"]);
      });

      it("a commit with an approval creates it pending, waiting, lease released", async () => {
        const { run, approvalId } = await waitingForApproval("refund order 42");
        const approval = await store.getApproval(W, approvalId);
        expect(approval).toMatchObject({
          id: approvalId,
          workspace: W,
          runId: run.id,
          callId: "call_1",
          agent: "support",
          tool: "payments.refund",
          arguments: { order: 42 },
          status: "pending",
          reason: null,
          decidedBy: null,
          decidedAt: null,
        });
        expect((await store.listApprovals(W, "pending")).map((a) => a.id)).toEqual([approvalId]);
        expect((await store.listApprovals(W)).map((a) => a.id)).toEqual([approvalId]);
        expect(await store.listApprovals(W, "approved")).toEqual([]);
        expect(await store.getRun(W, run.id)).toMatchObject({
          status: "waiting",
          waitingFor: { kind: "approval", approval_id: approvalId },
          leaseOwner: null,
          lastSeq: 3,
        });
        // Waiting for approval is not claimable.
        expect(await store.claimRuns("w2", 10, LEASE)).toEqual([]);
      });

      it("many concurrent commits all land with correct seqs (group commit)", async () => {
        const RUNS = 200;
        const COMMITS = 10;
        const runs: RunRecord[] = [];
        for (let i = 0; i < RUNS; i++) runs.push(await create(`r${i}`));
        const claimed = new Map<string, ClaimedRun>();
        while (claimed.size < RUNS) {
          const got = await store.claimRuns("w1", 100, LEASE);
          if (got.length === 0) break;
          for (const c of got) claimed.set(c.run.id, c);
        }
        expect(claimed.size).toBe(RUNS);
        await Promise.all(
          runs.map(async (run, idx) => {
            const c = claimed.get(run.id) as ClaimedRun;
            let seq = 1;
            for (let k = 0; k < COMMITS; k++) {
              const events = k % 3 === 0 ? [step(k), step(k + 100)] : [step(k)];
              const r = await store.commit({
                runId: run.id,
                leaseToken: c.leaseToken,
                expectedSeq: seq,
                events,
                patch: running({ steps: k + 1, costUsd: idx }),
              });
              expect(r.lastSeq).toBe(seq + events.length);
              seq = r.lastSeq;
            }
          }),
        );
        const expectedLast = 1 + COMMITS + Math.ceil(COMMITS / 3);
        for (const run of runs.filter((_, i) => i % 17 === 0)) {
          const events = await store.getEvents(run.id);
          expect(events.map((e) => e.seq)).toEqual(Array.from({ length: expectedLast }, (_, i) => i + 1));
        }
        const all = await store.listRuns({ workspace: W, limit: 1000 });
        expect(all).toHaveLength(RUNS);
        for (const r of all) {
          expect(r.lastSeq).toBe(expectedLast);
          expect(r.steps).toBe(COMMITS);
        }
      }, 60_000);

      it("in one group, a refused commit does not affect the others", async () => {
        const runs: RunRecord[] = [];
        for (let i = 0; i < 10; i++) runs.push(await create(`r${i}`));
        const claimed = await store.claimRuns("w1", 100, LEASE);
        const results = await Promise.allSettled(
          claimed.map((c, i) =>
            store.commit({
              runId: c.run.id,
              leaseToken: i % 2 ? "stale" : c.leaseToken,
              expectedSeq: 1,
              events: [step(1)],
              patch: running({ steps: 1 }),
            }),
          ),
        );
        results.forEach((r, i) => {
          if (i % 2) {
            expect(r.status).toBe("rejected");
            expect((r as PromiseRejectedResult).reason).toBeInstanceOf(CommitConflict);
          } else {
            expect(r.status, String((r as PromiseRejectedResult).reason)).toBe("fulfilled");
          }
        });
        for (const [i, c] of claimed.entries()) expect((await store.getRun(W, c.run.id))?.lastSeq).toBe(i % 2 ? 1 : 2);
      });

      it("in one group, a commit the database rejects does not take down the others", async () => {
        const { approvalId } = await waitingForApproval("first");
        const a = await create("a");
        const b = await create("b");
        const claimed = await store.claimRuns("w1", 10, LEASE);
        const ca = claimed.find((c) => c.run.id === a.id) as ClaimedRun;
        const cb = claimed.find((c) => c.run.id === b.id) as ClaimedRun;
        // `a` reuses an existing approval id (a unique violation); `b` is an ordinary commit in the same turn.
        const [ra, rb] = await Promise.allSettled([
          store.commit({
            runId: a.id,
            leaseToken: ca.leaseToken,
            expectedSeq: 1,
            events: [ev("approval.requested", { approval_id: approvalId, call_id: "c", tool: "t", arguments: {} })],
            patch: running({ status: "waiting", waitingFor: { kind: "approval", approval_id: approvalId }, release: true }),
            approval: { id: approvalId, callId: "c", tool: "t", arguments: {} },
          }),
          store.commit({ runId: b.id, leaseToken: cb.leaseToken, expectedSeq: 1, events: [step(1)], patch: running({ steps: 1 }) }),
        ]);
        expect(ra.status).toBe("rejected");
        expect(await types(a.id)).toEqual(["run.started"]);
        expect(rb.status, `b failed with: ${String((rb as PromiseRejectedResult).reason)}`).toBe("fulfilled");
        expect(await types(b.id)).toEqual(["run.started", "model.called"]);
      });
    });

    // ───────────────────────────── approvals across steps ─────────────────────────────
    it("a run can ask approval again for a call id the model reuses in a later step", async () => {
      const { run, approvalId } = await waitingForApproval();
      await store.applyExternal(W, { kind: "approval", approvalId, decision: "approve", reason: null, by: "ana" });
      const c = await claim(run.id);
      await commit(
        c,
        [ev("tool.completed", { call_id: "call_1", tool: "payments.refund", output: "ok", is_error: false })],
        running({ steps: 2 }),
      );
      // Step 2: the model calls the tool again, reusing the id "call_1" (providers pass ids through).
      const second = newId("apr");
      const res = await commit(
        c,
        [
          ev("approval.requested", { approval_id: second, call_id: "call_1", tool: "payments.refund", arguments: { order: 43 } }),
          ev("run.waiting", { for: { kind: "approval", approval_id: second } }),
        ],
        running({ status: "waiting", waitingFor: { kind: "approval", approval_id: second }, release: true }),
        { approval: { id: second, callId: "call_1", tool: "payments.refund", arguments: { order: 43 } } },
      );
      expect(res.lastSeq).toBe(8);
      expect(await store.getApproval(W, second)).toMatchObject({ status: "pending", arguments: { order: 43 } });
    });

    // ───────────────────────────── applyExternal ─────────────────────────────
    describe("applyExternal", () => {
      it("approves exactly once and wakes the run", async () => {
        const { run, approvalId } = await waitingForApproval();
        const r = await store.applyExternal(W, { kind: "approval", approvalId, decision: "approve", reason: "looks right", by: "ana" });
        expect(r.woke).toBe(true);
        expect(r.approval).toMatchObject({ id: approvalId, status: "approved", reason: "looks right", decidedBy: "ana" });
        expect(r.run).toMatchObject({ id: run.id, status: "queued", waitingFor: null, wakeAt: null, lastSeq: 5 });
        expect((await store.getEvents(run.id, 3)).map((e) => [e.type, e.data])).toEqual([
          ["approval.decided", { approval_id: approvalId, decision: "approve", reason: "looks right", by: "ana" }],
          ["run.resumed", { reason: "approval approved" }],
        ]);
        const stored = await store.getApproval(W, approvalId);
        expect(stored).toMatchObject({ status: "approved", decidedBy: "ana" });
        expect(stored?.decidedAt).toEqual(expect.any(Number));

        // A second decision, either way, is a conflict and never flips the first.
        await expectOutpostError(
          store.applyExternal(W, { kind: "approval", approvalId, decision: "deny", reason: "no", by: "bob" }),
          "conflict",
        );
        await expectOutpostError(
          store.applyExternal(W, { kind: "approval", approvalId, decision: "approve", reason: null, by: "bob" }),
          "conflict",
        );
        expect(await store.getApproval(W, approvalId)).toMatchObject({ status: "approved", decidedBy: "ana", reason: "looks right" });
        expect((await store.getRun(W, run.id))?.lastSeq).toBe(5);
        expect(await store.listApprovals(W, "pending")).toEqual([]);
        // The woken run is claimable.
        expect((await store.claimRuns("w1", 10, LEASE)).map((c) => c.run.id)).toEqual([run.id]);
      });

      it("deny is recorded and wakes the run to fail it", async () => {
        const { run, approvalId } = await waitingForApproval();
        const r = await store.applyExternal(W, { kind: "approval", approvalId, decision: "deny", reason: "too much", by: null });
        expect(r.woke).toBe(true);
        expect(r.run.status).toBe("queued");
        expect(await store.getApproval(W, approvalId)).toMatchObject({ status: "denied", reason: "too much", decidedBy: null });
        expect(await types(run.id, 3)).toEqual(["approval.decided", "run.resumed"]);
        await expectOutpostError(
          store.applyExternal(W, { kind: "approval", approvalId, decision: "approve", reason: null, by: "x" }),
          "conflict",
        );
        expect((await store.getApproval(W, approvalId))?.status).toBe("denied");
      });

      it("concurrent decisions: exactly one wins", async () => {
        const { run, approvalId } = await waitingForApproval();
        const results = await Promise.allSettled(
          Array.from({ length: 6 }, (_, i) =>
            store.applyExternal(W, { kind: "approval", approvalId, decision: i % 2 ? "deny" : "approve", reason: null, by: `u${i}` }),
          ),
        );
        const won = results.filter((r) => r.status === "fulfilled");
        expect(won).toHaveLength(1);
        for (const r of results) {
          if (r.status === "rejected") {
            expect(r.reason).toBeInstanceOf(OutpostError);
            expect((r.reason as OutpostError).code).toBe("conflict");
          }
        }
        const decided = await store.getEvents(run.id);
        expect(decided.filter((e) => e.type === "approval.decided")).toHaveLength(1);
        const winner = (won[0] as PromiseFulfilledResult<{ approval?: { status: string; decidedBy: string | null } }>).value.approval;
        expect(await store.getApproval(W, approvalId)).toMatchObject({ status: winner?.status, decidedBy: winner?.decidedBy });
      });

      it("an approval of another workspace is not_found and stays pending", async () => {
        const { run, approvalId } = await waitingForApproval();
        await expectOutpostError(
          store.applyExternal(OTHER, { kind: "approval", approvalId, decision: "approve", reason: null, by: "mallory" }),
          "not_found",
        );
        await expectOutpostError(
          store.applyExternal(W, { kind: "approval", approvalId: "apr_nope", decision: "approve", reason: null, by: "x" }),
          "not_found",
        );
        expect((await store.getApproval(W, approvalId))?.status).toBe("pending");
        expect(await store.getRun(W, run.id)).toMatchObject({ status: "waiting", lastSeq: 3 });
      });

      it("an approval of a run that already ended is a conflict", async () => {
        const { run, approvalId } = await waitingForApproval();
        // Force the run terminal under a fresh claim (as if it timed out elsewhere).
        await store.releaseAllLeases();
        const cancelled = await store.applyExternal(W, { kind: "cancel", runId: run.id, reason: "stop" });
        expect(cancelled.run.status).toBe("cancelled");
        await expectOutpostError(
          store.applyExternal(W, { kind: "approval", approvalId, decision: "approve", reason: null, by: "x" }),
          "conflict",
        );
        expect((await store.getApproval(W, approvalId))?.status).toBe("denied");
      });

      it("an event wakes a run waiting for that name", async () => {
        const run = await waitingForEvent("parcel.arrived");
        const r = await store.applyExternal(W, {
          kind: "event",
          runId: run.id,
          name: "parcel.arrived",
          payload: { tracking: "X1", n: [1, 2] },
        });
        expect(r.woke).toBe(true);
        expect(r.run).toMatchObject({ status: "queued", waitingFor: null, lastSeq: 4 });
        expect((await store.getEvents(run.id, 2)).map((e) => [e.type, e.data])).toEqual([
          ["event.received", { name: "parcel.arrived", payload: { tracking: "X1", n: [1, 2] } }],
          ["run.resumed", { reason: "event parcel.arrived" }],
        ]);
        expect(r.events).toEqual(await store.getEvents(run.id, 2)); // what it appended, as stored
        expect((await store.claimRuns("w1", 10, LEASE)).map((c) => c.run.id)).toEqual([run.id]);
      });

      it("an event of another name, or to a run not waiting, is only buffered", async () => {
        const waiting = await waitingForEvent("parcel.arrived");
        const r = await store.applyExternal(W, { kind: "event", runId: waiting.id, name: "invoice.paid", payload: null });
        expect(r.woke).toBe(false);
        expect(r.run).toMatchObject({ status: "waiting", waitingFor: { kind: "event", event: "parcel.arrived" }, lastSeq: 3 });
        expect(await types(waiting.id, 2)).toEqual(["event.received"]);
        expect(await store.claimRuns("w1", 10, LEASE)).toEqual([]);

        const queued = await create("q");
        const q = await store.applyExternal(W, { kind: "event", runId: queued.id, name: "parcel.arrived", payload: "early" });
        expect(q.woke).toBe(false);
        expect(q.run.status).toBe("queued");
        expect((await store.getEvents(queued.id, 1)).map((e) => e.data)).toEqual([{ name: "parcel.arrived", payload: "early" }]);
      });

      it("events to a terminal run, or of another workspace, are refused and write nothing", async () => {
        const run = await create("x");
        await store.applyExternal(W, { kind: "cancel", runId: run.id, reason: "stop" });
        await expectOutpostError(store.applyExternal(W, { kind: "event", runId: run.id, name: "e", payload: 1 }), "conflict");
        expect(await types(run.id)).toEqual(["run.started", "run.cancelled"]);

        const live = await waitingForEvent("e");
        await expectOutpostError(store.applyExternal(OTHER, { kind: "event", runId: live.id, name: "e", payload: 1 }), "not_found");
        await expectOutpostError(store.applyExternal(W, { kind: "event", runId: "run_nope", name: "e", payload: 1 }), "not_found");
        expect(await store.getRun(W, live.id)).toMatchObject({ status: "waiting", lastSeq: 2 });
      });

      it("cancel of an unleased run ends it and denies its pending approvals", async () => {
        const { run, approvalId } = await waitingForApproval();
        const r = await store.applyExternal(W, { kind: "cancel", runId: run.id, reason: "customer withdrew" });
        expect(r.woke).toBe(false);
        expect(r.run).toMatchObject({
          status: "cancelled",
          error: { code: "cancelled", message: "customer withdrew" },
          waitingFor: null,
          leaseOwner: null,
        });
        expect(r.run.completedAt).toEqual(expect.any(Number));
        expect((await store.getEvents(run.id, 3)).map((e) => [e.type, e.data])).toEqual([
          ["run.cancelled", { reason: "customer withdrew" }],
        ]);
        const a = await store.getApproval(W, approvalId);
        expect(a).toMatchObject({ status: "denied", decidedBy: "outpost" });
        expect(a?.reason).toContain("customer withdrew");
        expect(await store.listApprovals(W, "pending")).toEqual([]);

        // Cancelling again is a no-op; cancelling from another workspace is not_found.
        const again = await store.applyExternal(W, { kind: "cancel", runId: run.id, reason: "again" });
        expect(again.run.lastSeq).toBe(r.run.lastSeq);
        await expectOutpostError(store.applyExternal(OTHER, { kind: "cancel", runId: run.id, reason: "x" }), "not_found");
        const queued = await create("q");
        await expectOutpostError(store.applyExternal(OTHER, { kind: "cancel", runId: queued.id, reason: "x" }), "not_found");
        expect((await store.getRun(W, queued.id))?.status).toBe("queued");
      });

      it("cancel of a leased run is requested and reaches the holder at its next commit", async () => {
        const run = await create("x");
        const c = await claim(run.id);
        const r = await store.applyExternal(W, { kind: "cancel", runId: run.id, reason: "stop it" });
        expect(r.run).toMatchObject({ status: "running", cancelRequested: "stop it", leaseOwner: "w1", lastSeq: 1 });
        expect(await types(run.id)).toEqual(["run.started"]);
        const res = await store.commit({ runId: run.id, leaseToken: c.leaseToken, expectedSeq: 1, events: [step(1)], patch: running() });
        expect(res.cancelRequested).toBe("stop it");
        const end = await store.commit({
          runId: run.id,
          leaseToken: c.leaseToken,
          expectedSeq: 2,
          events: [ev("run.cancelled", { reason: "stop it" })],
          patch: running({ status: "cancelled", error: { code: "cancelled", message: "stop it" }, release: true }),
        });
        expect(end.cancelRequested).toBe("stop it");
        expect(await store.getRun(W, run.id)).toMatchObject({ status: "cancelled", leaseOwner: null });
      });

      it("cancel of a run whose lease expired ends it at once and fences the old holder", async () => {
        const run = await create("x");
        const c = await claim(run.id, "w1", 100);
        await sleep(200);
        const r = await store.applyExternal(W, { kind: "cancel", runId: run.id, reason: "worker died" });
        expect(r.run.status).toBe("cancelled");
        await expectConflict(
          store.commit({ runId: run.id, leaseToken: c.leaseToken, expectedSeq: 1, events: [step(1)], patch: running() }),
          "lease_lost",
        );
        expect(await types(run.id)).toEqual(["run.started", "run.cancelled"]);
      });
    });

    // ───────────────────────────── events ─────────────────────────────
    describe("events", () => {
      it("round-trip intact, for every event type", async () => {
        const run = await create("x");
        const c = await claim(run.id);
        const written: NewEvent[] = [
          ev("model.called", { step: 1, model: "fast" }),
          ev("model.responded", {
            step: 1,
            text: 'Ünïcødé ✓ "quotes" \\ back\nslash 🚀',
            tool_calls: [{ id: "c1", name: "orders.lookup", arguments: '{"id": 42, "deep": {"a": [1, null]}}' }],
            usage: { input_tokens: 1234, output_tokens: 56 },
            cost_usd: 0.000123,
            model: "gpt-4.1-mini",
            finish_reason: "tool-calls",
          }),
          ev("tool.called", {
            call_id: "c1",
            tool: "orders.lookup",
            arguments: { id: 42, deep: { a: [1, null] }, s: "ß" },
            idempotency_key: `${run.id}.1.c1`,
          }),
          ev("tool.completed", { call_id: "c1", tool: "orders.lookup", output: '{"status":"shipped"}', is_error: false }),
          ev("tool.completed", { call_id: "c2", tool: "nope", output: "error: unknown tool", is_error: true, model_error: true }),
          ev("approval.requested", { approval_id: "apr_1", call_id: "c3", tool: "payments.refund", arguments: { amount: 12.5 } }),
          ev("approval.decided", { approval_id: "apr_1", decision: "deny", reason: null, by: "ana" }),
          ev("run.waiting", { for: { kind: "timer", until: "2030-01-01T00:00:00.000Z" } }),
          ev("run.resumed", { reason: "timer" }),
          ev("event.received", { name: "n", payload: null }),
          ev("model.failed", { step: 2, error: { code: "model_timeout", message: "slow" } }),
          ev("run.failed", { error: { code: "model_timeout", message: "slow" } }),
        ];
        const res = await store.commit({ runId: run.id, leaseToken: c.leaseToken, expectedSeq: 1, events: written, patch: running() });
        const read = await store.getEvents(run.id, 1);
        const expected: RunEvent[] = written.map((e, i) => ({ ...e, seq: i + 2, at: res.at }) as RunEvent);
        expect(read).toEqual(expected);
        // Every event read back carries a seq and a time.
        for (const e of read) {
          expect(typeof e.seq).toBe("number");
          expect(typeof e.at).toBe("number");
        }
      });

      it("reading events of one run never returns another run's", async () => {
        const a = await create("a");
        const b = await create("b");
        await store.applyExternal(W, { kind: "event", runId: a.id, name: "for-a", payload: 1 });
        expect(await types(b.id)).toEqual(["run.started"]);
        expect((await store.getEvents(a.id)).map((e) => e.seq)).toEqual([1, 2]);
      });
    });

    // ───────────────────────────── delegation trees, artifacts ─────────────────────────────
    describe("delegation and artifacts", () => {
      /** A parent waiting for children, as the executor leaves it. */
      const parentWaitingFor = async (n: number, mode: "all" | "fail_fast" = "all") => {
        const parent = await create("split the work");
        const pc = await claim(parent.id);
        const kids: RunRecord[] = [];
        for (let i = 0; i < n; i++) {
          const { run } = await store.createRun({
            workspace: W,
            agent: `helper${i}`,
            input: `part ${i}`,
            idempotencyKey: `delegate:${parent.id}.1.c${i}`,
            parent: { runId: parent.id, callId: `c${i}`, rootRunId: parent.id, depth: 1, chain: ["support"] },
          });
          kids.push(run);
        }
        const waitingFor = { kind: "children" as const, run_ids: kids.map((k) => k.id), mode };
        await commit(pc, [ev("run.waiting", { for: waitingFor })], running({ status: "waiting", waitingFor, release: true }));
        return { parent, kids };
      };
      /** Ends a child the way its executor would (claims made along the way are kept for later children). */
      const claims = new Map<string, ClaimedRun>();
      const end = async (kid: RunRecord, status: "completed" | "failed") => {
        for (const c of await store.claimRuns("w2", 100, LEASE)) claims.set(c.run.id, c);
        const claimed = claims.get(kid.id) as ClaimedRun;
        const patch =
          status === "completed"
            ? running({ status, output: `${kid.agent} done`, release: true })
            : running({ status, error: { code: "x", message: "broke" }, release: true });
        await commit(
          claimed,
          [
            status === "completed"
              ? ev("run.completed", { output: `${kid.agent} done` })
              : ev("run.failed", { error: { code: "x", message: "broke" } }),
          ],
          patch,
        );
      };
      const notice = (parent: RunRecord, kid: RunRecord, status: "completed" | "failed" | "cancelled") => ({
        kind: "child" as const,
        notice: {
          parentRunId: parent.id,
          callId: kid.parentCallId as string,
          childRunId: kid.id,
          agent: kid.agent,
          status,
          output: status === "completed" ? `${kid.agent} done` : null,
          error: status === "completed" ? null : { code: "x", message: "broke" },
        },
      });

      it("records a child's place in its tree, and lists trees and children per workspace", async () => {
        const { parent, kids } = await parentWaitingFor(2);
        expect(kids[0]).toMatchObject({ parentRunId: parent.id, parentCallId: "c0", rootRunId: parent.id, depth: 1 });
        expect((await store.getRun(W, parent.id))?.rootRunId).toBe(parent.id);
        expect((await store.getEvents(kids[0].id))[0].data).toMatchObject({
          parent: { run_id: parent.id, call_id: "c0", chain: ["support"] },
        });
        expect((await store.listChildRuns(W, parent.id)).map((r) => r.id)).toEqual(kids.map((k) => k.id));
        expect((await store.listRunTree(W, parent.id)).map((r) => r.id)).toEqual([parent.id, ...kids.map((k) => k.id)]);
        expect(await store.listChildRuns(OTHER, parent.id)).toEqual([]);
        expect(await store.listRunTree(OTHER, parent.id)).toEqual([]);
        // Recreating a child for the same call returns the same run.
        const again = await store.createRun({
          workspace: W,
          agent: "helper0",
          input: "part 0",
          idempotencyKey: `delegate:${parent.id}.1.c0`,
          parent: { runId: parent.id, callId: "c0", rootRunId: parent.id, depth: 1, chain: ["support"] },
        });
        expect(again).toMatchObject({ created: false, run: { id: kids[0].id } });
      });

      it("wakes the parent once its last child has reported, and each report lands exactly once", async () => {
        const { parent, kids } = await parentWaitingFor(2);
        await end(kids[0], "completed");
        expect((await store.listUnnotifiedChildren(10)).map((r) => r.id)).toEqual([kids[0].id]);
        const first = await store.applyExternal(W, notice(parent, kids[0], "completed"));
        expect(first.woke).toBe(false);
        expect(first.events.map((e) => e.type)).toEqual(["child.finished"]);
        expect((await store.applyExternal(W, notice(parent, kids[0], "completed"))).events).toEqual([]); // a redelivery changes nothing
        expect(await store.listUnnotifiedChildren(10)).toEqual([]);
        expect((await store.getRun(W, parent.id))?.status).toBe("waiting");

        await end(kids[1], "completed");
        const last = await store.applyExternal(W, notice(parent, kids[1], "completed"));
        expect(last.woke).toBe(true);
        expect(last.events.map((e) => e.type)).toEqual(["child.finished", "run.resumed"]);
        expect(last.events[0].data).toMatchObject({ call_id: "c1", child_run_id: kids[1].id, status: "completed", output: "helper1 done" });
        expect(last.run).toMatchObject({ status: "queued", waitingFor: null });
        expect((await store.claimRuns("w3", 10, LEASE)).map((c) => c.run.id)).toEqual([parent.id]);
      });

      it("under fail_fast, wakes the parent at the first failed child", async () => {
        const { parent, kids } = await parentWaitingFor(2, "fail_fast");
        await end(kids[1], "failed");
        const r = await store.applyExternal(W, notice(parent, kids[1], "failed"));
        expect(r.woke).toBe(true);
        expect(r.events.map((e) => e.type)).toEqual(["child.finished", "run.resumed"]);
      });

      it("never delivers a report to another workspace's run", async () => {
        const { parent, kids } = await parentWaitingFor(1);
        await end(kids[0], "completed");
        await expectOutpostError(store.applyExternal(OTHER, notice(parent, kids[0], "completed")), "not_found");
        expect((await store.listUnnotifiedChildren(10)).map((r) => r.id)).toEqual([kids[0].id]);
      });

      it("moves a session to the agent that holds it after a handoff", async () => {
        const run = await create("hello");
        await store.setSessionAgent(W, run.sessionId, "billing");
        await store.setSessionAgent(OTHER, run.sessionId, "intruder");
        expect((await store.getSession(W, run.sessionId))?.agent).toBe("billing");
      });

      it("keeps artifacts per workspace, and a retried write replaces the content", async () => {
        const run = await create("dump");
        const a = {
          id: `art_${uniq("a")}`,
          workspace: W,
          runId: run.id,
          rootRunId: run.id,
          callId: "c1",
          tool: "logs.dump",
          content: "x".repeat(70_000),
          size: 70_000,
          createdAt: Date.now(),
        };
        await store.putArtifact(a);
        await store.putArtifact({ ...a, content: "y".repeat(70_000) });
        expect(await store.getArtifact(W, a.id)).toEqual({ ...a, content: "y".repeat(70_000) });
        expect(await store.getArtifact(OTHER, a.id)).toBeNull();
      });
    });
  });
}
