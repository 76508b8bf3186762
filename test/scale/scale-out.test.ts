/**
 * Scale-out under failure (issue 7), with real processes on one PostgreSQL: two API nodes
 * (`outpost up --no-workers`) and three workers (`outpost worker --lease 3s`), all on examples/acme
 * (scripted model) with the Acme helpdesk as a stdio MCP server in each process, over one SQLite file.
 *
 * The helpdesk posts 1,000 new-ticket webhooks, signed, spread over both API nodes; each starts a
 * triage run that reads its ticket and triages it (a write, under Outpost's idempotency key). Every
 * few seconds a random worker is SIGKILLed (its system servers too) and a fresh one started; once, in
 * the middle, PostgreSQL itself restarts. A delivery that fails meanwhile is retried with the same
 * delivery id, as a webhook sender does.
 *
 * Then: every run completed; the helpdesk applied exactly one triage per run (its idempotency rows and
 * the internal notes it wrote both number 1,000, one per run); every run's log is whole, and its events'
 * leases never interleave (no two workers executed a run at once: the fencing, read from the logs); the
 * audit chain verifies.
 *
 * Runs in its own tier (npm run test:scale), after the others: it restarts the PostgreSQL server. Set
 * OUTPOST_TEST_PG_RESTART to the command that restarts yours; by default, as root on this machine's
 * local cluster, `pg_ctlcluster … restart`; elsewhere every connection to the test database is
 * terminated instead (what a failover looks like to a client).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import type { EventView } from "../../src/core/api.js";
import { sign } from "../../src/triggers/index.js";
import { killGroup, systemProcesses } from "../durability/fixtures/acme.js";
import { logProblems, rand, sleep } from "../durability/fixtures/checks.js";
import { REPO, removeDir, tempDir } from "../durability/fixtures/project.js";
import { TEST_ADMIN_KEY } from "../helpers/auth.js";
import { until } from "../helpers/until.js";
import { createTestDatabase } from "../pg/database.js";

const RUNS = 1_000;
const TICKETS = 40;
const WORKERS = 3;
const SECRET = "whsec_scale_7c2e";
const ACME = path.join(REPO, "examples/acme");
const CLI = path.join(REPO, "bin/outpost.js");
/** The new tickets' subject lines, by ticket index mod 4 (the triage script queues each by it). */
const SUBJECTS = ["Charged twice for my order", "Parcel arrived damaged", "Do you ship to Canada?", "Where is my delivery?"];

const db = await createTestDatabase("outpost_scale");
const dataDir = tempDir("outpost-scale");
const env: NodeJS.ProcessEnv = {
  ...process.env,
  OUTPOST_DATABASE_URL: db.url,
  OUTPOST_ADMIN_KEY: TEST_ADMIN_KEY,
  // Every node must read the same secrets and sign the same audit chain: in production these come from the environment.
  OUTPOST_VAULT_KEY: randomBytes(32).toString("base64"),
  OUTPOST_LOG_LEVEL: "error",
  OPENAI_API_KEY: "",
  ANTHROPIC_API_KEY: "",
  OUTPOST_LLM_BASE_URL: "",
  FORCE_COLOR: "0",
};

interface Node {
  name: string;
  child: ChildProcess;
  output: string[];
  url?: string;
}

const nodes: Node[] = [];
/** Nodes that exited without being killed: each must survive a PostgreSQL restart. */
const died: string[] = [];

function start(name: string, args: string[]): Promise<Node> {
  const child = spawn(process.execPath, [CLI, ...args, "--project", ACME, "--data", dataDir], { env, stdio: ["ignore", "pipe", "pipe"] });
  const node: Node = { name, child, output: [] };
  nodes.push(node);
  return new Promise((resolve, reject) => {
    const onLine = (chunk: Buffer) => {
      const text = chunk.toString();
      node.output.push(text);
      node.url ??= /API\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(node.output.join(""))?.[1];
      if (/Press Ctrl\+C/.test(node.output.join(""))) resolve(node); // the banner's last line
    };
    child.stdout?.on("data", onLine);
    child.stderr?.on("data", (c: Buffer) => node.output.push(c.toString()));
    child.on("exit", (code, signal) => {
      if (signal !== "SIGKILL") died.push(`${name} exited (${code ?? signal}):\n${node.output.join("").slice(-3000)}`);
      reject(new Error(`${name} exited (${code ?? signal}) before it was running:\n${node.output.join("")}`));
    });
  });
}

/** The processes a node started (its stdio system servers), read from /proc. */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const p of systemProcesses(dataDir)) {
    try {
      const stat = readFileSync(`/proc/${p.pid}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) found.push(p.pid);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function kill(node: Node): void {
  const servers = childrenOf(node.child.pid as number);
  node.child.kill("SIGKILL");
  for (const pid of servers) killGroup(pid);
  nodes.splice(nodes.indexOf(node), 1);
}

/** Restarts the PostgreSQL server (or, where this test may not, cuts every connection to its database). */
function restartPostgres(): string {
  const custom = process.env.OUTPOST_TEST_PG_RESTART;
  if (custom) {
    execFileSync("sh", ["-c", custom], { stdio: "ignore" });
    return `restarted (${custom})`;
  }
  const local = /@(127\.0\.0\.1|localhost)(:5432)?\//.test(db.url);
  if (local && process.getuid?.() === 0 && existsSync("/etc/postgresql")) {
    const version = readdirSync("/etc/postgresql")[0];
    execFileSync("pg_ctlcluster", ["--skip-systemctl-redirect", version, "main", "restart"], { stdio: "ignore" });
    return `restarted (pg_ctlcluster ${version} main restart)`;
  }
  return "connections terminated";
}

async function sql<T extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    return (await c.query<T>(text, params)).rows;
  } finally {
    await c.end();
  }
}

function helpdesk<T>(fn: (h: Database.Database) => T): T {
  const h = new Database(path.join(dataDir, "acme", "helpdesk.db"));
  try {
    h.pragma("busy_timeout = 10000");
    return fn(h);
  } finally {
    h.close();
  }
}

/** Benign new tickets, as the helpdesk's web form opens them; their ids. */
function openTickets(n: number): string[] {
  return helpdesk((h) => {
    const customer = (h.prepare("SELECT id FROM customers ORDER BY id LIMIT 1").get() as { id: string }).id;
    const first = (h.prepare("SELECT MAX(CAST(SUBSTR(id, 3) AS INTEGER)) AS n FROM tickets").get() as { n: number }).n + 1;
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = `T-${first + i}`;
      const at = new Date().toISOString();
      h.prepare("INSERT INTO tickets VALUES (?, ?, NULL, ?, 'open', 'normal', 'web', ?, ?)").run(id, customer, SUBJECTS[i % 4], at, at);
      h.prepare("INSERT INTO messages (ticket_id, author, author_name, body, created_at) VALUES (?, 'customer', 'Customer', ?, ?)").run(
        id,
        "Please have a look when you can.",
        at,
      );
      ids.push(id);
    }
    return ids;
  });
}

/** One webhook delivery, retried (same delivery id) until an API node answers it: through restarts and failovers. */
async function deliver(urls: string[], ticket: string, subject: string, delivery: string): Promise<string> {
  const payload = JSON.stringify({ event: "ticket.created", ticket_id: ticket, subject });
  for (let attempt = 0; ; attempt++) {
    const url = urls[(attempt + Number(delivery.slice(3))) % urls.length];
    try {
      const res = await fetch(`${url}/v1/hooks/helpdesk-ticket`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-outpost-signature": sign(SECRET, payload, Date.now()),
          "x-helpdesk-delivery": delivery,
        },
        body: payload,
      });
      if (res.status === 202 || res.status === 200) return ((await res.json()) as { run_id: string }).run_id;
      if (res.status < 500) throw new Error(`delivery ${delivery}: ${res.status} ${await res.text()}`);
    } catch (e) {
      if ((e as Error).message.startsWith("delivery ")) throw e;
    }
    if (attempt > 200) throw new Error(`delivery ${delivery} never accepted`);
    await sleep(250);
  }
}

describe.skipIf(!db.reachable)("scale-out on PostgreSQL under failure", () => {
  afterAll(async () => {
    for (const n of [...nodes]) kill(n);
    for (const p of systemProcesses(dataDir)) killGroup(p.pid);
    await db.drop().catch(() => undefined);
    removeDir(dataDir);
  });

  it(`${RUNS} Acme triage runs across 2 API nodes and ${WORKERS} workers, with workers SIGKILLed and PostgreSQL restarted`, async () => {
    // The first node seeds the systems and the workspace; the rest join it.
    const first = await start("api-1", ["up", "--no-workers", "--port", "0"]);
    const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}`, "content-type": "application/json" };
    const put = await fetch(`${first.url}/v1/secrets/helpdesk_webhook`, {
      method: "PUT",
      headers: admin,
      body: JSON.stringify({ value: SECRET }),
    });
    expect(put.status, await put.text()).toBeLessThan(300);
    await until(
      "the helpdesk to be seeded",
      async () =>
        existsSync(path.join(dataDir, "acme", "helpdesk.db")) && helpdesk((h) => h.prepare("SELECT count(*) AS n FROM customers").get())
          ? true
          : null,
      90_000,
    );
    const tickets = openTickets(TICKETS);
    const second = await start("api-2", ["up", "--no-workers", "--port", "0"]);
    const urls = [first.url as string, second.url as string];
    let workerNo = 0;
    const startWorker = () => start(`worker-${++workerNo}`, ["worker", "--lease", "3s", "--concurrency", "200"]);
    await Promise.all(Array.from({ length: WORKERS }, startWorker));

    // Deliveries, 16 at a time, while the chaos below goes on.
    const runIds: string[] = new Array(RUNS);
    let sent = 0;
    const sender = async () => {
      for (let i = sent++; i < RUNS; i = sent++) {
        const t = i % TICKETS;
        runIds[i] = await deliver(urls, tickets[t], SUBJECTS[t % 4], `hd-${i}`);
      }
    };
    const sending = Promise.all(Array.from({ length: 16 }, sender));

    const completed = async () =>
      Number((await sql<{ n: string }>("SELECT count(*) AS n FROM runs WHERE agent = 'triage' AND status = 'completed'"))[0].n);
    let kills = 0;
    let restarted = "";
    let failed: unknown = null;
    sending.catch((e) => {
      failed = e;
    });
    while (failed === null) {
      const n = await completed().catch(() => -1);
      if (n >= RUNS) break;
      if (!restarted && n >= RUNS / 2) {
        restarted = restartPostgres();
        if (restarted === "connections terminated") {
          await sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
          );
        }
        continue;
      }
      await sleep(rand(1_500, 3_500));
      const workers = nodes.filter((x) => x.name.startsWith("worker"));
      kill(workers[rand(0, workers.length - 1)]);
      kills++;
      await startWorker();
      if (kills > 200) throw new Error("the runs did not complete");
    }
    await sending;

    // Every run completed, once each.
    const runs = await sql<{ id: string; status: string }>("SELECT id, status FROM runs WHERE agent = 'triage'");
    expect(runs.length).toBe(RUNS);
    expect(runs.filter((r) => r.status !== "completed")).toEqual([]);
    expect(new Set(runIds).size).toBe(RUNS);

    // The helpdesk applied exactly one triage per run.
    const applied = helpdesk((h) => ({
      keys: (h.prepare("SELECT count(DISTINCT key) AS n FROM idempotency WHERE tool = 'triage_ticket'").get() as { n: number }).n,
      rows: (h.prepare("SELECT count(*) AS n FROM idempotency WHERE tool = 'triage_ticket'").get() as { n: number }).n,
      notes: (
        h
          .prepare(
            `SELECT count(*) AS n FROM messages WHERE author = 'internal' AND body LIKE 'Triaged to %' AND ticket_id IN (${tickets.map(() => "?").join(",")})`,
          )
          .get(...tickets) as { n: number }
      ).n,
    }));
    expect(applied).toEqual({ keys: RUNS, rows: RUNS, notes: RUNS });

    // Every log is whole, and no run was executed by two workers at once: its leases follow each other, never interleave.
    const events = await sql<{ run_id: string; seq: number; type: string; data: unknown; at: string; lease: string | null }>(
      "SELECT run_id, seq::int AS seq, type, data, at::bigint AS at, lease FROM events WHERE run_id = ANY($1) ORDER BY run_id, seq",
      [runs.map((r) => r.id)],
    );
    const byRun = new Map<string, typeof events>();
    for (const e of events) byRun.set(e.run_id, [...(byRun.get(e.run_id) ?? []), e]);
    const problems: string[] = [];
    let takenOver = 0;
    for (const [id, log] of byRun) {
      const view: EventView[] = log.map((e) => ({
        run_id: id,
        seq: e.seq,
        type: e.type,
        data: typeof e.data === "string" ? JSON.parse(e.data) : e.data,
        at: new Date(Number(e.at)).toISOString(),
      }));
      for (const p of logProblems(view, "run.completed")) problems.push(`${id}: ${p}`);
      const leases = log.map((e) => e.lease).filter((l): l is string => l !== null);
      const ended = new Set<string>();
      for (let i = 1; i < leases.length; i++) {
        if (leases[i] === leases[i - 1]) continue;
        ended.add(leases[i - 1]);
        if (ended.has(leases[i])) problems.push(`${id}: lease ${leases[i]} committed again after another worker's`);
      }
      if (new Set(leases).size > 1) takenOver++;
      const triaged = view.filter((e) => {
        const d = e.data as { tool?: string; is_error?: boolean };
        return e.type === "tool.completed" && d.tool === "helpdesk.triage_ticket" && !d.is_error;
      });
      if (triaged.length !== 1) problems.push(`${id}: ${triaged.length} completed triage calls`);
    }
    expect(problems).toEqual([]);
    expect(byRun.size).toBe(RUNS);

    expect(died, "every node survives the PostgreSQL restart").toEqual([]);

    // The audit chain, written by every process, verifies.
    const verify = await until(
      "the audit chain to verify with nothing pending",
      async () => {
        const res = await fetch(`${second.url}/v1/audit/verify`, { headers: admin });
        const body = (await res.json()) as { ok: boolean; pending: number; entries: number; problem: string | null };
        return body.ok && body.pending === 0 ? body : null;
      },
      60_000,
    );
    expect(verify.entries).toBeGreaterThan(RUNS);

    expect(kills).toBeGreaterThanOrEqual(3);
    expect(restarted).not.toBe("");
    console.log(`scale-out: ${RUNS} runs, ${kills} workers killed, PostgreSQL ${restarted}, ${takenOver} runs taken over mid-way`);
  }, 600_000);
});
