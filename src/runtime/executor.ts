/**
 * The executor: performs what `decide` asks, commits the outcome, asks again.
 *
 * Commit discipline (what makes "side effects happen once" hold):
 *  - the intent of a tool call (`tool.called`, with its idempotency key) is
 *    committed before the tool runs;
 *  - a committed `tool.completed` is never executed again;
 *  - the outcome of one step is committed together with the intent of the
 *    next, so each step costs one commit.
 * A process that dies between a tool's start and the commit of its result
 * leaves an intent without a result: the next owner runs the tool again with
 * the same key, and the tool (or the system behind it) de-duplicates.
 */
import { createHash } from "node:crypto";
import { ev, type NewEvent, type RunEvent } from "../core/events.js";
import { newId } from "../core/ids.js";
import { DEFAULT_LIMITS } from "../definitions/index.js";
import type { AgentDefinition, Project, ToolDefinition } from "../definitions/types.js";
import { type ChatMessage, costUsd, type ModelClient, ModelError, type ToolSpec } from "../models/types.js";
import { type ChildNotice, type ClaimedRun, CommitConflict, type RunPatch, type RunRecord, type Store } from "../store/types.js";
import { artifactPreview, ToolOutcomeUnknown, ToolUnavailable } from "../tools/index.js";
import { type Action, decide } from "./decide.js";
import { apply, type RunState, replay, type ToolCallState } from "./state.js";

const DEFAULT_TOOL_TIMEOUT_MS = 30_000;

/** What a run needs from the Outpost around it to work with other runs. */
export interface Collaboration {
  /** Creates (idempotently, keyed by the call) a child run for a delegation; returns its id. */
  startChild(request: { parent: RunState; parentRun: RunRecord; call: ToolCallState; agent: string; task: string }): Promise<string>;
  /** Cancels runs (and their own children), best effort. */
  cancelRuns(runIds: string[], reason: string): Promise<void>;
  /** Puts a finished child's result in its parent's log (waking the parent when due). */
  notifyParent(notice: ChildNotice, workspace: string): Promise<void>;
  /** The agent now holding a session's conversation, after a handoff. */
  setSessionAgent(workspace: string, sessionId: string, agent: string): Promise<void>;
}

export interface ExecutorDeps {
  store: Store;
  /** How calls whose outcome is unknown are retried (default DEFAULT_OUTCOME_RETRY). */
  outcomeRetry?: OutcomeRetry;
  project: Project;
  tools: { get(name: string): ToolDefinition | undefined };
  collaboration: Collaboration;
  modelFor(agent: AgentDefinition): ModelClient;
  toolSpecsFor(agent: AgentDefinition): ToolSpec[];
  dataDir: string;
  /** Committed events (and transient `model.delta` ones, seq -1), for live streams. */
  publish(runId: string, seq: number, type: string, data: unknown, at: number): void;
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

/** How the outside stops a run: one signal per run, aborted on shutdown or cancel. */
export class RunControl {
  private readonly controller = new AbortController();
  /** Why the run is being stopped, once it is. */
  why: "shutdown" | "cancel" | null = null;
  cancelReason: string | null = null;

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The worker is stopping: commit nothing more, hand the run back. */
  shutdown(): void {
    if (this.why) return;
    this.why = "shutdown";
    this.controller.abort(new Error("Outpost is shutting down"));
  }

  /** End the run as cancelled at the next step. */
  cancel(reason: string): void {
    if (this.why) return;
    this.why = "cancel";
    this.cancelReason = reason;
    this.controller.abort(new Error(`cancelled: ${reason}`));
  }
}

class Stop extends Error {}

/** The call could not be settled now (its system is away): the run waits, then retries it with the same key. */
class RetryLater extends Error {
  constructor(
    message: string,
    readonly tool: string,
    readonly key: string,
  ) {
    super(message);
  }
}

/** How calls whose outcome is unknown are retried (same key): a few times at once, then in waits of growing length. */
export interface OutcomeRetry {
  /** Pauses between the attempts made at once. */
  delaysMs: number[];
  /** The first wait; each next one doubles, up to 10 minutes. */
  firstWaitMs: number;
  /** Waits in a row before the run fails with tool_outcome_unknown. */
  maxWaits: number;
}

export const DEFAULT_OUTCOME_RETRY: OutcomeRetry = { delaysMs: [1_000, 3_000, 9_000], firstWaitMs: 15_000, maxWaits: 8 };

const delay = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });

export async function executeRun(deps: ExecutorDeps, claimed: ClaimedRun, control: RunControl): Promise<void> {
  const { store } = deps;
  const run = claimed.run;
  let state = replay(run.id, await store.getEvents(run.id));
  let committedSeq = state.lastSeq;
  /** Staged, not yet committed. `facts` are the outcomes of I/O among them (model answers, tool results):
   * they cannot be re-derived, while everything else staged is a pure decision that can. */
  let pending: NewEvent[] = [];
  let facts: NewEvent[] = [];

  // A cancel recorded while another worker held the run is honoured before anything runs again.
  if (run.cancelRequested) control.cancel(run.cancelRequested);
  // The agent working on it now: a handoff may have passed the run on.
  let agent = deps.project.agents.get(state.agent || run.agent);
  const publishAll = (list: NewEvent[], firstSeq: number, at: number) => {
    for (let i = 0; i < list.length; i++) deps.publish(run.id, firstSeq + i, list[i].type, list[i].data, at);
  };

  /** Apply events to the in-memory state now; they reach the store at the next commit. */
  const stage = (list: NewEvent[], fact = false) => {
    const at = Date.now();
    for (const e of list) apply(state, { ...e, seq: state.lastSeq + 1, at } as RunEvent);
    pending.push(...list);
    if (fact) facts.push(...list);
  };

  /**
   * Commits what is staged. Returns false when the log moved on under us (an external event was
   * delivered while we held the run): the state is then rebuilt from the log plus our staged facts,
   * and the caller must decide again instead of acting on a stale decision.
   */
  const commit = async (approval?: { id: string; callId: string; tool: string; arguments: unknown }, force = false): Promise<boolean> => {
    if (pending.length === 0 && !approval && !force) return true;
    const batch = pending;
    const batchFacts = facts;
    pending = [];
    facts = [];
    const release = state.terminal !== null || state.waiting !== null;
    try {
      const result = await store.commit({
        runId: run.id,
        leaseToken: claimed.leaseToken,
        expectedSeq: committedSeq,
        events: batch,
        patch: patchOf(state, release),
        approval,
      });
      publishAll(batch, committedSeq + 1, result.at);
      committedSeq = result.lastSeq;
      if (result.cancelRequested) control.cancel(result.cancelRequested);
      // The session follows a handoff at once, so the next message goes to the agent holding the conversation.
      if (batch.some((e) => e.type === "run.handed_off")) await moveSession();
      return true;
    } catch (err) {
      if (!(err instanceof CommitConflict) || err.reason !== "seq_conflict") throw err;
      const log = await store.getEvents(run.id);
      state = replay(run.id, log);
      committedSeq = state.lastSeq;
      stage(batchFacts, true);
      return false;
    }
  };

  /** A cancel that arrived with the commit that made the run wait: the run is unleased now, so cancel it in the store. */
  const cancelIfAsked = async () => {
    if (control.why === "cancel" && !state.terminal) {
      const result = await store.applyExternal(run.workspace, {
        kind: "cancel",
        runId: run.id,
        reason: control.cancelReason ?? "cancelled",
      });
      for (const e of result.events) {
        apply(state, e); // the run ended in the store: afterEnd must see it
        deps.publish(run.id, e.seq, e.type, e.data, e.at);
      }
    }
  };

  const moveSession = () =>
    deps.collaboration.setSessionAgent(run.workspace, run.sessionId, state.agent).catch((err) => {
      deps.log.warn({ run_id: run.id, err: (err as Error)?.message }, "could not move the session to the agent handed to");
    });

  /** Ends the run as failed with the reason (and hands the lease back). */
  const fail = async (code: string, message: string) => {
    stage([ev("run.failed", { error: { code, message: storable(message) } })]);
    await commit(undefined, true);
  };

  /** After the run ended: tell its parent, stop the children it no longer needs, and move its session on. */
  const afterEnd = async () => {
    const t = state.terminal;
    if (!t) return;
    if (state.openChildren.size > 0) {
      await deps.collaboration.cancelRuns([...state.openChildren], `parent run ${run.id} ${t.status}`).catch(() => undefined);
    }
    if (state.parent) {
      await deps.collaboration
        .notifyParent(
          {
            parentRunId: state.parent.run_id,
            callId: state.parent.call_id,
            ...(callKeyOf(run) ? { callKey: callKeyOf(run) } : {}),
            childRunId: run.id,
            agent: run.agent,
            status: t.status,
            output: t.status === "completed" ? t.output : null,
            error: t.status === "completed" ? null : t.error,
          },
          run.workspace,
        )
        .catch((err) => deps.log.warn({ run_id: run.id, err: (err as Error)?.message }, "could not notify the parent run yet; will retry"));
    }
  };

  if (!agent) {
    await fail("agent_not_found", `agent "${state.agent || run.agent}" is no longer defined in the project`);
    await afterEnd();
    return;
  }

  // Taken over after the worker that ran it stopped (its lease lapsed, or this process restarted).
  if (run.status === "running" && state.lastSeq > 1 && !state.terminal) stage([ev("run.resumed", { reason: "recovered" })]);
  // A crash may have come between a handoff's commit and the session following it.
  if (state.handoffs > 0 && !state.terminal) await moveSession();

  const history = run.sessionSeq > 1 ? await sessionHistory(store, run.sessionId, run.sessionSeq) : [];
  let model!: ModelClient;
  let toolSpecs!: ToolSpec[];
  /** Model and tools of the agent now working on the run; false when they cannot be set up (the run has failed). */
  const setUp = async (): Promise<boolean> => {
    let setup = "model_unavailable";
    try {
      model = deps.modelFor(agent as AgentDefinition); // fails e.g. when no candidate of the model alias has its credentials set
      setup = "tool_unavailable";
      toolSpecs = deps.toolSpecsFor(agent as AgentDefinition);
      return true;
    } catch (err) {
      await fail(setup, (err as Error)?.message ?? String(err));
      await afterEnd();
      return false;
    }
  };
  if (!(await setUp())) return;
  const ctx = { agent, tools: deps.tools, now: 0 };

  try {
    for (;;) {
      if (control.why === "shutdown") throw new Stop();
      if (state.agent && state.agent !== agent.name) {
        // Handed off: the next agent continues with its own instructions, model and tools.
        const next = deps.project.agents.get(state.agent);
        if (!next) {
          await fail("agent_not_found", `agent "${state.agent}" (handed off to) is no longer defined in the project`);
          await afterEnd();
          return;
        }
        agent = next;
        ctx.agent = next;
        if (!(await setUp())) return;
      }
      if (control.why === "cancel" && !state.terminal) {
        stage([ev("run.cancelled", { reason: control.cancelReason ?? "cancelled" })]);
        if (!(await commit(undefined, true))) continue;
        await afterEnd();
        return;
      }
      ctx.now = Date.now();
      const action: Action = decide(ctx, state);
      switch (action.kind) {
        case "commit":
          stage(action.events);
          continue;
        case "finished":
        case "wait":
          if (!(await commit(undefined, true))) continue; // also hands the lease back
          await cancelIfAsked();
          await afterEnd();
          return;
        case "start_children": {
          if (!(await commit())) continue; // the intents first: a child never exists without its parent's record of it
          if (control.why) continue; // a cancel learned from the commit: start no children
          for (const c of action.calls) {
            const childId = await deps.collaboration.startChild({
              parent: state,
              parentRun: run,
              call: c.call,
              agent: c.agent,
              task: c.task,
            });
            stage([ev("delegation.started", { call_id: c.call.id, child_run_id: childId, agent: c.agent })], true);
          }
          continue;
        }
        case "cancel_children":
          stage(action.events);
          if (!(await commit())) continue;
          await deps.collaboration.cancelRuns(action.runIds, action.reason).catch(() => undefined);
          continue;
        case "request_approval": {
          const approvalId = newId("apr");
          stage([
            ev("approval.requested", { approval_id: approvalId, call_id: action.call.id, tool: action.call.name, arguments: action.args }),
            ev("run.waiting", { for: { kind: "approval", approval_id: approvalId } }),
          ]);
          if (!(await commit({ id: approvalId, callId: action.call.id, tool: action.call.name, arguments: action.args }))) continue;
          await cancelIfAsked();
          await afterEnd();
          return;
        }
        case "call_model": {
          stage([action.intent]);
          if (!(await commit())) continue;
          if (control.why) continue; // a cancel learned from the commit: never start the call
          const step = state.modelCalls + 1;
          const response = await callModel(deps, model, agent, history, state, toolSpecs, control, step);
          if (response === null) continue; // cancelled: loop commits run.cancelled
          stage([response], true);
          continue;
        }
        case "call_tool": {
          if (action.intent) stage([action.intent]);
          if (!(await commit())) continue;
          if (control.why) continue; // a cancel learned from the commit: never start the call
          const result = await callTool(deps, action, run, state, control);
          if (result === null) continue;
          stage([result], true);
          continue;
        }
      }
    }
  } catch (err) {
    if (err instanceof Stop) {
      // Shutdown: what is staged but uncommitted is redone by the next owner.
      await store.releaseLease(run.id, claimed.leaseToken).catch(() => undefined);
      return;
    }
    if (err instanceof RetryLater) {
      const policy = deps.outcomeRetry ?? DEFAULT_OUTCOME_RETRY;
      if (state.retryWaits >= policy.maxWaits) {
        await fail(
          "tool_outcome_unknown",
          `${err.tool} could not be settled: ${err.message}. Outpost retried it (idempotency key ${err.key}) ${state.retryWaits + 1} times; ` +
            "the system may or may not have applied it — check there before doing it again",
        );
        await afterEnd();
        return;
      }
      // Wait (holding nothing) and retry the call with the same key; the time waiting is visible and is not the run's.
      const waitMs = Math.min(policy.firstWaitMs * 2 ** state.retryWaits, 10 * 60_000);
      deps.log.warn(
        { run_id: run.id, tool: err.tool, err: err.message, retry_in_ms: waitMs },
        "a call's system is away; retrying later with the same key",
      );
      stage([ev("run.waiting", { for: { kind: "timer", until: new Date(Date.now() + waitMs).toISOString(), retry: err.tool } })]);
      await commit(undefined, true).catch(() => undefined); // a lost commit leaves the lease to lapse: retried all the same
      return;
    }
    if (err instanceof CommitConflict && err.reason === "lease_lost") {
      deps.log.warn({ run_id: run.id }, "lease lost: another worker took the run over; stopping here");
      return;
    }
    if (!(err instanceof CommitConflict) && !isTransient(err)) {
      // Not a lost connection (e.g. the store refused this run's progress for good): retrying after the
      // lease lapses would fail the same way, forever. End the run with the reason instead.
      deps.log.error({ run_id: run.id, err: (err as Error)?.message }, "run failed: it could not continue");
      // Start over from what is committed: whatever was staged is what the store refused.
      state = replay(run.id, await store.getEvents(run.id));
      committedSeq = state.lastSeq;
      pending = [];
      facts = [];
      await fail("internal", `the run could not continue: ${(err as Error)?.message ?? String(err)}`);
      await afterEnd();
      return;
    }
    throw err;
  }
}

/** The delegation call that started this run, by its idempotency key (children are created with `delegate:<key>`). */
export function callKeyOf(run: { idempotencyKey: string | null; parentRunId: string | null }): string | undefined {
  return run.parentRunId && run.idempotencyKey?.startsWith("delegate:") ? run.idempotencyKey.slice("delegate:".length) : undefined;
}

/** Text from models and tools may carry U+0000, which PostgreSQL cannot store in text: keep it visible, not fatal. */
const storable = (text: string) => (text.includes("\u0000") ? text.replaceAll("\u0000", "\uFFFD") : text);

function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Errors a retry may cure: the database connection, not the data. */
function isTransient(err: unknown): boolean {
  const code = String((err as { code?: unknown })?.code ?? "");
  const message = String((err as Error)?.message ?? "");
  return (
    /^(08|57P|53|40)/.test(code) || // PostgreSQL: connection, shutdown, resources, deadlock/serialization
    /^E(CONN|TIMEDOUT|PIPE|HOSTUNREACH|NETUNREACH)/.test(code) ||
    code === "SQLITE_BUSY" ||
    /Connection terminated|connection timeout/i.test(message)
  );
}

function patchOf(s: RunState, release: boolean): RunPatch {
  const t = s.terminal;
  const base = {
    steps: s.steps,
    inputTokens: s.inputTokens,
    outputTokens: s.outputTokens,
    costUsd: s.costUsd,
    release,
  };
  if (t) {
    return t.status === "completed" ? { ...base, status: "completed", output: t.output } : { ...base, status: t.status, error: t.error };
  }
  if (s.waiting) {
    const w = s.waiting;
    return { ...base, status: "waiting", waitingFor: w, wakeAt: w.kind === "timer" ? Date.parse(w.until) : null };
  }
  return { ...base, status: "running" };
}

async function sessionHistory(store: Store, sessionId: string, beforeSeq: number): Promise<ChatMessage[]> {
  const runs = await store.listSessionRuns(sessionId);
  const messages: ChatMessage[] = [];
  for (const r of runs) {
    if (r.sessionSeq >= beforeSeq) break;
    messages.push({ role: "user", content: r.input });
    if (r.status === "completed" && r.output !== null) messages.push({ role: "assistant", content: r.output });
  }
  return messages;
}

async function callModel(
  deps: ExecutorDeps,
  model: ModelClient,
  agent: AgentDefinition,
  history: ChatMessage[],
  state: RunState,
  tools: ToolSpec[],
  control: RunControl,
  step: number,
): Promise<NewEvent | null> {
  const signal = control.signal;
  const messages: ChatMessage[] = [{ role: "system", content: agent.instructions }, ...history, ...state.messages];
  try {
    const call = model.generate({
      agent: agent.name,
      messages,
      tools,
      signal,
      onTextDelta: (text) => deps.publish(state.runId, -1, "model.delta", { step, text }, Date.now()),
    });
    // A provider that ignores its signal must still not hold a cancel or a shutdown hostage.
    const r = await raceAbort(call, signal);
    return ev("model.responded", {
      step,
      text: storable(r.text),
      tool_calls: r.toolCalls,
      usage: { input_tokens: r.usage.inputTokens, output_tokens: r.usage.outputTokens },
      cost_usd: costUsd(r.usage, model.price),
      model: r.model,
      finish_reason: r.finishReason,
    });
  } catch (err) {
    if (control.why === "shutdown") throw new Stop();
    if (control.why === "cancel") return null;
    const e = err instanceof ModelError ? err : new ModelError((err as Error)?.message ?? String(err), "unknown", false);
    // ModelError messages name the model already; anything else gets the alias added.
    const message = storable(err instanceof ModelError ? e.message : `model "${model.alias}" failed: ${e.message}`);
    return ev("model.failed", { step, error: { code: `model_${e.code}`, message } });
  }
}

async function callTool(
  deps: ExecutorDeps,
  action: Extract<Action, { kind: "call_tool" }>,
  run: ClaimedRun["run"],
  state: RunState,
  control: RunControl,
): Promise<NewEvent | null> {
  const { call, tool } = action;
  const timeoutMs = tool.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS;
  let callSignal: AbortSignal | undefined;
  let timedOut = false;
  let timeout = new AbortController();
  const context = {
    runId: run.id,
    sessionId: run.sessionId,
    agent: state.agent || run.agent, // the agent holding the run now (a handoff may have passed it on)
    workspace: run.workspace,
    rootRunId: state.parent?.root_run_id ?? run.id,
    dataDir: deps.dataDir,
    // Built on first use: most tools never look at it, and signals are not free.
    get signal(): AbortSignal {
      callSignal ??= AbortSignal.any([control.signal, timeout.signal]);
      return callSignal;
    },
  };
  let output = "";
  let isError = false;
  /** The system may have applied an earlier attempt of this call: it must be retried with its key, never reported as failed. */
  let uncertain = action.intent === null; // its intent was committed by an earlier attempt (a crash came between)
  for (let attempt = 0; ; attempt++) {
    try {
      let result: unknown = tool.handler({ input: action.args, idempotencyKey: call.key, context });
      if (result instanceof Promise) {
        let timer: NodeJS.Timeout | undefined;
        const timed = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            timedOut = true;
            timeout.abort(new Error(`${tool.name} timed out`));
            reject(new Error("timeout"));
          }, timeoutMs);
        });
        try {
          result = await raceAbort(Promise.race([result, timed]), control.signal);
        } finally {
          clearTimeout(timer);
        }
      }
      // A handler may return anything: what JSON cannot express (functions, symbols) becomes null.
      output = typeof result === "string" ? result : (JSON.stringify(result ?? null) ?? "null");
      isError = false;
      break;
    } catch (err) {
      if (control.why === "shutdown") throw new Stop();
      if (control.why === "cancel") return null;
      const message = (err as Error)?.message ?? String(err);
      const sideEffects = tool.sideEffects !== false;
      if (err instanceof ToolOutcomeUnknown && sideEffects) uncertain = true;
      if (uncertain && sideEffects && (err instanceof ToolOutcomeUnknown || err instanceof ToolUnavailable)) {
        // Side effects happen once: retry with the same key (the system de-duplicates), a few times here,
        // then hand the run back so the call is retried later — the model never sees a failure that may not be one.
        deps.log.warn({ run_id: run.id, tool: tool.name, attempt, err: message }, "tool call outcome unknown; retrying with the same key");
        const delays = deps.outcomeRetry?.delaysMs ?? DEFAULT_OUTCOME_RETRY.delaysMs;
        if (attempt >= delays.length) throw new RetryLater(message, tool.name, call.key);
        await delay(delays[attempt], control.signal);
        if (control.why === "shutdown") throw new Stop();
        if (control.why === "cancel") return null;
        timedOut = false;
        timeout = new AbortController(); // a fresh deadline for the next attempt
        callSignal = undefined;
        continue;
      }
      isError = true;
      output = timedOut ? `error: ${tool.name} did not finish within ${timeoutMs} ms` : `error: ${tool.name} failed: ${message}`;
      deps.log.warn({ run_id: run.id, tool: tool.name, err: message }, "tool call failed");
      break;
    }
  }
  output = storable(output);
  const max = deps.project.agents.get(state.agent)?.limits.maxToolOutput ?? DEFAULT_LIMITS.maxToolOutput;
  if (output.length > max) {
    // Context stays bounded: the model sees a preview and a handle, and pages through the rest with artifacts.read.
    const id = `art_${createHash("sha256").update(call.key).digest("hex").slice(0, 24)}`; // the same on a retried call
    await deps.store.putArtifact({
      id,
      workspace: run.workspace,
      runId: run.id,
      rootRunId: state.parent?.root_run_id ?? run.id,
      callId: call.id,
      tool: call.name,
      content: output,
      size: output.length,
      createdAt: Date.now(),
    });
    output = artifactPreview(output, id, max);
  }
  return ev("tool.completed", { call_id: call.id, tool: call.name, output, is_error: isError });
}
