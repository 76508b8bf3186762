/**
 * Delegation and fan-out under SIGKILL, against the real Acme business systems.
 *
 * Worker processes run Outpost on examples/acme (scripted model), whose helpdesk, warehouse and
 * ledger are stdio MCP servers keeping SQLite databases in <data>/acme/. The three demo scenarios
 * run at once; each worker life is frozen at a chosen moment (the first still-unvisited one it
 * reaches: a child run being created, a parent that just began waiting, a child that ended before
 * its parent heard, a write tool call before or after its system applied it, a refund waiting for
 * approval, …) and SIGKILLed, then a fresh process continues on the same data folder. The refund is
 * approved through a running worker only after several kills. Then: every run completed, the run
 * trees are whole, and every business write happened exactly once in the systems' databases — the
 * retried ones too, answered from the systems' idempotency tables.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import demo from "../../examples/acme/demo.js";
import { systemsState } from "../../examples/acme/systems/inspect.js";
import { DAMAGED_ORDER, INVOICE_DISPUTE, LATE_SHIPMENT } from "../../examples/acme/systems/scenarios.js";
import type { EventView, RunTreeView, RunView } from "../../src/core/api.js";
import { loadProject } from "../../src/definitions/index.js";
import { startOutpost } from "../../src/runtime/outpost.js";
import {
  ACME_DIR,
  alive,
  approve,
  go,
  killGroup,
  prepareAcmeWorkerCommand,
  procAvailable,
  type SystemProcess,
  systemProcesses,
  WorkerProcess,
} from "./fixtures/acme.js";
import type { Hold } from "./fixtures/acme-worker.js";
import { logProblems, rand, sleep } from "./fixtures/checks.js";
import { removeDir, tempDir } from "./fixtures/project.js";

/** 3 top runs; children: shipments (→ inventory) and refunds; shipments and refunds; invoicing. */
const EXPECTED_RUNS = 9;
const MIN_KILLS = 8;
/** The business writes of the three scenarios: the tools that change a system. */
const WRITES = [
  "helpdesk.reply_to_customer",
  "warehouse.file_carrier_claim",
  "warehouse.create_reship",
  "warehouse.update_delivery_estimate",
  "ledger.issue_refund",
  "ledger.issue_goodwill_credit",
  "ledger.issue_corrected_invoice",
];
const SYSTEMS = ["helpdesk", "warehouse", "ledger"] as const;

const beforeApply = (tool: string): Hold => ({ name: `before-apply ${tool}`, type: "tool.called", match: `"${tool}"`, mode: "sync" });
const afterApply = (tool: string): Hold => ({ name: `after-apply ${tool}`, type: "tool.called", match: `"${tool}"`, mode: "after-send" });

/**
 * The moments to kill at, in groups of alternatives: a worker life is given the holds of every group
 * not reached yet and freezes at the first it meets (so the groups are reached in whatever order the
 * three scenarios bring them); one kill reaches a group. Alternatives keep a group reachable when one
 * candidate passes unseen (committed just before another moment froze the process, say).
 */
const MOMENTS: { group: string; holds: Hold[] }[] = [
  // A fan-out's first child exists, its sibling not yet (and the parent has recorded neither).
  { group: "children being created", holds: [{ name: "first of two children created", type: "created", match: "shipments new" }] },
  // A parent has committed run.waiting {children}; its children have not started.
  {
    group: "parent waits",
    holds: [{ name: "parent just began waiting for its children", type: "run.waiting", match: '"kind":"children"' }],
  },
  { group: "before apply", holds: [beforeApply("warehouse.file_carrier_claim"), beforeApply("ledger.issue_corrected_invoice")] },
  { group: "after apply", holds: [afterApply("ledger.issue_goodwill_credit"), afterApply("warehouse.update_delivery_estimate")] },
  { group: "after apply, late", holds: [afterApply("warehouse.create_reship"), afterApply("helpdesk.reply_to_customer")] },
  // A child committed run.completed; its parent has not been told (the next worker's sweeper tells it).
  {
    group: "child ended",
    holds: [
      { name: "child ended, parent not told (inventory, under shipments)", type: "run.completed", match: "in stock" },
      { name: "child ended, parent not told (invoicing)", type: "run.completed", match: "Corrected invoice" },
    ],
  },
  // A child's result is in its parent's log; the parent has not resumed.
  { group: "child result delivered", holds: [{ name: "child result delivered, parent not resumed", type: "child.finished" }] },
  {
    group: "approval requested",
    holds: [{ name: "refund approval just requested", type: "approval.requested", match: "ledger.issue_refund" }],
  },
  { group: "approved", holds: [{ name: "refund approved, run not resumed", type: "approval.decided", match: '"approve"' }] },
  { group: "refund after apply", holds: [afterApply("ledger.issue_refund")] },
];
/** A worker idle this long after start-up, with an approval pending, is killed as such. */
const IDLE_MS = 1_000;
const LIFE_TIMEOUT_MS = 40_000;
/** How long a killed worker's system servers get to exit by themselves (their stdin closed). */
const ORPHAN_GRACE_MS = 250;

/** ACME_CRASH_TRACE=1 prints each worker life's lines as they come (for looking into a failure). */
const TRACE = process.env.ACME_CRASH_TRACE === "1";
const t0 = Date.now();
const trace = (text: string) => {
  if (TRACE) process.stderr.write(`${String(Date.now() - t0).padStart(6)} ${text}\n`);
};

const dataDir = tempDir("acme-data");
const systemsDir = path.join(dataDir, "acme");
let bundleDir: string | undefined;
afterAll(() => {
  for (const p of systemProcesses(dataDir)) killGroup(p.pid); // only after a failure: asserted empty below
  removeDir(dataDir);
  if (bundleDir) removeDir(bundleDir);
});

interface Kill {
  life: number;
  moment: string;
  line: string;
  /** For a write tool call: whether its system had applied it when the worker died. */
  applied?: boolean;
  mode?: Hold["mode"];
  key?: string;
  /** When the worker was dead (epoch ms). */
  at: number;
  tool?: string;
  orphans: SystemProcess[];
  /** Per orphan: whether it exited by itself within the grace time (else its group was SIGKILLed). */
  reaped?: Promise<boolean[]>;
}

interface Life {
  n: number;
  pid: number;
  lines: string[];
  /** The business systems' servers this worker started, with the databases they had open. */
  servers: { pid: number; command: string; databases: string[] }[];
}

/** The Outpost-side key of a tool.called line: `event <run> <seq> tool.called {"tool":…,"key":…}`. */
function calledDetail(line: string): { run: string; tool: string; key: string } | null {
  const parts = line.split(" ");
  const at = parts.indexOf("tool.called");
  if (at < 0) return null;
  const d = JSON.parse(parts.slice(at + 1).join(" ")) as { tool: string; key: string };
  return { run: parts[at - 2], tool: d.tool, key: d.key };
}

function idempotencyRows(system: string): { key: string; tool: string }[] {
  const db = new Database(path.join(systemsDir, `${system}.db`), { readonly: true, fileMustExist: true });
  try {
    db.pragma("busy_timeout = 5000");
    return db.prepare("SELECT key, tool FROM idempotency ORDER BY created_at, key").all() as { key: string; tool: string }[];
  } finally {
    db.close();
  }
}

function query<T>(system: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(path.join(systemsDir, `${system}.db`), { readonly: true, fileMustExist: true });
  try {
    db.pragma("busy_timeout = 5000");
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** Whether the system holding `tool` has recorded a write under `key` (polled for up to `ms`). */
async function appliedWithin(tool: string, key: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (idempotencyRows(tool.split(".")[0]).some((r) => r.key === key)) return true;
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
}

/** The servers `workerPid` started (still its children) and the SQLite files each has open. */
function serversOf(workerPid: number): Life["servers"] {
  const servers: Life["servers"] = [];
  for (const p of systemProcesses(dataDir)) {
    try {
      const stat = readFileSync(`/proc/${p.pid}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== workerPid) continue;
      const databases = readdirSync(`/proc/${p.pid}/fd`)
        .map((fd) => {
          try {
            return readlinkSync(`/proc/${p.pid}/fd/${fd}`);
          } catch {
            return "";
          }
        })
        .filter((f) => f.endsWith(".db"));
      servers.push({ pid: p.pid, command: p.command, databases });
    } catch {
      // gone meanwhile
    }
  }
  return servers;
}

/** Waits up to ORPHAN_GRACE_MS for each orphan to exit by itself; SIGKILLs the group of any that does not. */
async function reap(orphans: SystemProcess[]): Promise<boolean[]> {
  const deadline = Date.now() + ORPHAN_GRACE_MS;
  while (Date.now() < deadline && orphans.some((o) => alive(o.pid))) await sleep(25);
  return orphans.map((o) => {
    if (!alive(o.pid)) return true;
    killGroup(o.pid);
    return false;
  });
}

const flatten = (t: RunTreeView): RunView[] => [t.run, ...t.children.flatMap(flatten)];

describe("Acme under SIGKILL: delegation and fan-out against the real business systems", () => {
  it("completes the three scenarios through kills at chosen moments, with every business write applied once", async () => {
    expect(procAvailable(), "this test finds the systems' processes through /proc").toBe(true);
    const project = await loadProject(ACME_DIR);

    // The three scenarios are queued by an API-only Outpost without the systems, which then lets go of the folder.
    const setup = await startOutpost({ project: { ...project, connections: new Map() }, dataDir, concurrency: 0 });
    const tops = new Map<string, string>();
    const three = new Set<string>([DAMAGED_ORDER.name, LATE_SHIPMENT.name, INVOICE_DISPUTE.name]);
    for (const s of demo.scenarios.filter((x) => three.has(x.name)))
      tops.set((await setup.startRun({ agent: s.agent, input: s.input })).id, s.name);
    await setup.close();

    const command = await prepareAcmeWorkerCommand();
    if (command.dir) bundleDir = command.dir;
    const spawnWorker = () => new WorkerProcess(command, ACME_DIR, dataDir, EXPECTED_RUNS);

    const kills: Kill[] = [];
    const lives: Life[] = [];
    const reached = new Set<string>();
    const pendingApprovals = new Set<string>();
    let approving = false;
    let operatorApproved = 0;
    const began = Date.now();
    const spares: WorkerProcess[] = [spawnWorker()];
    let current: WorkerProcess | undefined;
    try {
      for (let n = 1; ; n++) {
        expect(n, "too many worker lives").toBeLessThan(30);
        const w = spares.shift() as WorkerProcess;
        current = w;
        spares.push(spawnWorker()); // warming up while this one lives
        await w.warm;
        const life: Life = { n, pid: w.child.pid as number, lines: [], servers: [] };
        lives.push(life);
        let lastLineAt = Date.now();
        let ready = false;
        w.waitForLine((line) => {
          life.lines.push(line);
          lastLineAt = Date.now();
          trace(`[${n}] ${line}`);
          const parts = line.split(" ");
          if (parts[0] === "event" && parts[3] === "approval.requested") pendingApprovals.add(JSON.parse(parts[4]).approval);
          if (parts[0] === "pending") pendingApprovals.add(parts[1]);
          if (parts[0] === "event" && parts[3] === "approval.decided") pendingApprovals.delete(JSON.parse(parts[4]).approval);
          return false;
        }).catch(() => undefined);
        const held = w.waitForLine((l) => l.startsWith("held "));
        held.catch(() => undefined);
        w.ready.then(
          () => {
            ready = true;
            life.servers = serversOf(life.pid);
            // The operator approves the refund through this running worker (once kills have found it waiting).
            if (approving && pendingApprovals.size > 0) {
              approve(w);
              operatorApproved++;
            }
          },
          () => undefined,
        );

        const holds = MOMENTS.filter((m) => !reached.has(m.group)).flatMap((m) => m.holds);
        go(w, { holds });

        type Strike = { moment: string; line: string } | null;
        let over = false;
        const idle = (async (): Promise<Strike> => {
          for (;;) {
            await sleep(100);
            if (over) return null;
            if (ready && pendingApprovals.size > 0 && !approving && Date.now() - lastLineAt > IDLE_MS) {
              return { moment: "idle, a refund waiting for approval", line: w.lastLine };
            }
            if (Date.now() - lastLineAt > LIFE_TIMEOUT_MS) {
              throw new Error(`worker life ${n} stalled; last lines:\n${life.lines.slice(-20).join("\n")}\n${w.stderr}`);
            }
          }
        })();
        const strikes: Promise<Strike>[] = [
          held.then(
            (line) => ({ moment: "held", line }),
            () => null,
          ),
          w.exited.then(() => null),
          idle,
        ];
        // The first life is also killed at a random moment of its start-up (the systems' servers starting, seeding).
        if (n === 1) strikes.push(sleep(rand(300, 2_500)).then(() => ({ moment: "start-up", line: w.lastLine })));
        const strike = await Promise.race(strikes).finally(() => {
          over = true;
        });

        if (strike === null) {
          const exit = await w.exited;
          expect(exit, `worker ${n} ended by itself:\n${w.stderr}\n${life.lines.slice(-20).join("\n")}`).toEqual({
            code: 0,
            signal: null,
          });
          expect(w.lastLine).toBe("done");
          break;
        }

        // Which hold, if any, and for a write: has its system applied it? (after-send: wait until it has)
        const hold = strike.line.startsWith("held ") ? holds.find((h) => strike.line.startsWith(`held ${h.name} `)) : undefined;
        const kill: Kill = { life: n, moment: hold?.name ?? strike.moment, line: strike.line, orphans: [], at: 0 };
        const call = hold?.type === "tool.called" ? calledDetail(strike.line) : null;
        if (call && hold?.mode === "after-send") await appliedWithin(call.tool, call.key, 3_000);
        const exit = await w.kill();
        kill.at = Date.now();
        if (w.stderr) trace(`[${n}] stderr: ${w.stderr}`);
        expect(exit.signal, `worker ${n} was to be killed:\n${w.stderr}`).toBe("SIGKILL");
        if (call) {
          kill.key = call.key;
          kill.tool = call.tool;
          kill.mode = hold?.mode ?? "sync";
          kill.applied = await appliedWithin(call.tool, call.key, 0);
        }
        // Its systems' servers are orphans now: they should exit by themselves once their stdin closes;
        // any still there after a grace time is killed with its process group (each server leads one).
        const known = new Set(kills.flatMap((k) => k.orphans.map((o) => o.pid)));
        kill.orphans = systemProcesses(dataDir).filter((p) => !known.has(p.pid));
        kill.reaped = reap(kill.orphans);
        kills.push(kill);
        const group = MOMENTS.find((m) => m.holds.includes(hold as Hold));
        if (group) reached.add(group.group);
        if (kill.moment.startsWith("idle")) approving = true;
      }
    } finally {
      await current?.kill(); // a no-op once it has exited
      await Promise.all(spares.map((s) => s.dismiss()));
    }
    const wall = (Date.now() - began) / 1000;
    const replayed = lives.flatMap((l) =>
      l.lines.filter((x) => x.startsWith("replayed ")).map((x) => ({ life: l.n, key: x.split(" ")[2] })),
    );
    const selfExited = (await Promise.all(kills.map((k) => k.reaped ?? []))).flat().filter(Boolean).length;
    const orphans = kills.flatMap((k) => k.orphans);
    console.log(
      [
        `acme-crash (${command.description}): ${kills.length} kills over ${lives.length} worker lives in ${wall.toFixed(1)} s`,
        ...kills.map(
          (k) => `  life ${k.life}: ${k.moment}${k.key ? ` — ${k.applied ? "applied" : "not applied"} by its system at the kill` : ""}`,
        ),
        `  the operator approved through a running worker ${operatorApproved}×; the systems answered ${replayed.length} repeated writes from their idempotency tables`,
        `  ${orphans.length} system servers orphaned by the kills: ${selfExited} exited by themselves, ${orphans.length - selfExited} had their process group killed`,
      ].join("\n"),
    );

    // ---- no system process outlives its worker ----
    const strays = systemProcesses(dataDir);
    for (const p of strays) killGroup(p.pid);
    expect(strays, "system processes left running").toEqual([]);
    expect(orphans.length, "killed workers left their systems' servers behind").toBeGreaterThan(0);

    // Every life that got its systems up started all three, on the same three databases.
    const upLives = lives.filter((l) => l.servers.length > 0);
    expect(upLives.length).toBeGreaterThan(kills.length / 2);
    for (const l of upLives) {
      expect(l.servers.map((s) => s.databases).sort(), `life ${l.n}: ${JSON.stringify(l.servers)}`).toEqual(
        SYSTEMS.map((s) => [path.join(systemsDir, `${s}.db`)]).sort(),
      );
    }

    // ---- the runs, from a fresh API-only Outpost on the same data folder ----
    const check = await startOutpost({ project: { ...project, connections: new Map() }, dataDir, concurrency: 0 });
    try {
      const logs = new Map<string, EventView[]>();
      const runs: RunView[] = [];
      for (const [topId, scenario] of tops) {
        const tree = await check.getRunTree(topId);
        expect(tree.run.status, `${scenario}: ${JSON.stringify(tree.run.error)}`).toBe("completed");
        for (const r of flatten(tree)) {
          runs.push(r);
          logs.set(r.id, await check.getEvents(r.id));
        }
      }
      const all = (await check.listRuns({ limit: 200 })).items;
      expect(all.length, "runs in the store").toBe(EXPECTED_RUNS);
      expect(runs.length, "runs in the three trees").toBe(EXPECTED_RUNS);
      for (const r of runs) {
        expect(r.status, `${r.id} (${r.agent}): ${JSON.stringify(r.error)}`).toBe("completed");
        expect(logProblems(logs.get(r.id) as EventView[], "run.completed"), `${r.id} (${r.agent})`).toEqual([]);
      }

      // The trees: who delegated to whom, each child once per delegation call, its result once in its parent's log.
      const shape = (id: string): string => {
        const t = runs.filter((r) => r.parent_run_id === id).map((r) => `${r.agent}${shape(r.id)}`);
        return t.length > 0 ? `(${t.sort().join(" ")})` : "";
      };
      const shapes = Object.fromEntries([...tops].map(([id, name]) => [name, shape(id)]));
      expect(shapes).toEqual({
        damaged_order: "(refunds shipments(inventory))",
        late_shipment: "(refunds shipments)",
        invoice_dispute: "(invoicing)",
      });
      const records = new Map((await check.store.listRuns({ workspace: project.workspace, limit: 200 })).map((r) => [r.id, r]));
      for (const parent of runs) {
        const events = logs.get(parent.id) as EventView[];
        const children = runs.filter((r) => r.parent_run_id === parent.id);
        const started = events.filter((e) => e.type === "delegation.started");
        const finished = events.filter((e) => e.type === "child.finished");
        const delegations = events.filter((e) => e.type === "tool.called" && String(e.data.tool).startsWith("delegate."));
        expect(started.length, `${parent.id}: delegation.started per delegation`).toBe(delegations.length);
        expect(finished.length, `${parent.id}: child.finished per delegation.started`).toBe(started.length);
        expect(children.length, `${parent.id}: one child run per delegation`).toBe(delegations.length);
        for (const child of children) {
          // The link both ways: the child's record and its run.started name the parent's call.
          const callId = records.get(child.id)?.parentCallId;
          const link = (logs.get(child.id) as EventView[])[0].data.parent as { run_id: string; call_id: string; root_run_id: string };
          expect(link).toMatchObject({ run_id: parent.id, call_id: callId, root_run_id: parent.root_run_id });
          expect(child.root_run_id).toBe(parent.root_run_id);
          const call = delegations.find((e) => e.data.call_id === callId);
          expect(call, `${child.id}: its parent's call ${callId}`).toBeDefined();
          expect(String(call?.data.tool)).toBe(`delegate.${child.agent}`);
          expect(started.filter((e) => e.data.child_run_id === child.id && e.data.call_id === callId)).toHaveLength(1);
          const results = finished.filter((e) => e.data.child_run_id === child.id);
          expect(results, `${child.id}: its result in ${parent.id}'s log`).toHaveLength(1);
          expect(results[0].data).toMatchObject({ call_id: callId, status: "completed", output: child.output });
          // The delegation call's result (what the model saw) is the child's answer, once.
          const completed = events.filter((e) => e.type === "tool.completed" && e.data.call_id === callId);
          expect(completed).toHaveLength(1);
          expect(completed[0].data).toMatchObject({ is_error: false, output: child.output });
        }
      }

      // ---- the business systems: every write exactly once ----
      const intents = [...logs.values()]
        .flat()
        .filter((e) => e.type === "tool.called" && WRITES.includes(String(e.data.tool)))
        .map((e) => ({ tool: String(e.data.tool), key: String(e.data.idempotency_key), call: String(e.data.call_id), run: e.run_id }));
      expect(intents.map((i) => i.tool).sort()).toEqual([...WRITES, "helpdesk.reply_to_customer", "helpdesk.reply_to_customer"].sort());
      for (const i of intents) {
        const result = (logs.get(i.run) as EventView[]).filter((e) => e.type === "tool.completed" && e.data.call_id === i.call);
        expect(result, `${i.tool} ${i.key}`).toHaveLength(1);
        expect(result[0].data.is_error, `${i.tool}: ${result[0].data.output}`).toBe(false);
      }
      // The systems' idempotency tables hold exactly the committed write intents: one row per key, none without one.
      for (const system of SYSTEMS) {
        const rows = idempotencyRows(system);
        const mine = intents.filter((i) => i.tool.startsWith(`${system}.`));
        expect(rows.map((r) => `${system}.${r.tool} ${r.key}`).sort(), system).toEqual(mine.map((i) => `${i.tool} ${i.key}`).sort());
      }

      const state = systemsState(systemsDir);
      expect(state.scenarios.damaged_order.done, JSON.stringify(state.scenarios.damaged_order)).toBe(true);
      expect(state.scenarios.late_shipment.done, JSON.stringify(state.scenarios.late_shipment)).toBe(true);
      expect(state.scenarios.invoice_dispute.done, JSON.stringify(state.scenarios.invoice_dispute)).toBe(true);
      // Damaged order: one reship (the monitor), one carrier claim, one refund of 14.95.
      const damaged = state.scenarios.damaged_order;
      expect(damaged.reships.map((r) => r.items)).toEqual([[{ sku: DAMAGED_ORDER.damagedSku, quantity: 1 }]]);
      expect(damaged.claims.map((c) => [c.shipment_id, c.reason])).toEqual([[DAMAGED_ORDER.shipmentId, "damaged"]]);
      expect(damaged.refunds.map((r) => r.amount)).toEqual([DAMAGED_ORDER.shippingFee]);
      // Late shipment: one goodwill credit, one estimate update.
      const late = state.scenarios.late_shipment;
      expect(late.goodwill_credits).toHaveLength(1);
      expect(late.estimate_updates).toBe(1);
      // Invoice dispute: one corrected invoice.
      expect(state.scenarios.invoice_dispute.replaced_by).toBe(`${INVOICE_DISPUTE.invoiceId}-R1`);
      expect(state.warehouse).toMatchObject({ reships: 1, carrier_claims: 1, delivery_estimate_updates: 1, purchase_orders_created: 0 });
      expect(state.ledger).toMatchObject({ refunds: 1, refunded_total: 14.95, goodwill_credits: 1, corrected_invoices: 1 });
      expect(state.helpdesk).toMatchObject({ agent_replies: 3, tickets_created: 0 });
      // And what each write moved, read directly: credit notes, store credit, shipments, reservations.
      const notes = query<{ invoice_id: string; kind: string; amount_cents: number }>(
        "ledger",
        "SELECT invoice_id, kind, amount_cents FROM credit_notes WHERE invoice_id IN (?, ?) ORDER BY invoice_id",
        DAMAGED_ORDER.invoiceId,
        INVOICE_DISPUTE.invoiceId,
      );
      expect(notes).toEqual([
        { invoice_id: INVOICE_DISPUTE.invoiceId, kind: "correction", amount_cents: Math.round(INVOICE_DISPUTE.invoicedTotal * 100) },
        { invoice_id: DAMAGED_ORDER.invoiceId, kind: "refund", amount_cents: Math.round(DAMAGED_ORDER.shippingFee * 100) },
      ]);
      expect(query("ledger", "SELECT id FROM invoices WHERE replaces = ?", INVOICE_DISPUTE.invoiceId), "corrected invoices").toHaveLength(
        1,
      );
      const credit = query<{ store_credit_cents: number }>(
        "ledger",
        "SELECT store_credit_cents FROM accounts WHERE customer_id = ?",
        LATE_SHIPMENT.customerId,
      );
      expect(credit).toEqual([{ store_credit_cents: Math.round(late.goodwill_credits[0].amount * 100) }]);
      expect(
        query("warehouse", "SELECT id FROM shipments WHERE order_id = ?", DAMAGED_ORDER.orderId),
        "original + one reship",
      ).toHaveLength(2);
      expect(
        query("warehouse", "SELECT id FROM reservations WHERE order_id = ? AND reason LIKE 'reship%'", DAMAGED_ORDER.orderId),
      ).toHaveLength(1);
      for (const t of [DAMAGED_ORDER.ticketId, LATE_SHIPMENT.ticketId, INVOICE_DISPUTE.ticketId]) {
        expect(
          query("helpdesk", "SELECT id FROM messages WHERE ticket_id = ? AND author = 'agent'", t),
          `agent replies on ${t}`,
        ).toHaveLength(1);
      }

      // ---- the writes a kill interrupted: before or after their system applied them; applied once ----
      for (const k of kills.filter((k) => k.key !== undefined)) {
        const what = `${k.moment} (life ${k.life}, key ${k.key})`;
        const intent = intents.find((i) => i.key === k.key) as (typeof intents)[number];
        expect(intent, `${what}: its intent committed once`).toBeDefined();
        expect(
          idempotencyRows((k.tool as string).split(".")[0]).filter((r) => r.key === k.key),
          `${what}: one row in its system`,
        ).toHaveLength(1);
        // Its result was committed after the kill, by a later worker calling the system again with the same key.
        const result = (logs.get(intent.run) as EventView[]).find((e) => e.type === "tool.completed" && e.data.call_id === intent.call);
        expect(Date.parse(result?.at ?? ""), `${what}: result committed after the kill`).toBeGreaterThan(k.at);
        if (k.mode === "sync") expect(k.applied, `${what}: frozen before the call, the system cannot have seen it`).toBe(false);
        // Applied before the kill: the retry was answered from the system's idempotency table, in a later life.
        if (k.applied)
          expect(replayed.filter((r) => r.key === k.key && r.life > k.life).length, `${what}: replayed`).toBeGreaterThanOrEqual(1);
      }
      // Every repeat a system saw (aimed at or not) was of a committed intent, and changed nothing (the counts above).
      for (const r of replayed)
        expect(
          intents.map((i) => i.key),
          `replayed key ${r.key}`,
        ).toContain(r.key);

      expect(kills.length).toBeGreaterThanOrEqual(MIN_KILLS);
      expect(kills.filter((k) => k.applied === true).length, "kills after a system applied a write").toBeGreaterThanOrEqual(2);
      expect(kills.filter((k) => k.applied === false).length, "kills before a system applied a write").toBeGreaterThanOrEqual(1);
      // Kills inside a fan-out: after a parent committed its delegations to two children, before the last one's result reached it.
      const fanOuts = [...logs.values()].flatMap((events) => {
        const calls = events.filter((e) => e.type === "tool.called" && String(e.data.tool).startsWith("delegate."));
        const results = events.filter((e) => e.type === "child.finished");
        return calls.length >= 2 ? [{ from: Date.parse(calls[0].at), to: Math.max(...results.map((e) => Date.parse(e.at))) }] : [];
      });
      const inFanOut = kills.filter((k) => fanOuts.some((f) => f.from < k.at && k.at < f.to));
      console.log(`acme-crash: ${inFanOut.length} kills inside a fan-out: ${inFanOut.map((k) => `life ${k.life}`).join(", ")}`);
      expect(inFanOut.length, "kills in the middle of a fan-out").toBeGreaterThanOrEqual(2);

      // The moments this test is about, each reached.
      const moments = kills.map((k) => k.moment);
      expect(moments).toContain("first of two children created");
      expect(moments).toContain("parent just began waiting for its children");
      expect(moments).toContain("child result delivered, parent not resumed");
      expect(moments).toContain("idle, a refund waiting for approval");
      expect(moments.filter((m) => m.startsWith("child ended, parent not told"))).toHaveLength(1);
      expect(operatorApproved).toBeGreaterThanOrEqual(1);
    } finally {
      await check.close();
    }
  }, 150_000);
});
