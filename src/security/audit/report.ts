/**
 * Transparency reports: what agents did in a period, built from the verified audit log only. The chain is
 * verified in the same pass that reads it; a failed verification is stated first, and nothing from the first
 * bad entry on is summarised.
 */
import type { KeyObject } from "node:crypto";
import type { Store } from "../../store/types.js";
import { type AuditProblem, type VerifiedCheckpoint, type VerifiedRow, verifyAudit } from "./verify.js";

export interface ReportOptions {
  /** Only this agent's entries (actor `agent:<name>` or data.agent). */
  agent?: string;
  /** Epoch ms, inclusive. */
  since: number;
  /** Epoch ms, exclusive (default: now). */
  until?: number;
  publicKey: KeyObject;
}

interface Row {
  seq: number;
  at: number;
  kind: string;
  actor: string;
  runId: string | null;
  data: Record<string, unknown>;
}

export interface TransparencyReport {
  version: 1;
  workspace: string;
  agent: string | null;
  since: string;
  until: string;
  generatedAt: string;
  verification: {
    ok: boolean;
    entriesVerified: number;
    lastSeq: number;
    problem: AuditProblem | null;
    /** The signed checkpoint covering the period's last entry; null if those entries are chained but not yet signed. */
    coveredBy: VerifiedCheckpoint | null;
    /** Entries of the period after the last checkpoint (chained, not yet signed). */
    unsignedEntries: number;
  };
  entries: number;
  actionsByKind: Record<string, number>;
  dataClasses: Record<string, number>;
  approvals: { requested: number; approved: number; denied: number; expired: number; decisions: Decision[] };
  policy: { allowed: number; denied: number };
  blocked: Blocked[];
  models: { model: string; location: string; calls: number; inputTokens: number; outputTokens: number; costUsd: number }[];
  spendUsd: number;
  runs: number;
}

interface Decision {
  seq: number;
  at: string;
  kind: string;
  approvalId: string | null;
  tool: string | null;
  by: string | null;
  reason: string | null;
}

interface Blocked {
  seq: number;
  at: string;
  kind: string;
  actor: string;
  runId: string | null;
  what: string;
}

const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const iso = (ms: number) => new Date(ms).toISOString();

export async function buildReport(
  store: Store,
  workspace: string,
  options: ReportOptions,
): Promise<{ json: TransparencyReport; markdown: string }> {
  const until = options.until ?? Date.now();
  const agent = options.agent ?? null;
  const rows: Row[] = [];
  const verification = await verifyAudit(store, workspace, {
    publicKey: options.publicKey,
    onEntry: (r: VerifiedRow) => {
      if (r.at < options.since || r.at >= until) return;
      const data = JSON.parse(r.data) as Record<string, unknown>;
      if (agent !== null && r.actor !== `agent:${agent}` && data.agent !== agent) return;
      rows.push({ seq: r.seq, at: r.at, kind: r.kind, actor: r.actor, runId: r.run_id, data });
    },
  });
  const lastCp = verification.lastCheckpoint;
  const problem = verification.problem ?? null;
  const trusted = problem ? rows.filter((r) => r.seq < problem.seq) : rows;
  const lastSeqInPeriod = trusted.length > 0 ? trusted[trusted.length - 1].seq : 0;
  const coveredBy = lastCp && lastCp.seq >= lastSeqInPeriod ? lastCp : null;

  const json: TransparencyReport = {
    version: 1,
    workspace,
    agent,
    since: iso(options.since),
    until: iso(until),
    generatedAt: iso(Date.now()),
    verification: {
      ok: verification.ok,
      entriesVerified: verification.entries,
      lastSeq: verification.lastSeq,
      problem,
      coveredBy,
      unsignedEntries: trusted.filter((r) => !lastCp || r.seq > lastCp.seq).length,
    },
    ...summarise(trusted),
  };
  return { json, markdown: toMarkdown(json) };
}

function summarise(rows: Row[]) {
  const actionsByKind: Record<string, number> = {};
  const dataClasses: Record<string, number> = {};
  const approvals = { requested: 0, approved: 0, denied: 0, expired: 0, decisions: [] as Decision[] };
  const policy = { allowed: 0, denied: 0 };
  const blocked: Blocked[] = [];
  const models = new Map<string, TransparencyReport["models"][number]>();
  const runs = new Set<string>();
  let spendUsd = 0;

  for (const r of rows) {
    const d = r.data;
    actionsByKind[r.kind] = (actionsByKind[r.kind] ?? 0) + 1;
    if (r.runId) runs.add(r.runId);
    for (const field of ["classification", "run_classification"]) {
      const c = str(d[field]);
      if (c) dataClasses[c] = (dataClasses[c] ?? 0) + 1;
    }
    const blockedAs = (what: string) => blocked.push({ seq: r.seq, at: iso(r.at), kind: r.kind, actor: r.actor, runId: r.runId, what });
    switch (r.kind) {
      case "approval.requested":
        approvals.requested++;
        break;
      case "approval.approved":
      case "approval.denied":
      case "approval.expired": {
        const outcome = r.kind.slice("approval.".length) as "approved" | "denied" | "expired";
        approvals[outcome]++;
        approvals.decisions.push({
          seq: r.seq,
          at: iso(r.at),
          kind: r.kind,
          approvalId: str(d.approval_id),
          tool: str(d.tool),
          by: str(d.by),
          reason: str(d.reason),
        });
        break;
      }
      case "policy.decision": {
        if (d.effect === "deny") {
          policy.denied++;
          const res = d.resource as { type?: string; id?: string } | string | undefined;
          const target = typeof res === "string" ? res : res ? `${res.type ?? ""}::${res.id ?? ""}` : "";
          const by = Array.isArray(d.policies) && d.policies.length > 0 ? ` by ${d.policies.join(", ")}` : " (no policy permits it)";
          blockedAs(`${str(d.action) ?? "action"} ${target} denied${by}`);
        } else policy.allowed++;
        break;
      }
      case "budget.blocked":
        blockedAs(`budget cap ${str(d.cap) ?? "?"}: limit ${num(d.limit)}, spent ${num(d.spent)}`);
        break;
      case "model.used": {
        const model = str(d.model) ?? "unknown";
        const location = str(d.location) ?? "unknown";
        const key = `${model}\u0000${location}`;
        const m = models.get(key) ?? { model, location, calls: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };
        m.calls++;
        m.inputTokens += num(d.input_tokens);
        m.outputTokens += num(d.output_tokens);
        m.costUsd += num(d.cost_usd);
        spendUsd += num(d.cost_usd);
        models.set(key, m);
        break;
      }
      default:
        if (r.kind === "guardrail.injection") blockedAs(`prompt injection in output of ${str(d.tool) ?? "a tool"}`);
        else if (r.kind === "guardrail.egress_blocked") blockedAs(`egress to ${str(d.url) ?? "?"} blocked`);
        else if (r.kind === "webhook.refused") blockedAs(`webhook ${str(d.webhook) ?? "?"} delivery refused: ${str(d.reason) ?? ""}`);
        else if (r.kind.startsWith("guardrail.")) blockedAs(r.kind);
    }
  }
  return {
    entries: rows.length,
    actionsByKind,
    dataClasses,
    approvals,
    policy,
    blocked,
    models: [...models.values()].sort((a, b) => b.calls - a.calls),
    spendUsd,
    runs: runs.size,
  };
}

const usd = (n: number) => `$${n.toFixed(n > 0 && n < 0.01 ? 4 : 2)}`;
/** Markdown table cells: no pipes or newlines from entry data. */
const cell = (v: unknown) => String(v ?? "").replace(/\s*[|\r\n]+\s*/g, " ");

function toMarkdown(r: TransparencyReport): string {
  const v = r.verification;
  const lines: string[] = [];
  const who = r.agent ? `agent ${r.agent}` : "all agents";
  lines.push(`# Transparency report: ${who}`, "");
  if (!v.ok && v.problem) {
    lines.push(
      `> **THE AUDIT LOG FAILED VERIFICATION.** ${v.problem.kind} at seq ${v.problem.seq}: ${v.problem.message}.`,
      `> This report covers only entries before seq ${v.problem.seq}; nothing after it is summarised.`,
      "",
    );
  } else {
    const cp = v.coveredBy
      ? `covered by the checkpoint at seq ${v.coveredBy.seq} (key ${v.coveredBy.keyId}, signed ${iso(v.coveredBy.at)})`
      : "not yet covered by a signed checkpoint";
    lines.push(`Audit log verified: ${v.entriesVerified} entries, chain intact, ${cp}.`);
    if (v.unsignedEntries > 0 && v.coveredBy === null)
      lines.push(`${v.unsignedEntries} entries of this period are chained but not yet signed.`);
    lines.push("");
  }
  lines.push(`- Workspace: ${r.workspace}`, `- Period: ${r.since} to ${r.until}`, `- Generated: ${r.generatedAt}`);
  lines.push(`- Entries: ${r.entries} across ${r.runs} runs`, `- Spend: ${usd(r.spendUsd)}`, "");

  lines.push("## Actions by kind", "");
  const kinds = Object.entries(r.actionsByKind).sort((a, b) => b[1] - a[1]);
  if (kinds.length === 0) lines.push("No recorded actions in this period.");
  else lines.push("| Kind | Count |", "| --- | ---: |", ...kinds.map(([k, n]) => `| ${k} | ${n} |`));
  lines.push("");

  lines.push("## Data classes touched", "");
  const classes = Object.entries(r.dataClasses);
  if (classes.length === 0) lines.push("No classified data recorded.");
  else lines.push("| Classification | Entries |", "| --- | ---: |", ...classes.map(([c, n]) => `| ${c} | ${n} |`));
  lines.push("");

  lines.push("## Approvals and policy decisions", "");
  const a = r.approvals;
  lines.push(`- Approvals requested: ${a.requested}; approved: ${a.approved}; denied: ${a.denied}; expired: ${a.expired}`);
  lines.push(`- Policy decisions: ${r.policy.allowed} allowed, ${r.policy.denied} denied`, "");
  if (a.decisions.length > 0) {
    lines.push("| Seq | Time | Decision | Tool | By | Reason |", "| ---: | --- | --- | --- | --- | --- |");
    for (const d of a.decisions)
      lines.push(`| ${d.seq} | ${d.at} | ${d.kind.slice(9)} | ${cell(d.tool)} | ${cell(d.by)} | ${cell(d.reason)} |`);
    lines.push("");
  }

  lines.push("## Blocked attempts", "");
  if (r.blocked.length === 0) lines.push("None.");
  else {
    lines.push("| Seq | Time | Kind | Actor | Run | What |", "| ---: | --- | --- | --- | --- | --- |");
    for (const b of r.blocked) lines.push(`| ${b.seq} | ${b.at} | ${b.kind} | ${cell(b.actor)} | ${cell(b.runId)} | ${cell(b.what)} |`);
  }
  lines.push("");

  lines.push("## Models and their locations", "");
  if (r.models.length === 0) lines.push("No model calls recorded.");
  else {
    lines.push("| Model | Location | Calls | Input tokens | Output tokens | Cost |", "| --- | --- | ---: | ---: | ---: | ---: |");
    for (const m of r.models) {
      lines.push(`| ${cell(m.model)} | ${cell(m.location)} | ${m.calls} | ${m.inputTokens} | ${m.outputTokens} | ${usd(m.costUsd)} |`);
    }
  }
  lines.push("");
  return lines.join("\n");
}
