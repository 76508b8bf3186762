/**
 * The workflow engine's pure core: a workflow run's log folded into state (`foldWorkflow`), and from that state and
 * the definition it started with, what is to be done next (`planWorkflow`): the steps ready to start or to settle,
 * what the run waits for, or that it is done or failed. No I/O and no clock of its own, so any process replaying a
 * log plans the same thing; what the plan needs evaluated (templates, conditions) the executor evaluates once and
 * records in the step's event.
 *
 * Step paths: a step's id, prefixed inside a loop by the iteration (`post_each[2].post`). Ids are unique in a
 * workflow, so a branch or a parallel branch adds nothing.
 */
import type { RunEvent } from "../core/events.js";
import type { Step, WorkflowDefinition } from "./definition.js";
import type { Scope } from "./expressions.js";

export interface StepRecord {
  path: string;
  kind: string;
  attempt: number;
  key: string;
  detail: Record<string, unknown>;
  status: "started" | "completed" | "failed" | "retrying";
  output?: unknown;
  error?: { code: string; message: string };
  retryAt?: number;
  startedSeq: number;
  completedSeq?: number;
}

export interface WorkflowState {
  workflow: string | null;
  definition: WorkflowDefinition | null;
  version: string | null;
  input: unknown;
  steps: Map<string, StepRecord>;
  /** child.finished by child run id. */
  children: Map<string, { status: string; output: string | null; error: { code: string; message: string } | null }>;
  /** approval.decided by approval id. */
  approvals: Map<string, { decision: "approve" | "deny" | "expire"; by: string | null; reason: string | null }>;
  /** When each requested approval expires undecided (epoch ms), from approval.requested. */
  approvalExpiry: Map<string, number>;
  events: { name: string; payload: unknown; seq: number }[];
  compensating: { failed: string; error: { code: string; message: string } } | null;
  compensated: Set<string>;
  terminal: "completed" | "failed" | "cancelled" | null;
  by: string | null;
  lastSeq: number;
}

export function foldWorkflow(events: RunEvent[]): WorkflowState {
  const s: WorkflowState = {
    workflow: null,
    definition: null,
    version: null,
    input: null,
    steps: new Map(),
    children: new Map(),
    approvals: new Map(),
    approvalExpiry: new Map(),
    events: [],
    compensating: null,
    compensated: new Set(),
    terminal: null,
    by: null,
    lastSeq: 0,
  };
  for (const e of events) applyWorkflowEvent(s, e);
  return s;
}

export function applyWorkflowEvent(s: WorkflowState, e: RunEvent): void {
  s.lastSeq = e.seq;
  switch (e.type) {
    case "run.started":
      s.by = e.data.by ?? null;
      break;
    case "workflow.started":
      s.workflow = e.data.workflow;
      s.definition = e.data.definition as WorkflowDefinition;
      s.version = e.data.version;
      s.input = e.data.input;
      break;
    case "step.started":
      s.steps.set(e.data.path, {
        path: e.data.path,
        kind: e.data.kind,
        attempt: e.data.attempt,
        key: e.data.idempotency_key,
        detail: e.data.detail,
        status: "started",
        startedSeq: e.seq,
      });
      break;
    case "step.completed": {
      const r = s.steps.get(e.data.path);
      if (r) Object.assign(r, { status: "completed", output: e.data.output, completedSeq: e.seq });
      break;
    }
    case "step.failed": {
      const r = s.steps.get(e.data.path);
      if (!r) break;
      r.error = e.data.error;
      if (e.data.retry_at) Object.assign(r, { status: "retrying", retryAt: Date.parse(e.data.retry_at) });
      else r.status = "failed";
      break;
    }
    case "child.finished":
      s.children.set(e.data.child_run_id, { status: e.data.status, output: e.data.output, error: e.data.error });
      break;
    case "approval.requested":
      if (e.data.expires_at) s.approvalExpiry.set(e.data.approval_id, Date.parse(e.data.expires_at));
      break;
    case "approval.decided":
      s.approvals.set(e.data.approval_id, { decision: e.data.decision, by: e.data.by, reason: e.data.reason });
      break;
    case "event.received":
      s.events.push({ name: e.data.name, payload: e.data.payload, seq: e.seq });
      break;
    case "workflow.compensating":
      s.compensating = { failed: e.data.failed, error: e.data.error };
      break;
    case "step.compensated":
      s.compensated.add(e.data.path);
      break;
    case "run.completed":
      s.terminal = "completed";
      break;
    case "run.failed":
      s.terminal = "failed";
      break;
    case "run.cancelled":
      s.terminal = "cancelled";
      break;
  }
}

/** What a waiting step waits on. */
export type Awaiting = { approval: string; expiresAt?: number } | { event: string } | { child: string } | { until: number };

/** One piece of work the plan asks for. */
export type Work =
  /** Not started yet (or its retry is due): evaluate what it is given, record step.started, act. */
  | { kind: "start"; path: string; step: Step; scope: Scope; attempt: number }
  /** Started, its outcome not recorded (a crash came between, or an approval let it go): act again with its key. */
  | { kind: "resume"; path: string; step: Step; record: StepRecord; scope: Scope }
  /** What it waited for came: record how the step ended. */
  | { kind: "settle"; path: string; step: Step; record: StepRecord; scope: Scope; outcome: Outcome }
  | { kind: "wait"; path: string; on: Awaiting }
  /** Its approval was not decided in time: record the expiry (a denial), then settle. */
  | { kind: "expire"; path: string; approval: string };

export type Outcome =
  | { kind: "child"; status: string; output: string | null; error: { code: string; message: string } | null }
  | { kind: "approval"; decision: "approve" | "deny" | "expire"; by: string | null; reason: string | null }
  | { kind: "event"; payload: unknown }
  | { kind: "time" };

export type Plan =
  | { kind: "work"; work: Work[] }
  | { kind: "done"; scope: Scope; last: unknown }
  | { kind: "failed"; path: string; error: { code: string; message: string } };

type Walk =
  | { status: "complete"; output: unknown }
  | { status: "pending"; work: Work[] }
  | { status: "failed"; path: string; error: { code: string; message: string } };

export function planWorkflow(definition: WorkflowDefinition, s: WorkflowState, now: number): Plan {
  const scope: Scope = { input: s.input, steps: {} };
  const walked = sequence(definition.steps, "", scope, s, now);
  if (walked.status === "complete") return { kind: "done", scope, last: walked.output };
  if (walked.status === "failed") return { kind: "failed", path: walked.path, error: walked.error };
  return { kind: "work", work: walked.work };
}

function sequence(steps: Step[], prefix: string, scope: Scope, s: WorkflowState, now: number): Walk {
  let output: unknown = null;
  for (const step of steps) {
    const walked = one(step, prefix + step.id, scope, s, now);
    if (walked.status !== "complete") return walked;
    output = walked.output;
    (scope.steps as Record<string, unknown>)[step.id] = { output };
  }
  return { status: "complete", output };
}

function one(step: Step, path: string, scope: Scope, s: WorkflowState, now: number): Walk {
  const r = s.steps.get(path);
  const pending = (...work: Work[]): Walk => ({ status: "pending", work });
  if (!r) return pending({ kind: "start", path, step, scope, attempt: 1 });
  if (r.status === "completed") return { status: "complete", output: r.output };
  if (r.status === "failed") return { status: "failed", path, error: r.error ?? { code: "step_failed", message: `${path} failed` } };
  if (r.status === "retrying") {
    return (r.retryAt ?? 0) <= now
      ? pending({ kind: "start", path, step, scope, attempt: r.attempt + 1 })
      : pending({ kind: "wait", path, on: { until: r.retryAt ?? now } });
  }
  // Started: composites walk their children; leaves wait, settle or resume.
  switch (step.kind) {
    case "branch": {
      const arm = r.detail.branch === "then" ? step.whenTrue : step.whenFalse;
      return sequence(arm, path.slice(0, path.length - step.id.length), scope, s, now);
    }
    case "loop": {
      const items = (r.detail.items as unknown[]) ?? [];
      const outputs: unknown[] = [];
      for (const [index, item] of items.entries()) {
        const inner: Scope = { ...scope, steps: { ...(scope.steps as object) }, [step.as]: item, index };
        const walked = sequence(step.do, `${path}[${index}].`, inner, s, now);
        if (walked.status !== "complete") return walked;
        outputs.push(walked.output);
      }
      return { status: "complete", output: outputs };
    }
    case "parallel": {
      const prefix = path.slice(0, path.length - step.id.length);
      const walks = step.branches.map((branch) => sequence(branch, prefix, scope, s, now));
      const failed = walks.find((w) => w.status === "failed");
      if (failed) return failed;
      const work = walks.flatMap((w) => (w.status === "pending" ? w.work : []));
      if (work.length > 0) return { status: "pending", work };
      return { status: "complete", output: walks.map((w) => (w.status === "complete" ? w.output : null)) };
    }
    case "approval": {
      const decided = s.approvals.get(r.detail.approval_id as string);
      if (!decided) return awaitApproval(s, path, r.detail.approval_id as string, now);
      return pending({ kind: "settle", path, step, record: r, scope, outcome: { kind: "approval", ...decided } });
    }
    case "tool":
    case "emit": {
      // A call a policy sent for approval waits for it; approved, it runs (resume); refused, the step fails (settle).
      const approvalId = r.detail.approval_id as string | undefined;
      const decided = approvalId ? s.approvals.get(approvalId) : undefined;
      if (approvalId && !decided) return awaitApproval(s, path, approvalId, now);
      if (decided && decided.decision !== "approve") {
        return pending({ kind: "settle", path, step, record: r, scope, outcome: { kind: "approval", ...decided } });
      }
      return pending({ kind: "resume", path, step, record: r, scope });
    }
    case "agent": {
      const child = s.children.get(r.detail.child_run_id as string);
      if (!child) return pending({ kind: "wait", path, on: { child: r.detail.child_run_id as string } });
      return pending({ kind: "settle", path, step, record: r, scope, outcome: { kind: "child", ...child } });
    }
    case "wait_event": {
      const got = s.events.find((e) => e.name === step.event && e.seq > r.startedSeq);
      if (!got) return pending({ kind: "wait", path, on: { event: step.event } });
      return pending({ kind: "settle", path, step, record: r, scope, outcome: { kind: "event", payload: got.payload } });
    }
    case "sleep": {
      const until = Date.parse(String(r.detail.until));
      if (until > now) return pending({ kind: "wait", path, on: { until } });
      return pending({ kind: "settle", path, step, record: r, scope, outcome: { kind: "time" } });
    }
  }
}

/** Completed steps with an undo, last completed first, not yet undone: what a failed workflow compensates. */
/** An undecided approval: waited for until it expires, then expired. */
function awaitApproval(s: WorkflowState, path: string, approval: string, now: number): Walk {
  const expiresAt = s.approvalExpiry.get(approval);
  if (expiresAt !== undefined && now >= expiresAt) return { status: "pending", work: [{ kind: "expire", path, approval }] };
  return { status: "pending", work: [{ kind: "wait", path, on: { approval, ...(expiresAt !== undefined ? { expiresAt } : {}) } }] };
}

export function toCompensate(definition: WorkflowDefinition, s: WorkflowState): { path: string; step: Step; record: StepRecord }[] {
  const byId = new Map<string, Step>();
  const index = (steps: Step[]) => {
    for (const step of steps) {
      byId.set(step.id, step);
      if (step.kind === "branch") {
        index(step.whenTrue);
        index(step.whenFalse);
      } else if (step.kind === "loop") index(step.do);
      else if (step.kind === "parallel") for (const b of step.branches) index(b);
    }
  };
  index(definition.steps);
  return [...s.steps.values()]
    .filter((r) => r.status === "completed" && !s.compensated.has(r.path))
    .map((r) => ({ path: r.path, record: r, step: byId.get(idOf(r.path)) as Step }))
    .filter((c) => c.step?.compensate !== undefined)
    .sort((a, b) => (b.record.completedSeq ?? 0) - (a.record.completedSeq ?? 0));
}

/** `post_each[2].post` → `post`. */
export const idOf = (path: string) => path.slice(path.lastIndexOf(".") + 1);
