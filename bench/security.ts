/**
 * What the security layer adds to one durable run step. Governance is always on in the runtime (there is no switch
 * to turn it off, and the bench adds none), so it is measured two ways:
 *  - end to end: the steps workload (bench/workload.ts), sequential, run alternately in child processes by this
 *    checkout and by the runtime as it was just before governance (commit PRE_GOVERNANCE, extracted with
 *    `git archive`) — same machine, same minutes;
 *  - per component, in isolation: a policy decision (new, cached), the audit entries of a commit and their outbox
 *    insert, chaining them, the injection scan, the untrusted-data wrapping, PII masking, and how often the
 *    workload pays each (budgets: the budgets section).
 *   npx tsx bench/security.ts [--quick]
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import BetterSqlite3 from "better-sqlite3";
import type { EventView } from "../src/core/api.js";
import type { RunEvent } from "../src/core/events.js";
import { newId } from "../src/core/ids.js";
import type { ChatMessage } from "../src/models/index.js";
import { auditEntriesFor } from "../src/runtime/governance.js";
import { apply, initialState } from "../src/runtime/index.js";
import { AuditLog, loadAuditSigningKey } from "../src/security/audit/index.js";
import { maskMessages, scanForInjection, wrapUntrusted } from "../src/security/guardrails/index.js";
import { createPolicyEngine, toolCallRequest } from "../src/security/policy/index.js";
import { openStore } from "../src/store/index.js";
import type { AuditEntryInput } from "../src/store/types.js";
import { median, openDriver } from "./driver.js";
import { benchModel, benchProject, counterTool, STEPS_PER_RUN, TOOL_CALLS } from "./workload.js";

/** The runtime just before governance entered the run loop (the parent of dcaa7f8). */
export const PRE_GOVERNANCE = "67f6d3a";
const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..");

export interface Component {
  name: string;
  /** µs per call (median of 5 batches of a mean). */
  us: number;
  /** Calls per step in the steps workload (null: the workload does not pay it). */
  perStep: number | null;
  note: string;
}

export interface StepsComparison {
  /** µs per step, one figure per child process (alternating with `before`). */
  now: number[];
  before: number[];
  eventsPerRun: { now: number; before: number };
  auditPerRun: number;
  /** Why there is no `before` (git history missing), if so. */
  missing?: string;
}

export interface SecurityResult {
  components: Component[];
  steps: StepsComparison;
}

/** Median over 5 batches of the mean µs of `fn` over `n` calls (after one batch of warm-up). */
function timeUs(n: number, fn: (i: number) => unknown): number {
  const batches: number[] = [];
  for (let b = 0; b <= 5; b++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn(i);
    if (b > 0) batches.push(Number(process.hrtime.bigint() - t) / 1000 / n);
  }
  return median(batches);
}

/** A typical tool output of about 1.5 kB: an order with its customer, lines and history, as JSON. */
function orderJson(i: number, lines = 6): string {
  return JSON.stringify({
    order_id: `A-${1000 + i}`,
    status: "shipped",
    customer: { id: `c-${i}`, name: "Ann Example", email: "ann@example.org", phone: "+31 20 555 0134" },
    shipping: { street: "Keizersgracht 123", city: "Amsterdam", postcode: "1015 CJ", country: "NL", carrier: "DHL" },
    lines: Array.from({ length: lines }, (_, k) => ({
      sku: `SKU-${k}-${i}`,
      title: `Standing desk frame, model ${k}`,
      qty: 1 + (k % 3),
      unit_price: 129.5 + k,
    })),
    history: [
      { at: "2026-11-20T09:12:00Z", event: "placed" },
      { at: "2026-11-21T14:03:00Z", event: "paid" },
      { at: "2026-11-22T08:40:00Z", event: "shipped", note: "left the warehouse in Venlo" },
    ],
    total: 912.4,
    currency: "EUR",
  });
}

/** 16 kB of tool output (the workload's max_tool_output): a list of such orders, cut. */
const bigOutput = (i: number) => `[${Array.from({ length: 20 }, (_, k) => orderJson(i + k)).join(",")}]`.slice(0, 16_000);

/**
 * `count` distinct texts to rotate through: V8 caches some regular-expression results per subject string, so timing
 * one string over and over would flatter the scans.
 */
const variants = (count: number, make: (i: number) => string) => Array.from({ length: count }, (_, i) => make(i));

/** One workload run, for the events it commits (what auditEntriesFor sees). */
async function oneRunEvents(): Promise<{ runId: string; events: RunEvent[] }> {
  const seen: EventView[] = [];
  const driver = await openDriver(benchProject(), benchModel(0), (e) => seen.push(e));
  try {
    const runId = await driver.run("bench", "count");
    const events = seen.filter((e) => e.run_id === runId && e.seq > 0).map((e) => ({ ...e, run_id: e.run_id }) as unknown as RunEvent);
    return { runId, events };
  } finally {
    await driver.close();
    driver.remove();
  }
}

async function components(quick: boolean, auditPerRun: number): Promise<Component[]> {
  const n = quick ? 200 : 1000;
  const out: Component[] = [];
  const wraps = (TOOL_CALLS * (TOOL_CALLS + 1)) / 2; // every model call wraps every tool result so far

  // Policy: the workload's own request (baseline policies, as benchProject has no others).
  const engine = createPolicyEngine(benchProject());
  const request = (who: string, i: number) =>
    toolCallRequest({ agent: "bench", tool: counterTool, args: { n: i }, onBehalfOf: who, runClassification: "internal" });
  let who = 0;
  out.push({
    name: "`engine.authorize`, request new to the engine",
    us: timeUs(n, (i) => engine.authorize(request(`user:${who++}`, i))),
    perStep: null,
    note: "the Cedar path: the workload's tool call, each time for another person",
  });
  out.push({
    name: "`engine.authorize`, same request again",
    us: timeUs(n * 10, (i) => engine.authorize(request("user:ann", i))),
    perStep: (TOOL_CALLS + 1) / STEPS_PER_RUN,
    note: "decision cache (arguments no policy reads are dropped); once per tool call, model.use once per run",
  });

  // Audit entries of a commit, from a real run of the workload.
  const { runId, events } = await oneRunEvents();
  // The executor asks with the run's state once the commit's events are applied: replay, and keep a copy per event.
  const state = initialState(runId);
  const moments = events.map((e) => ({ state: structuredClone(apply(state, e)), events: [e] }));
  let entries: AuditEntryInput[] = [];
  const perRun = timeUs(quick ? 50 : 200, () => {
    entries = moments.flatMap((m) => auditEntriesFor(m.state, runId, m.events, { location: "local" }));
  });
  out.push({
    name: "`auditEntriesFor` over a run's commits, per step",
    us: perRun / STEPS_PER_RUN,
    perStep: 1,
    note: `${events.length} events → ${entries.length} entries; per step`,
  });

  // Their outbox insert inside the commit's transaction (the statement the SQLite store runs, minus its runs lookup).
  const dir = mkdtempSync(join(tmpdir(), "outpost-bench-security-"));
  try {
    const store = await openStore({ dataDir: dir });
    await store.close();
    const db = new BetterSqlite3(join(dir, "outpost.db"));
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    const insert = db.prepare("INSERT INTO audit_outbox (id, workspace, at, kind, actor, run_id, data) VALUES (?, ?, ?, ?, ?, ?, ?)");
    const inserts = db.transaction((from: number, count: number) => {
      const at = Date.now();
      for (let i = from; i < from + count; i++) {
        const e = entries[i % entries.length] as AuditEntryInput;
        insert.run(newId("aud", at), "bench", at, e.kind, e.actor, runId, JSON.stringify(e.data));
      }
    });
    let next = 0;
    out.push({
      name: "audit outbox insert, per entry",
      us:
        timeUs(quick ? 20 : 100, () => {
          inserts(next, 100);
          next += 100;
        }) / 100,
      perStep: auditPerRun / STEPS_PER_RUN,
      note: "in the commit's transaction (timed in batches of 100, so the commit itself is not counted)",
    });
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // Chaining them in the background (canonical JSON, SHA-256, insert into audit_log, a signed checkpoint every 1,000).
  const chainDir = mkdtempSync(join(tmpdir(), "outpost-bench-security-"));
  try {
    const store = await openStore({ dataDir: chainDir });
    const log = new AuditLog(store, loadAuditSigningKey({ dataDir: chainDir, env: {} }));
    const total = quick ? 5_000 : 20_000;
    const chainUs: number[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < total; i += 500) {
        await log.record(
          "bench",
          Array.from({ length: 500 }, (_, k) => ({ ...(entries[(i + k) % entries.length] as AuditEntryInput), runId })),
        );
      }
      const t = process.hrtime.bigint();
      await log.flush();
      chainUs.push(Number(process.hrtime.bigint() - t) / 1000 / total);
    }
    await log.close();
    await store.close();
    out.push({
      name: "chaining an entry (background, every second)",
      us: median(chainUs),
      perStep: auditPerRun / STEPS_PER_RUN,
      note: "read from the outbox, canonical JSON, SHA-256, into audit_log, checkpoint every 1,000",
    });
  } finally {
    rmSync(chainDir, { recursive: true, force: true });
  }

  // Guardrails on the workload's output, then on typical and large ones (distinct texts, see variants).
  const tiny = variants(1024, (i) => JSON.stringify(counterTool.handler({ input: { n: i } } as never)));
  const typical = variants(256, (i) => orderJson(i, 12));
  const big = variants(16, bigOutput);
  const size = (texts: string[]) => texts.reduce((a, t) => a + t.length, 0) / texts.length;
  const kB = (texts: string[]) => `${(size(texts) / 1024).toFixed(1)} kB`;
  out.push({
    name: `\`scanForInjection\`, the workload's output (${size(tiny).toFixed(0)} B)`,
    us: timeUs(n * 10, (i) => scanForInjection(tiny[i % tiny.length] as string)),
    perStep: TOOL_CALLS / STEPS_PER_RUN,
    note: "once per tool result",
  });
  out.push({
    name: `\`scanForInjection\`, typical output (${kB(typical)})`,
    us: timeUs(n, (i) => scanForInjection(typical[i % typical.length] as string)),
    perStep: null,
    note: "an order with its customer, 12 lines and history, as JSON",
  });
  out.push({
    name: `\`scanForInjection\`, ${kB(big)} output`,
    us: timeUs(quick ? 20 : 100, (i) => scanForInjection(big[i % big.length] as string)),
    perStep: null,
    note: "the workload's max_tool_output (16,000 characters)",
  });
  out.push({
    name: `\`wrapUntrusted\`, the workload's output (${size(tiny).toFixed(0)} B)`,
    us: timeUs(n * 10, (i) => wrapUntrusted("counter.add", tiny[i % tiny.length] as string)),
    perStep: wraps / STEPS_PER_RUN,
    note: `every model call wraps every tool result so far (${wraps} per run)`,
  });
  out.push({
    name: `\`wrapUntrusted\`, typical output (${kB(typical)})`,
    us: timeUs(n, (i) => wrapUntrusted("orders.get", typical[i % typical.length] as string)),
    perStep: null,
    note: "neutralise markers, SHA-256 boundary",
  });
  const prompts = Array.from({ length: 64 }, (_, i): ChatMessage[] => [
    { role: "system", content: "You are the support agent of Acme. Answer customers' questions about their orders.".repeat(3) },
    {
      role: "user",
      content: `Hi, this is Ann (ann${i}@example.org, +31 20 555 ${1000 + i}). Where is my order A-${1000 + i}? I paid by card.`,
    },
    { role: "assistant", content: "", toolCalls: [{ id: "c1", name: "orders.get", arguments: `{"order_id":"A-${1000 + i}"}` }] },
    { role: "tool", toolCallId: "c1", toolName: "orders.get", content: wrapUntrusted("orders.get", typical[i] as string) },
  ]);
  const promptChars = (prompts[0] as ChatMessage[]).reduce((s, m) => s + m.content.length, 0);
  out.push({
    name: `\`maskMessages\`, typical prompt (${(promptChars / 1024).toFixed(1)} kB, 4 messages)`,
    us: timeUs(n, (i) => maskMessages(prompts[i % prompts.length] as ChatMessage[])),
    perStep: null,
    note: "external models only (the workload's model is local); the customer's e-mail and phone masked",
  });
  return out;
}

/** Extracts the pre-governance runtime from git into a temporary folder (null if this checkout has no history). */
function extractBaseline(): { root: string; remove: () => void } | { missing: string } {
  const root = mkdtempSync(join(tmpdir(), "outpost-bench-pregov-"));
  const remove = () => rmSync(root, { recursive: true, force: true });
  try {
    const tar = execFileSync("git", ["-C", repo, "archive", PRE_GOVERNANCE, "src", "bench", "package.json", "tsconfig.json"], {
      maxBuffer: 256 * 1024 * 1024,
      stdio: ["ignore", "pipe", "pipe"],
    });
    execFileSync("tar", ["-x", "-C", root], { input: tar });
    symlinkSync(join(repo, "node_modules"), join(root, "node_modules"), "dir");
    return { root, remove };
  } catch (err) {
    remove();
    return { missing: `commit ${PRE_GOVERNANCE} could not be extracted (${(err as Error).message.split("\n")[0]})` };
  }
}

interface ChildFigures {
  usPerStep: number;
  eventsPerRun: number;
  auditPerRun: number;
}

function stepsChild(root: string, runs: number, warm: number): Promise<ChildFigures> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(here, "security-steps.ts"), root, String(runs), String(warm)], {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      const line = out.trim().split("\n").pop() ?? "";
      if (code !== 0) reject(new Error(`security steps child (${root}) exited ${code}: ${out}`));
      else resolve(JSON.parse(line) as ChildFigures);
    });
  });
}

async function stepsComparison(quick: boolean): Promise<StepsComparison> {
  const rounds = quick ? 2 : 5;
  const runs = quick ? 50 : 150;
  const baseline = extractBaseline();
  const now: ChildFigures[] = [];
  const before: ChildFigures[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      // Alternate which goes first, so neither always follows the other's disk activity.
      const order = r % 2 === 0 ? (["now", "before"] as const) : (["before", "now"] as const);
      for (const which of order) {
        if (which === "now") now.push(await stepsChild(repo, runs, 20));
        else if ("root" in baseline) before.push(await stepsChild(baseline.root, runs, 20));
      }
    }
  } finally {
    if ("root" in baseline) baseline.remove();
  }
  return {
    now: now.map((f) => f.usPerStep),
    before: before.map((f) => f.usPerStep),
    eventsPerRun: { now: now[0]?.eventsPerRun ?? 0, before: before[0]?.eventsPerRun ?? 0 },
    auditPerRun: now[0]?.auditPerRun ?? 0,
    ...("missing" in baseline ? { missing: baseline.missing } : {}),
  };
}

export async function securityOverhead(quick: boolean): Promise<SecurityResult> {
  const steps = await stepsComparison(quick);
  return { components: await components(quick, steps.auditPerRun), steps };
}

const us = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const range = (xs: number[]) => `${us(Math.min(...xs))}–${us(Math.max(...xs))}`;

/**
 * The section. `previous` is the figure BENCHMARKS.md gave before governance existed (sequential µs per step at
 * commit 18a67d3), quoted for reference.
 */
export function securitySection(r: SecurityResult, record: (name: string, value: string, note?: string) => void): string {
  const s = r.steps;
  const now = median(s.now);
  const before = s.before.length > 0 ? median(s.before) : Number.NaN;
  record("run step with governance, sequential (µs/step)", us(now), `median of ${s.now.length} processes (${range(s.now)})`);
  if (s.before.length > 0) {
    record(
      `same, runtime before governance (${PRE_GOVERNANCE}) (µs/step)`,
      us(before),
      `median of ${s.before.length} (${range(s.before)})`,
    );
    record("security layer per step (µs)", us(now - before), `${(now / before).toFixed(2)}× the step before governance`);
  }
  let paid = 0;
  const rowsOut = r.components.map((c) => {
    const cost = c.perStep === null ? null : c.us * c.perStep;
    if (cost !== null) paid += cost;
    return `| ${c.name} | ${us(c.us)} | ${c.perStep === null ? "—" : c.perStep.toFixed(2)} | ${cost === null ? "—" : us(cost)} | ${c.note} |`;
  });
  for (const c of r.components)
    record(c.name.replace(/`/g, ""), `${us(c.us)} µs`, c.perStep === null ? "" : `× ${c.perStep.toFixed(2)} per step`);
  record("components the workload pays, summed (µs/step)", us(paid));
  const comparison =
    s.before.length > 0
      ? `| with governance (this checkout) | ${us(now)} | ${range(s.now)} | ${s.eventsPerRun.now} | ${s.auditPerRun.toFixed(0)} |
| before governance (commit \`${PRE_GOVERNANCE}\`) | ${us(before)} | ${range(s.before)} | ${s.eventsPerRun.before} | 0 |
| **added by the security layer** | **${us(now - before)}** (${(now / before).toFixed(2)}×) | | ${s.eventsPerRun.now - s.eventsPerRun.before} | |`
      : `| with governance (this checkout) | ${us(now)} | ${range(s.now)} | ${s.eventsPerRun.now} | ${s.auditPerRun.toFixed(0)} |

(No pre-governance figure: ${s.missing}.)`;
  return `## Security overhead per step

Governance is always on in the runtime: every tool call is decided by the policy engine and the decision recorded
(a \`policy.decided\` event), each commit carries audit entries into the outbox in its own transaction, a background
chainer links them into the hash chain every second, every tool result is scanned for injected instructions and
delimited as untrusted data in the prompt; PII is masked only for external models and budgets reserved only where
caps exist. There is no switch to turn it off (none was added for the bench), so the steps workload (above; one run at
a time) runs alternately in child processes of this checkout and of the runtime as it was just before governance
entered the run loop (commit \`${PRE_GOVERNANCE}\`, the parent of \`dcaa7f8\`, extracted with \`git archive\`), ${s.now.length} processes
each. Before governance existed, this file gave 139.8 µs per sequential step for the workload (commit \`18a67d3\`, on
another VM: 2 × AMD EPYC, load 1.3).

| runtime | µs/step (median) | range | events per run | audit entries per run |
|---|---:|---:|---:|---:|
${comparison}

What each part costs, measured alone in this process, and how often the workload pays it:

| component | µs per call | calls per step | µs per step | note |
|---|---:|---:|---:|---|
${rowsOut.join("\n")}
| **components the workload pays, summed** | | | **${us(paid)}** | |

Budgets (reserve + settle around each model call) cost what the Budgets section says, and only where caps are
configured; the workload has none.

Where the time goes (\`node --cpu-prof\` of both child processes, 200 runs each, on this machine under a load average
of about 5; with governance minus before, µs per step): the run's own commit about +70 (each step now writes 1.5
audit rows into the outbox and half an event more — a \`policy.decided\` carrying its request — so more bytes, more
WAL checkpoints); the background chainer about +60 (reading the outbox, canonical JSON, SHA-256, writing audit_log);
building the prompt about +40, half of it \`wrapUntrusted\` (every model call wraps, and hashes, every earlier tool
result again: quadratic in a run's tool calls); \`decide\` about +30 (the policy requests of every tool call, the
cached decision, the decision event); the injection scan about +25 although the workload's outputs are 19 bytes
(inside the run a scan cost about 40–50 µs, several times what it costs alone in a tight loop — dozens of regular
expressions per text, probably compiled and cached only while in constant use); ids and garbage about +15. The
components measured alone sum to less than the end-to-end difference for that reason, and because each commit's
extra bytes slow the commit itself. So: the audit trail (outbox rows, chaining) is the largest part, then the
prompt's untrusted-data wrapping and the scan. With real tool outputs the scan would dominate: a quarter of a
millisecond or more for a 1.5 kB order and 2–3 ms at the 16 kB output limit, per tool result — more than all the
rest of a step.
`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const r = await securityOverhead(process.argv.includes("--quick"));
  console.log(securitySection(r, (name, value, note) => console.log(`${name.padEnd(58)} ${value.padStart(14)}  ${note ?? ""}`)));
}
