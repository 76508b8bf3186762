/**
 * decide(): the whole run loop as a pure function. Given an agent, the tools
 * and the state folded from the run's log, it returns the one next thing to
 * do. No I/O, no clock of its own (`now` is an input), no randomness — so any
 * process replaying the same log decides the same thing.
 */
import type { WaitingFor } from "../core/api.js";
import { ev, type NewEvent } from "../core/events.js";
import type { AgentDefinition, AgentToolRef, ToolDefinition } from "../definitions/types.js";
import type { MemoryScopeResolution } from "../memory/index.js";
import type { Approver } from "../security/approvals/index.js";
import { scanForInjection } from "../security/guardrails/index.js";
import type { PolicyDecision, PolicyRequest } from "../security/types.js";
import { ARTIFACTS_READ } from "../tools/index.js";
import { type PolicyDecided, type RunState, type ToolCallState, WAIT_FOR_EVENT, WAIT_UNTIL } from "./state.js";

export interface DecideContext {
  /** The agent working on the run now (`state.agent`). */
  agent: AgentDefinition;
  /** Every registered tool (the agent may use only those in `agent.tools`). */
  tools: { get(name: string): ToolDefinition | undefined };
  now: number;
  /** Policy on every action and approvals bound to it; absent = every action allowed, static approvals only. */
  governance?: Governance;
}

/** What decide needs of security (runtime/governance.ts builds it per run). Pure functions of their inputs. */
export interface Governance {
  /** The scopes a memory tool call touches (memory/policy.ts), or why it cannot name them. */
  memoryScopes(agent: AgentDefinition, s: RunState, tool: ToolDefinition, args: unknown): MemoryScopeResolution;
  /** The policy requests a call needs, in order (e.g. connector.use, then tool.call); empty = none. */
  requestsFor(agent: AgentDefinition, s: RunState, call: ToolCallState, tool: ToolDefinition, args: unknown): PolicyRequest[];
  authorize(request: PolicyRequest): PolicyDecision;
  /** SHA-256 of the policies in force, recorded with each decision. */
  policiesHash: string;
  /** The hash an approval of this call is bound to. */
  actionHash(s: RunState, call: ToolCallState, args: unknown): string;
  approvalTtlMs: number;
}

export type Action =
  /** Pure transitions: append these events and decide again. */
  | { kind: "commit"; events: NewEvent[] }
  /** Commit `intent` (model.called), then call the model. */
  | { kind: "call_model"; intent: NewEvent }
  /** Commit `intent` (tool.called) if any — then run the tool with the call's idempotency key. */
  | { kind: "call_tool"; call: ToolCallState; tool: ToolDefinition; args: unknown; intent: NewEvent | null }
  /** Create an approval request (bound to the action's hash, expiring) and wait for it. */
  | {
      kind: "request_approval";
      call: ToolCallState;
      args: unknown;
      approver: Approver;
      policies: string[];
      actionHash: string | null;
      expiresAt: number | null;
    }
  /** Nobody decided in time: mark the approval expired in the store (a denial), then decide again. */
  | { kind: "expire_approval"; approvalId: string }
  /** Start a child run for each of these delegation calls (their intents are committed). */
  | { kind: "start_children"; calls: { call: ToolCallState; agent: string; task: string }[] }
  /** Commit `events`, then cancel these child runs (a sibling failed under fan_out: fail_fast). */
  | { kind: "cancel_children"; runIds: string[]; events: NewEvent[]; reason: string }
  /** Waiting: nothing to do until the store wakes the run. */
  | { kind: "wait"; for: WaitingFor }
  | { kind: "finished" };

const fail = (code: string, message: string): Action => ({
  kind: "commit",
  events: [ev("run.failed", { error: { code, message } })],
});

export function decide(ctx: DecideContext, s: RunState): Action {
  if (s.terminal) return { kind: "finished" };
  if (s.waiting?.kind === "children" && !stillWaiting(ctx, s)) {
    // Children finished while the run was not parked (e.g. it was being recovered): resume it ourselves.
    return { kind: "commit", events: [ev("run.resumed", { reason: "children finished" })] };
  }
  if (s.waiting?.kind === "approval" && !stillWaiting(ctx, s)) {
    // Decided while the run was held by a worker (no store wake-up came), or expired: resume here.
    const id = s.waiting.approval_id;
    const decided = s.calls.some((c) => c.approval?.id === id && c.approval.decision !== undefined);
    return { kind: "commit", events: [ev("run.resumed", { reason: decided ? "approval decided" : "approval expired" })] };
  }
  if (s.waiting?.kind === "timer" && s.waiting.retry !== undefined && !stillWaiting(ctx, s)) {
    // Time to try the call again (same key): the pending call below is retried once the run is resumed.
    return { kind: "commit", events: [ev("run.resumed", { reason: `retrying ${s.waiting.retry}` })] };
  }
  if (s.waiting && !stillWaiting(ctx, s)) {
    // A due timer or buffered event resolves the wait: the pending call below completes it.
  } else if (s.waiting) {
    return { kind: "wait", for: s.waiting };
  }
  if (s.modelFailure) return fail(s.modelFailure.code, s.modelFailure.message);

  const limits = ctx.agent.limits;
  const toStart: { call: ToolCallState; agent: string; task: string }[] = [];
  const running: ToolCallState[] = [];
  for (const call of s.calls) {
    if (call.result) continue;
    if (s.callsAgent !== s.agent) {
      // A handoff earlier in this response passed the run on: the next agent's model did not choose the rest,
      // and they must never run with its tools.
      return refuse(call, `not run: ${s.callsAgent} handed the conversation to ${s.agent} before this call`);
    }
    const tool = ctx.tools.get(call.name);
    if (tool?.collaboration?.kind === "delegate" && allowedRef(ctx.agent, call.name) && call.intentCommitted) {
      // Fan-out: every delegation of this response starts before the run waits for any of them.
      if (call.childResult) return { kind: "commit", events: [childCompleted(call, tool.collaboration.agent)] };
      if (call.child) running.push(call);
      else toStart.push({ call, agent: tool.collaboration.agent, task: (call.arguments as { task: string }).task });
      continue;
    }
    // Every limit holds between the calls of one response too: no side effect starts past a limit.
    return limitExceeded(ctx, s) ?? decideCall(ctx, s, call);
  }
  if (toStart.length > 0) return { kind: "start_children", calls: toStart };
  if (running.length > 0) {
    const failed =
      ctx.agent.fanOut === "fail_fast" ? s.calls.find((c) => c.childResult && c.childResult.status !== "completed") : undefined;
    if (failed) {
      const reason = `cancelled because ${failed.child?.agent} (${failed.child?.runId}) ${failed.childResult?.status} and this agent uses fan_out: fail_fast`;
      return {
        kind: "cancel_children",
        runIds: running.map((c) => c.child?.runId as string),
        reason,
        events: running.map((c) =>
          ev("tool.completed", { call_id: c.id, tool: c.name, output: `error: ${c.child?.agent} was ${reason}`, is_error: true }),
        ),
      };
    }
    const runIds = running.map((c) => c.child?.runId as string);
    if (s.waiting) return { kind: "wait", for: s.waiting };
    return { kind: "commit", events: [ev("run.waiting", { for: { kind: "children", run_ids: runIds, mode: ctx.agent.fanOut } })] };
  }

  if (s.modelErrorStreak > limits.maxModelErrors) {
    return fail(
      "model_output_invalid",
      `the model produced malformed output ${s.modelErrorStreak} times in a row (limit max_model_errors: ${limits.maxModelErrors}); last problem: ${s.lastModelProblem}`,
    );
  }
  if (s.calls.length === 0 && s.finalAnswer !== null) {
    return { kind: "commit", events: [ev("run.completed", { output: s.finalAnswer })] };
  }
  const exceeded = limitExceeded(ctx, s);
  if (exceeded) return exceeded;
  return { kind: "call_model", intent: ev("model.called", { step: s.modelCalls + 1, model: ctx.agent.model }) };
}

function limitExceeded(ctx: DecideContext, s: RunState): Action | null {
  const l = ctx.agent.limits;
  if (s.steps >= l.maxSteps) return fail("max_steps", `stopped after ${s.steps} steps (limit max_steps: ${l.maxSteps})`);
  const tokens = s.inputTokens + s.outputTokens;
  if (tokens >= l.maxTokens) return fail("max_tokens", `used ${tokens} tokens (limit max_tokens: ${l.maxTokens})`);
  if (s.costUsd >= l.maxUsd) return fail("max_usd", `spent $${s.costUsd.toFixed(4)} (limit max_usd: $${l.maxUsd})`);
  const active = s.activeMs + (s.activeSince === null ? 0 : ctx.now - s.activeSince);
  if (active >= l.maxWallTimeMs) {
    return fail("max_wall_time", `ran for ${Math.round(active / 1000)} s (limit max_wall_time: ${Math.round(l.maxWallTimeMs / 1000)} s)`);
  }
  return null;
}

function stillWaiting(ctx: DecideContext, s: RunState): boolean {
  const w = s.waiting;
  if (!w) return false;
  if (w.kind === "timer") return ctx.now < Date.parse(w.until);
  if (w.kind === "event") return !s.inbox.some((m) => m.name === w.event);
  if (w.kind === "children") {
    const waiting = s.calls.filter((c) => c.child && w.run_ids.includes(c.child.runId));
    if (w.mode === "fail_fast" && waiting.some((c) => c.childResult && c.childResult.status !== "completed")) return false;
    return waiting.some((c) => !c.childResult && !c.result);
  }
  if (w.kind === "approval") {
    // Past its expiry the run must wake to expire it (a denial); else it waits again with a wake_at in the past, forever.
    if (w.expires_at !== undefined && ctx.now >= Date.parse(w.expires_at)) return false;
    return !s.calls.some((c) => c.approval?.id === w.approval_id && c.approval.decision !== undefined);
  }
  return true;
}

function reject(call: ToolCallState, message: string): Action {
  return {
    kind: "commit",
    events: [ev("tool.completed", { call_id: call.id, tool: call.name, output: message, is_error: true, model_error: true })],
  };
}

/** The agent's own reference to a tool: by name, or through `<connection>.*`. */
function allowedRef(agent: AgentDefinition, name: string): AgentToolRef | undefined {
  if (name === ARTIFACTS_READ) return { name };
  return agent.tools.find((t) => t.name === name || (t.name.endsWith(".*") && name.startsWith(t.name.slice(0, -1))));
}

/** What the model sees of a child run's end. */
function childCompleted(call: ToolCallState, agent: string): NewEvent {
  const r = call.childResult as NonNullable<ToolCallState["childResult"]>;
  if (r.status === "completed") {
    // A child's answer may relay instructions it read in untrusted data: scanned like any tool output, so the
    // parent is tainted too (and its side effects then wait for a person).
    const output = r.output ?? "";
    const tainted = [...new Set([...(r.tainted ?? []), ...scanForInjection(output).findings.map((f) => f.pattern)])];
    return ev("tool.completed", { call_id: call.id, tool: call.name, output, is_error: false, ...(tainted.length > 0 ? { tainted } : {}) });
  }
  const why = r.error ? `${r.error.code}: ${r.error.message}` : r.status;
  return ev("tool.completed", {
    call_id: call.id,
    tool: call.name,
    output: `error: ${agent} did not finish (run ${call.child?.runId} ${r.status}): ${why}`,
    is_error: true,
  });
}

function refuse(call: ToolCallState, message: string): Action {
  return {
    kind: "commit",
    events: [ev("tool.completed", { call_id: call.id, tool: call.name, output: `error: ${message}`, is_error: true })],
  };
}

/** Delegation and handoff bounds: depth, count, cycles. Pure, from the log alone. */
function collaborationProblem(ctx: DecideContext, s: RunState, kind: "delegate" | "handoff", target: string): string | null {
  const l = ctx.agent.limits;
  if (kind === "handoff") {
    if (s.handoffs >= l.maxHandoffs)
      return `handoff to ${target} refused: this run already handed off ${s.handoffs} times (limit max_handoffs: ${l.maxHandoffs}). Answer with what you have.`;
    return null;
  }
  const depth = (s.parent?.depth ?? 0) + 1;
  if (depth > l.maxDepth) {
    return `delegation to ${target} refused: it would be ${depth} levels below the original request (limit max_depth: ${l.maxDepth}). Do the work yourself or answer with what you have.`;
  }
  const started =
    s.delegations +
    s.calls.filter((c) => c.intentCommitted && !c.child && ctx.tools.get(c.name)?.collaboration?.kind === "delegate").length;
  if (started >= l.maxDelegations) {
    return `delegation to ${target} refused: this run already started ${started} delegations (limit max_delegations: ${l.maxDelegations}).`;
  }
  const chain = [...(s.parent?.chain ?? []), s.agent];
  if (chain.includes(target)) {
    return `delegation to ${target} refused: it would form a cycle (${[...chain, target].join(" → ")}). Answer with what you have.`;
  }
  return null;
}

function decideCall(ctx: DecideContext, s: RunState, call: ToolCallState): Action {
  const allowed = allowedRef(ctx.agent, call.name);
  const tool = ctx.tools.get(call.name);
  if (!allowed || !tool) {
    const names = ctx.agent.tools.map((t) => t.name).join(", ") || "(none)";
    return reject(call, `error: unknown tool "${call.name}". You can call only: ${names}.`);
  }

  let args: unknown = call.arguments;
  if (!call.intentCommitted) {
    const parsed = parseArguments(call.argumentsText);
    if (!parsed.ok)
      return reject(call, `error: the arguments for ${call.name} are not valid JSON (${parsed.error}). Call it again with a JSON object.`);
    const checked = tool.input.safeParse(parsed.value);
    if (!checked.success) {
      const problems = checked.error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(arguments)"}: ${i.message}`).join("; ");
      return reject(call, `error: invalid arguments for ${call.name}: ${problems}. Fix them and call it again.`);
    }
    args = checked.data;
  }

  // Bounds first: nobody should be asked to approve a delegation that would be refused anyway.
  if (tool.collaboration && !call.intentCommitted) {
    const problem = collaborationProblem(ctx, s, tool.collaboration.kind, tool.collaboration.agent);
    if (problem) return refuse(call, problem);
  }

  // Policy on every action: decided (and recorded) before anything else happens to the call.
  const g = ctx.governance;
  /** A memory call works in the scopes policy allowed: committed with its arguments. */
  let memoryScopes: string[] | null = null;
  if (tool.memory && !call.intentCommitted) {
    const resolved = g ? g.memoryScopes(ctx.agent, s, tool, args) : { error: `${call.name}: memory needs a policy engine` };
    if ("error" in resolved) return refuse(call, resolved.error);
    if (g && call.decisions.length > 0) {
      const allowed = call.decisions.filter((d) => d.effect === "allow" && d.request.resource.type === "MemoryScope");
      // A call that names one scope is refused when it is denied; one over every readable scope uses those allowed.
      if (resolved.exact ? allowed.length === call.decisions.length : allowed.length > 0) {
        memoryScopes = allowed.map((d) => d.request.resource.id);
      }
    }
  }
  if (tool.context && !call.intentCommitted) {
    const resolved = tool.context.resolve(args);
    if ("error" in resolved) return refuse(call, resolved.error);
  }
  if (g && !call.intentCommitted) {
    if (call.decisions.length === 0) {
      const requests = g.requestsFor(ctx.agent, s, call, tool, args);
      if (requests.length > 0) {
        return { kind: "commit", events: requests.map((r) => decidedEvent(call.id, r, g.authorize(r), g.policiesHash)) };
      }
    }
    const denied = memoryScopes === null ? call.decisions.find((d) => d.effect === "deny") : undefined;
    if (denied) {
      return {
        kind: "commit",
        events: [ev("tool.completed", { call_id: call.id, tool: call.name, output: policyRefusal(denied), is_error: true })],
      };
    }
  }

  const byPolicy = call.intentCommitted ? undefined : call.decisions.find((d) => d.approval)?.approval;
  const approver: Approver | null = byPolicy
    ? { role: byPolicy.role, group: byPolicy.group }
    : (allowed.approval ?? tool.approval ?? "none") === "required"
      ? { role: "operator", group: null }
      : null;
  if (approver && !call.intentCommitted) {
    if (!call.approval) {
      return {
        kind: "request_approval",
        call,
        args,
        approver,
        policies: byPolicy?.policies ?? [],
        actionHash: g ? g.actionHash(s, call, args) : null,
        expiresAt: g ? ctx.now + g.approvalTtlMs : null,
      };
    }
    const a = call.approval;
    if (!a.decision) {
      if (a.expiresAt !== undefined && ctx.now >= a.expiresAt) return { kind: "expire_approval", approvalId: a.id };
      return { kind: "wait", for: { kind: "approval", approval_id: a.id, ...(a.expiresAt ? { expires_at: iso(a.expiresAt) } : {}) } };
    }
    let problem: { code: string; why: string } | null = null;
    if (a.decision === "deny") {
      problem = { code: "approval_denied", why: `${call.name} was denied${a.by ? ` by ${a.by}` : ""}${a.reason ? `: ${a.reason}` : ""}` };
    } else if (a.decision === "expire") {
      problem = { code: "approval_expired", why: `${call.name} was not approved in time: the approval ${a.id} expired` };
    } else if (g && a.actionHash !== undefined) {
      // Fail closed: the action about to run must be exactly the one requested, and the one the approver saw.
      const now = g.actionHash(s, call, args);
      if (now !== a.actionHash || (a.decidedHash !== undefined && a.decidedHash !== a.actionHash)) {
        problem = {
          code: "approval_mismatch",
          why: `${call.name} was not run: the approved action does not match the one requested (approval ${a.id} was altered)`,
        };
      }
    }
    if (problem) {
      return {
        kind: "commit",
        events: [
          ev("tool.completed", { call_id: call.id, tool: call.name, output: `error: ${problem.why}`, is_error: true }),
          ev("run.failed", { error: { code: problem.code, message: problem.why } }),
        ],
      };
    }
  }

  if (call.name === WAIT_FOR_EVENT || call.name === WAIT_UNTIL) return decideWait(ctx, s, call, args);

  if (tool.collaboration && !call.intentCommitted) {
    const { kind, agent: target } = tool.collaboration;
    const intent = ev("tool.called", { call_id: call.id, tool: call.name, arguments: args, idempotency_key: call.key });
    if (kind === "delegate") return { kind: "commit", events: [intent] };
    const reason = (args as { reason: string }).reason;
    return {
      kind: "commit",
      events: [
        intent,
        ev("tool.completed", {
          call_id: call.id,
          tool: call.name,
          output: `The conversation is now with ${target} (reason: ${reason}).`,
          is_error: false,
        }),
        ev("run.handed_off", { call_id: call.id, from: s.agent, to: target, reason }),
      ],
    };
  }

  if (memoryScopes !== null) args = { ...(args as Record<string, unknown>), scopes: memoryScopes };
  const intent = call.intentCommitted
    ? null
    : ev("tool.called", { call_id: call.id, tool: call.name, arguments: args, idempotency_key: call.key });
  return { kind: "call_tool", call, tool, args, intent };
}

/** The waiting tools run entirely inside the log: intent, wait, resolution. */
function decideWait(ctx: DecideContext, s: RunState, call: ToolCallState, args: unknown): Action {
  if (!call.intentCommitted) {
    let resolved = args as Record<string, unknown>;
    if (call.name === WAIT_UNTIL) {
      const a = args as { seconds?: number; until?: string };
      const until = a.until ?? new Date(ctx.now + (a.seconds ?? 0) * 1000).toISOString();
      resolved = { ...a, until };
    }
    return {
      kind: "commit",
      events: [ev("tool.called", { call_id: call.id, tool: call.name, arguments: resolved, idempotency_key: call.key })],
    };
  }
  const a = call.arguments as { name?: string; until?: string };
  if (call.name === WAIT_UNTIL) {
    const until = a.until as string;
    if (ctx.now >= Date.parse(until)) {
      const done = ev("tool.completed", { call_id: call.id, tool: call.name, output: `waited until ${until}`, is_error: false });
      return { kind: "commit", events: s.waiting ? [ev("run.resumed", { reason: "timer" }), done] : [done] };
    }
    return s.waiting
      ? { kind: "wait", for: s.waiting }
      : { kind: "commit", events: [ev("run.waiting", { for: { kind: "timer", until } })] };
  }
  const name = a.name as string;
  const message = s.inbox.find((m) => m.name === name);
  if (message) {
    const events: NewEvent[] = [];
    if (s.waiting) events.push(ev("run.resumed", { reason: `event ${name}` }));
    events.push(
      ev("tool.completed", {
        call_id: call.id,
        tool: call.name,
        output: JSON.stringify({ event: name, payload: message.payload }),
        is_error: false,
      }),
    );
    return { kind: "commit", events };
  }
  return s.waiting
    ? { kind: "wait", for: s.waiting }
    : { kind: "commit", events: [ev("run.waiting", { for: { kind: "event", event: name } })] };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** A decision as recorded in the run's log (call_id absent for model.use). */
export function decidedEvent(callId: string | undefined, r: PolicyRequest, d: PolicyDecision, policiesHash: string): NewEvent {
  return ev("policy.decided", {
    ...(callId !== undefined ? { call_id: callId } : {}),
    request: { action: r.action, agent: r.agent, on_behalf_of: r.onBehalfOf, resource: r.resource, context: r.context },
    effect: d.effect,
    policies: d.policies,
    approval: d.approval,
    policies_sha256: policiesHash,
  });
}

/** What the model is told when policy refuses an action: enough to explain it to the user, nothing to work around. */
function policyRefusal(d: PolicyDecided): string {
  const what = `${d.request.action} on ${d.request.resource.type} "${d.request.resource.id}"`;
  const why = d.policies.length > 0 ? `forbidden by policy ${d.policies.join(", ")}` : "no policy permits it";
  return `refused: ${what} is not allowed for agent ${d.request.agent} (${why}). It was not executed. Tell the user it cannot be done this way, or do something else.`;
}

function parseArguments(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  if (text.trim() === "") return { ok: true, value: {} };
  try {
    const value = JSON.parse(text);
    if (value === null || typeof value !== "object" || Array.isArray(value)) return { ok: false, error: "expected a JSON object" };
    return { ok: true, value };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}
