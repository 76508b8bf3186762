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
import { OutpostError } from "../core/errors.js";
import { type EventDataOf, ev, type NewEvent, type RunEvent } from "../core/events.js";
import { newId } from "../core/ids.js";
import { DEFAULT_LIMITS } from "../definitions/index.js";
import type { AgentDefinition, Classification, ModelCandidate, Project, ToolDefinition } from "../definitions/types.js";
import { tokenBound, tokenCounter } from "../models/tokens.js";
import { type ChatMessage, costUsd, type ModelClient, ModelError, type ModelLocation, type ToolSpec } from "../models/types.js";
import { estimate as estimateCost, type Reservation, type ReserveResult } from "../security/budgets/index.js";
import { canonicalJson } from "../security/canonical.js";
import {
  maskMessages,
  type PiiMapping,
  scanForInjection,
  UNTRUSTED_DATA_NOTE,
  unmaskValue,
  wrapUntrusted,
} from "../security/guardrails/index.js";
import { modelUseRequest } from "../security/policy/index.js";
import { maxClassification, type PolicyEngine } from "../security/types.js";
import {
  type ApprovalRequestInput,
  type ChildNotice,
  type ClaimedRun,
  CommitConflict,
  type RunPatch,
  type RunRecord,
  type Store,
} from "../store/types.js";
import { usageEntries } from "../telemetry/ledger.js";
import { artifactPreview, PREVIEW_CHARS, ToolOutcomeUnknown, ToolUnavailable } from "../tools/index.js";
import {
  type CompactionPlan,
  compactionMessages,
  DEFAULT_CONTEXT,
  type HistoryEntry,
  PromptMeter,
  planCompaction,
  summaryBlock,
  toolResultShare,
  truncateToTokens,
  turnsSinceUser,
  unsummarised,
  windowShares,
} from "./context-window.js";
import { type Action, decide, decidedEvent, type Governance } from "./decide.js";
import { auditEntriesFor, connectionOf } from "./governance.js";
import type { MemoryBlock, RecallStep } from "./recall-step.js";
import { apply, type RunState, type RunSummary, replay, type ToolCallState } from "./state.js";

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

/** Where a delegated child run sits in its tree: under the delegating call, one level below its parent, with the
 * chain of agents above it. */
export function childLink(parent: RunState, parentRun: RunRecord, call: ToolCallState) {
  return {
    runId: parentRun.id,
    callId: call.id,
    rootRunId: parent.parent?.root_run_id ?? parentRun.id,
    depth: (parent.parent?.depth ?? 0) + 1,
    chain: [...(parent.parent?.chain ?? []), parent.agent],
  };
}

export interface ExecutorDeps {
  store: Store;
  /** How calls whose outcome is unknown are retried (default DEFAULT_OUTCOME_RETRY). */
  outcomeRetry?: OutcomeRetry;
  project: Project;
  tools: { get(name: string): ToolDefinition | undefined };
  collaboration: Collaboration;
  /** The agent's usable models in preference order (the router picks the first the policy allows for the run). */
  modelsFor(agent: AgentDefinition): ModelRoute[];
  toolSpecsFor(agent: AgentDefinition): ToolSpec[];
  /** Policy on every action, approvals bound to it; absent = all allowed (embedding without governance). */
  governanceFor?(run: RunRecord): Governance;
  /** How long a workflow's approval waits to be decided (default DEFAULT_APPROVAL_TTL_MS); agents' is governance's. */
  approvalTtlMs?: number;
  /** The engine `model.use` is asked of (the same as governance's). */
  policy?: PolicyEngine;
  /** Recall before each model call (runtime/recall-step.ts); absent = no memory in prompts. */
  recall?(run: RunRecord, state: RunState, agent: AgentDefinition): Promise<RecallStep>;
  /** Replaces secret values (security/vault Redactor) in what the run records: tool outputs and error messages. */
  redact?(text: string): string;
  /** Spend caps: a reservation before each model call, settled after. Absent = no caps configured. */
  budgets?: {
    reserve(request: { workspace: string; runId: string; agent: string; usd: number; tokens: number }): Promise<ReserveResult>;
    settle(id: string, actual: { usd: number; tokens: number }): Promise<unknown>;
    release(id: string): Promise<unknown>;
  };
  dataDir: string;
  /** The log as it stood when this execution took the run up, before anything it commits (telemetry reopens the
   * spans an earlier execution left open). */
  tookUp?(run: RunRecord, log: readonly RunEvent[]): void;
  /** Committed events (and transient `model.delta` ones, seq -1), for live streams. */
  publish(runId: string, seq: number, type: string, data: unknown, at: number): void;
  /** The run's logger: its lines already name the run and its trace (run_id, trace_id, span_id). */
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** A named event emitted by a workflow step: delivered to the runs waiting for it, and starts those subscribed. */
  emitEvent?(workspace: string, name: string, payload: unknown, key: string, from: string): Promise<{ delivered: number; started: number }>;
  /** New work (a child run) was created: claim soon. */
  wake?(): void;
}

/** One model an agent may use: an alias candidate whose credentials are set. */
export interface ModelRoute {
  alias: string;
  provider: ModelCandidate["provider"];
  model: string;
  location: ModelLocation;
  /** Tokens one call may take, prompt and answer. */
  contextWindow: number;
  client(): ModelClient;
}

/** Output tokens a call may produce when a budget applies: the reservation covers exactly this much. */
const BUDGETED_MAX_OUTPUT_TOKENS = 4096;

type BudgetRefusal = Extract<ReserveResult, { ok: false }>;

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
  const taken = await store.getEvents(run.id);
  deps.tookUp?.(run, taken);
  let state = replay(run.id, taken);
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
  const commit = async (approval?: ApprovalRequestInput, force = false): Promise<boolean> => {
    if (pending.length === 0 && !approval && !force) return true;
    const batch = pending;
    const batchFacts = facts;
    pending = [];
    facts = [];
    const release = state.terminal !== null || state.waiting !== null;
    const audit = governance ? auditEntriesFor(state, run.id, batch, route ? { location: route.location } : null) : [];
    const usage = usageEntries(batch, state.agent || run.agent);
    try {
      const result = await store.commit({
        runId: run.id,
        leaseToken: claimed.leaseToken,
        expectedSeq: committedSeq,
        events: batch,
        patch: patchOf(state, release),
        approval,
        ...(audit.length > 0 ? { audit } : {}),
        ...(usage.length > 0 ? { usage } : {}),
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
      deps.log.warn({ err: (err as Error)?.message }, "could not move the session to the agent handed to");
    });

  /** Ends the run as failed with the reason (and hands the lease back). */
  const fail = async (code: string, message: string) => {
    stage([ev("run.failed", { error: { code, message: storable(deps.redact ? deps.redact(message) : message) } })]);
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
            ...(state.tainted.length > 0 ? { tainted: [...new Set(state.tainted)] } : {}),
          },
          run.workspace,
        )
        .catch((err) => deps.log.warn({ err: (err as Error)?.message }, "could not notify the parent run yet; will retry"));
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
  /** The latest summary an earlier run of the session wrote, looked up only once history outgrows the window. */
  let inherited: RunSummary | null | undefined;
  const meters = new Map<string, PromptMeter>();
  const meterFor = (r: ModelRoute) => {
    const key = `${r.provider}:${r.model}`;
    let m = meters.get(key);
    if (!m) meters.set(key, (m = new PromptMeter(tokenCounter(r.provider, r.model))));
    return m;
  };

  /**
   * The prompt for the next model call, within the model's window (runtime/context-window.ts). History past its
   * share is folded into the running summary first: the model writes it, and it is staged as `context.compacted`.
   * A prompt that cannot fit even then is never sent: the run fails with context_overflow, saying why.
   */
  /** Reserves the most a model call can cost against the run's own cap and the spend caps (`spent`: already spent in
   * this step, not yet in the run's state). */
  const reserveFor = async (most: { usd: number; tokens: number }, spent: number): Promise<ReserveResult> => {
    const refusal = runCapRefusal(agent as AgentDefinition, state, spent + most.usd);
    if (refusal) return { ok: false, ...refusal };
    return (deps.budgets as NonNullable<ExecutorDeps["budgets"]>).reserve({
      workspace: run.workspace,
      runId: run.id,
      agent: state.agent,
      usd: most.usd,
      tokens: most.tokens,
    });
  };
  const settleQuietly = (reservation: Reservation, actual: { usd: number; tokens: number }) =>
    deps.budgets
      ?.settle(reservation.id, actual)
      .catch((err) => deps.log.warn({ err: (err as Error)?.message }, "could not settle a budget reservation"));
  /** A call a cap refused: the run waits for the next period (on_exceed: wait) or fails. */
  const refuse = async (r: BudgetRefusal): Promise<void> => {
    if (r.onExceed === "wait" && r.retryAt !== null) {
      stage([ev("run.waiting", { for: { kind: "timer", until: new Date(r.retryAt).toISOString(), retry: `budget ${r.cap.scope}` } })]);
      await commit(undefined, true);
      await cancelIfAsked();
      return;
    }
    await fail("budget_exceeded", r.message);
    await afterEnd();
  };

  const fitPrompt = async (
    r: ModelRoute,
    memory: MemoryBlock | null,
  ): Promise<{ prompt: Prompt; tokens: number } | { overflow: string } | { refused: BudgetRefusal } | null> => {
    const a = agent as AgentDefinition;
    const settings = a.context ?? DEFAULT_CONTEXT;
    const meter = meterFor(r);
    const toolTokens = meter.text(JSON.stringify(toolSpecs));
    const base = systemBase(a, toolSpecs, memory);
    let fixed = meter.text(base) + toolTokens;
    let memoryTokens = memory ? meter.text(memory.text) : 0;
    let shares = windowShares(r.contextWindow, fixed, memoryTokens, settings);
    if (!shares && memory) {
      // Memory is the part a prompt can do without.
      memory = null;
      fixed = meter.text(systemBase(a, toolSpecs, null)) + toolTokens;
      memoryTokens = 0;
      shares = windowShares(r.contextWindow, fixed, 0, settings);
    }
    if (!shares) {
      return {
        overflow:
          `agent ${a.name}'s instructions and tools take ${fixed} tokens (${meter.counter.name}), which leaves too little of ` +
          `model ${r.alias}'s ${r.contextWindow}-token window for the conversation. Shorten the instructions, give it fewer ` +
          `tools, or raise context_window of the model in outpost.yaml`,
      };
    }
    const entries = historyEntries(history, state);
    let summary = state.summary;
    let visible = unsummarised(entries, summary);
    let historyTokens = meter.messages(
      visible.map((e) => e.message),
      shares.history,
    );
    if (historyTokens > shares.history && !summary) {
      // An earlier run of the session may have summarised what this run inherits.
      if (inherited === undefined) inherited = await inheritedSummary(store, run.sessionId, run.sessionSeq);
      summary = inherited;
      visible = unsummarised(entries, summary);
      historyTokens = meter.messages(
        visible.map((e) => e.message),
        shares.history,
      );
    }
    if (historyTokens > shares.history) {
      const refuse = (why: string) => ({
        overflow:
          `the conversation no longer fits model ${r.alias}'s ${r.contextWindow}-token window: ${why}. ` +
          "Raise context_window in outpost.yaml, lower keep_recent, or start a new session",
      });
      if (settings.compaction === "off") return refuse(`its history takes ${historyTokens} tokens of ${shares.history} (compaction: off)`);
      const plan = planCompaction(visible, shares.history, settings.keepRecent, (m) => meter.message(m), summary);
      if (!plan) return refuse(`its latest turns alone take more than the ${shares.history} tokens history may use`);
      const compacted = await compact(r, meter, plan, summary?.text ?? null, shares.summary);
      if (compacted === null || "refused" in compacted) return compacted;
      stage([compacted], true);
      summary = state.summary;
      visible = plan.keep;
    }
    const system = [base, ...(memory ? [memory.text] : []), ...(summary ? [summaryBlock(summary.text)] : [])].join("\n\n");
    const prompt = promptFor(system, visible, r.location, toolSpecs);
    // The prompt as it will be sent (masking changes its text): the invariant is checked on that, exactly.
    const limit = r.contextWindow - shares.answer;
    const tokens = meter.text(system) + toolTokens + meter.messages(prompt.messages.slice(1), limit - meter.text(system) - toolTokens);
    if (tokens > limit) {
      return {
        overflow: `the prompt takes ${tokens} tokens, more than the ${limit} model ${r.alias}'s window leaves after its answer. Raise context_window in outpost.yaml or lower keep_recent`,
      };
    }
    prompt.omittedTurns = Math.max(0, turnsSinceUser(state.messages) - turnsSinceUser(prompt.messages));
    return { prompt, tokens };
  };

  /** Folds the plan's turns into the running summary (in pieces when they are more than the window holds). */
  const compact = async (
    r: ModelRoute,
    meter: PromptMeter,
    plan: CompactionPlan,
    previous: string | null,
    maxTokens: number,
  ): Promise<NewEvent | { refused: BudgetRefusal } | null> => {
    const client = r.client();
    const room = Math.floor((r.contextWindow - maxTokens) * 0.75) - meter.text(compactionMessages(previous, [], maxTokens)[0].content);
    const budgeted = deps.budgets !== undefined && (client.price.inputPerMTok > 0 || client.price.outputPerMTok > 0);
    let summary = previous;
    const usage = { input_tokens: 0, output_tokens: 0 };
    let cost = 0;
    let model = client.modelId;
    for (const piece of pieces(
      plan.fold.map((e) => e.message),
      room,
      (m) => meter.message(m),
    )) {
      let messages = compactionMessages(summary, piece, maxTokens);
      let pii: PiiMapping | null = null;
      if (r.location !== "local") {
        const masked = maskMessages(messages);
        messages = masked.messages;
        pii = masked.mapping.values.size > 0 ? masked.mapping : null;
      }
      // A summary is a model call like any other: the spend caps hold before it is made.
      let reservation: Reservation | null = null;
      if (budgeted) {
        const chars = messages.reduce((n, m) => n + m.content.length, 0);
        const r = await reserveFor(estimateCost(client.price, chars, maxTokens), cost);
        if (!r.ok) return { refused: r };
        reservation = r.reservation;
      }
      try {
        const answer = await raceAbort(
          client.generate({
            agent: (agent as AgentDefinition).name,
            messages,
            tools: [],
            purpose: "compaction",
            maxOutputTokens: maxTokens,
            signal: control.signal,
          }),
          control.signal,
        );
        const text = pii ? unmaskValue(answer.text, pii) : answer.text;
        summary = truncateToTokens(storable(text.trim()), maxTokens, (t) => meter.counter.count(t));
        usage.input_tokens += answer.usage.inputTokens;
        usage.output_tokens += answer.usage.outputTokens;
        const spent = costUsd(answer.usage, client.price);
        cost += spent;
        model = answer.model;
        if (reservation) await settleQuietly(reservation, { usd: spent, tokens: answer.usage.inputTokens + answer.usage.outputTokens });
      } catch (err) {
        if (reservation) await deps.budgets?.release(reservation.id).catch(() => undefined);
        if (control.why === "shutdown") throw new Stop();
        if (control.why === "cancel") return null;
        const e = err instanceof ModelError ? err : new ModelError((err as Error)?.message ?? String(err), "unknown", false);
        return ev("model.failed", {
          step: state.modelCalls + 1,
          error: { code: `model_${e.code}`, message: storable(`summarising older turns failed: ${e.message}`) },
        });
      }
    }
    return ev("context.compacted", {
      step: state.modelCalls + 1,
      summary: summary ?? "",
      through: { session_seq: plan.through.sessionSeq, messages: plan.through.messages },
      replaced: { messages: plan.fold.length, tokens: plan.foldedTokens },
      tokens: meter.text(summary ?? ""),
      tokenizer: meter.counter.name,
      usage,
      cost_usd: cost,
      model,
    });
  };
  const governance = deps.governanceFor?.(run);
  let routes!: ModelRoute[];
  /** The model of the latest call (its location goes in the audit entry of its answer). */
  let route: ModelRoute | null = null;
  let toolSpecs!: ToolSpec[];
  /** Model and tools of the agent now working on the run; false when they cannot be set up (the run has failed). */
  const setUp = async (): Promise<boolean> => {
    let setup = "model_unavailable";
    try {
      routes = deps.modelsFor(agent as AgentDefinition); // fails e.g. when no candidate of the model alias has its credentials set
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
  const ctx = { agent, tools: deps.tools, now: 0, ...(governance ? { governance } : {}) };

  /**
   * The model router: the first of the agent's models the policy allows for this run now (`model.use`, with the
   * run's classification and the model's location). The decision is recorded when it changes.
   */
  const chooseModel = (): ModelRoute | { problem: string } => {
    const policy = deps.policy;
    if (!policy) return routes[0];
    const facts = { agent: state.agent, onBehalfOf: state.by, runClassification: state.classification, tainted: state.tainted.length > 0 };
    const prev = state.modelDecision;
    let refused: NewEvent | null = null;
    const denied: string[] = [];
    for (const r of routes) {
      const request = modelUseRequest({ ...facts, alias: r.alias, candidate: r });
      // The last decision stands only for the very same request: taint, classification or who the run acts for
      // may each change what the policies say.
      const same =
        prev?.effect === "allow" &&
        prev.policies_sha256 === policy.hash &&
        canonicalJson([prev.request.agent, prev.request.on_behalf_of, prev.request.resource, prev.request.context]) ===
          canonicalJson([request.agent, request.onBehalfOf, request.resource, request.context]);
      if (same) return r;
      const d = policy.authorize(request);
      // A model whose use needs a person's approval is not one the router can pick by itself: fail closed.
      if (d.effect === "allow" && !d.approval) {
        stage([decidedEvent(undefined, request, d, policy.hash)], true);
        return r;
      }
      refused ??= decidedEvent(undefined, request, d, policy.hash);
      denied.push(`${request.resource.id} (${r.location})`);
    }
    if (refused) stage([refused], true);
    return {
      problem:
        `no model agent ${state.agent} may use is allowed for this run: it has touched ${state.classification} data${state.tainted.length > 0 ? " and carries untrusted content" : ""}, and the policy ` +
        `does not allow ${denied.join(", ")} for it. Add a candidate with location: local to model alias "${(agent as AgentDefinition).model}" ` +
        "in outpost.yaml, or change the policy",
    };
  };

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
          const expiresAt = action.expiresAt === null ? undefined : new Date(action.expiresAt).toISOString();
          stage([
            ev("approval.requested", {
              approval_id: approvalId,
              call_id: action.call.id,
              tool: action.call.name,
              arguments: action.args,
              approver: action.approver,
              ...(action.actionHash !== null ? { action_hash: action.actionHash } : {}),
              ...(expiresAt ? { expires_at: expiresAt } : {}),
              ...(action.policies.length > 0 ? { policies: action.policies } : {}),
            }),
            ev("run.waiting", { for: { kind: "approval", approval_id: approvalId, ...(expiresAt ? { expires_at: expiresAt } : {}) } }),
          ]);
          const approval: ApprovalRequestInput = {
            id: approvalId,
            callId: action.call.id,
            agent: state.agent,
            callKey: action.call.key,
            tool: action.call.name,
            arguments: action.args,
            requestedBy: state.by,
            approverRole: action.approver.role,
            approverGroup: action.approver.group,
            policies: action.policies,
            ...(action.actionHash !== null ? { actionHash: action.actionHash } : {}),
            ...(action.expiresAt !== null ? { expiresAt: action.expiresAt } : {}),
          };
          if (!(await commit(approval))) continue;
          await cancelIfAsked();
          await afterEnd();
          return;
        }
        case "expire_approval": {
          // Nobody decided in time: the store marks it expired (unless someone decided just now) and logs the denial.
          if (!(await commit())) continue;
          try {
            await store.applyExternal(run.workspace, {
              kind: "approval",
              approvalId: action.approvalId,
              decision: "expire",
              reason: null,
              by: null,
            });
          } catch (err) {
            if (!(err instanceof OutpostError && err.code === "conflict")) throw err;
          }
          state = replay(run.id, await store.getEvents(run.id)); // the store appended to the log: read it back
          committedSeq = state.lastSeq;
          continue;
        }
        case "call_model": {
          // Memory first: what it recalls raises the run's classification, which decides the models it may use.
          const recalled = deps.recall ? await deps.recall(run, state, agent) : null;
          if (recalled && recalled.events.length > 0) stage(recalled.events, true);
          const chosen = chooseModel();
          if ("problem" in chosen) {
            await fail("model_not_allowed", chosen.problem);
            await afterEnd();
            return;
          }
          route = chosen;
          const model = chosen.client();
          const fitted = await fitPrompt(chosen, recalled?.block ?? null);
          if (fitted === null) continue; // cancelled while summarising
          if ("refused" in fitted) {
            await refuse(fitted.refused);
            return;
          }
          if ("overflow" in fitted) {
            await fail("context_overflow", fitted.overflow);
            await afterEnd();
            return;
          }
          if (state.modelFailure) continue; // the summary could not be written: decide ends the run with the reason
          const prompt = fitted.prompt;
          // Spend caps: the most this call can cost is reserved before it is made, and settled after.
          let reservation: Reservation | null = null;
          const budgeted = deps.budgets !== undefined && (model.price.inputPerMTok > 0 || model.price.outputPerMTok > 0);
          if (budgeted) {
            const r = await reserveFor(estimateCost(model.price, prompt.chars, BUDGETED_MAX_OUTPUT_TOKENS), 0);
            if (!r.ok) {
              await refuse(r);
              return;
            }
            reservation = r.reservation;
          }
          const releaseReservation = () => (reservation ? deps.budgets?.release(reservation.id).catch(() => undefined) : undefined);
          stage([
            ev("model.called", {
              ...(action.intent.data as EventDataOf<"model.called">),
              prompt_tokens: fitted.tokens,
              context_window: chosen.contextWindow,
            }),
          ]);
          if (!(await commit())) {
            await releaseReservation();
            continue;
          }
          if (control.why) {
            await releaseReservation(); // a cancel learned from the commit: never start the call
            continue;
          }
          const step = state.modelCalls + 1;
          let response: NewEvent | null;
          try {
            response = await callModel(deps, model, agent, prompt, state, toolSpecs, control, step, budgeted);
          } catch (err) {
            await releaseReservation(); // a shutdown mid-call: the next owner reserves again
            throw err;
          }
          if (reservation) {
            if (response?.type === "model.responded") {
              const d = response.data;
              await settleQuietly(reservation, { usd: d.cost_usd, tokens: d.usage.input_tokens + d.usage.output_tokens });
            } else {
              await releaseReservation();
            }
          }
          if (response === null) continue; // cancelled: loop commits run.cancelled
          stage([response], true);
          continue;
        }
        case "call_tool": {
          if (action.intent) stage([action.intent]);
          if (!(await commit())) continue;
          if (control.why) continue; // a cancel learned from the commit: never start the call
          // A result bounded by the smallest window among the agent's models: whichever answers next must hold it.
          const smallest = routes.reduce((a, b) => (b.contextWindow < a.contextWindow ? b : a));
          const bound = { tokens: toolResultShare(smallest.contextWindow, agent.context ?? DEFAULT_CONTEXT), meter: meterFor(smallest) };
          const result = await callTool(deps, action, run, state, control, bound);
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
      deps.log.warn({ tool: err.tool, err: err.message, retry_in_ms: waitMs }, "a call's system is away; retrying later with the same key");
      stage([ev("run.waiting", { for: { kind: "timer", until: new Date(Date.now() + waitMs).toISOString(), retry: err.tool } })]);
      await commit(undefined, true).catch(() => undefined); // a lost commit leaves the lease to lapse: retried all the same
      return;
    }
    if (err instanceof CommitConflict && err.reason === "lease_lost") {
      deps.log.warn({}, "lease lost: another worker took the run over; stopping here");
      return;
    }
    if (!(err instanceof CommitConflict) && !isTransient(err)) {
      // Not a lost connection (e.g. the store refused this run's progress for good): retrying after the
      // lease lapses would fail the same way, forever. End the run with the reason instead.
      deps.log.error({ err: (err as Error)?.message }, "run failed: it could not continue");
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
    const wakeAt = w.kind === "timer" ? Date.parse(w.until) : w.kind === "approval" && w.expires_at ? Date.parse(w.expires_at) : null;
    return { ...base, status: "waiting", waitingFor: w, wakeAt };
  }
  return { ...base, status: "running" };
}

/** Earlier runs of the session as turns: each run's input and, when it completed, its answer. */
async function sessionHistory(store: Store, sessionId: string, beforeSeq: number): Promise<HistoryEntry[]> {
  const runs = await store.listSessionRuns(sessionId);
  const entries: HistoryEntry[] = [];
  for (const r of runs) {
    if (r.sessionSeq >= beforeSeq) break;
    entries.push({ message: { role: "user", content: r.input }, sessionSeq: r.sessionSeq });
    if (r.status === "completed" && r.output !== null)
      entries.push({ message: { role: "assistant", content: r.output }, sessionSeq: r.sessionSeq });
  }
  return entries;
}

/** How many earlier runs of a session are searched for the latest summary (newest first). */
const SUMMARY_LOOKBACK = 50;

/** The latest running summary an earlier run of the session wrote: it stands for the runs it folded. */
async function inheritedSummary(store: Store, sessionId: string, beforeSeq: number): Promise<RunSummary | null> {
  const runs = (await store.listSessionRuns(sessionId)).filter((r) => r.sessionSeq < beforeSeq).reverse();
  for (const r of runs.slice(0, SUMMARY_LOOKBACK)) {
    const events = await store.getEvents(r.id);
    for (let i = events.length - 1; i >= 0; i--) {
      const e = events[i];
      if (e.type !== "context.compacted") continue;
      // Its own run's messages are not this run's history: only the session runs it folded carry over.
      return e.data.through.session_seq === null ? null : { text: e.data.summary, sessionSeq: e.data.through.session_seq, messages: 0 };
    }
  }
  return null;
}

/** Everything the conversation holds, oldest first: earlier session runs, then this run's messages (tool output
 * delimited as untrusted data); the run's input pinned. */
function historyEntries(session: HistoryEntry[], state: RunState): HistoryEntry[] {
  const own = state.messages.map(
    (m, index): HistoryEntry => ({
      message: m.role === "tool" ? wrapped(m) : m,
      sessionSeq: null,
      index,
      ...(index === state.inputIndex ? { pinned: true } : {}),
    }),
  );
  return session.length > 0 ? [...session, ...own] : own;
}

/** Messages in groups of at most `room` tokens (one message larger than that is a group of its own). */
function pieces(messages: ChatMessage[], room: number, tokens: (m: ChatMessage) => number): ChatMessage[][] {
  const out: ChatMessage[][] = [];
  let current: ChatMessage[] = [];
  let used = 0;
  for (const m of messages) {
    const t = tokens(m);
    if (current.length > 0 && used + t > room) {
      out.push(current);
      current = [];
      used = 0;
    }
    current.push(m);
    used += t;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** What a model is sent: tool output delimited as untrusted data; for a model outside, PII masked. */
interface Prompt {
  messages: ChatMessage[];
  /** Placeholders put in for PII, to be put back in what the model answers (null: nothing masked). */
  pii: PiiMapping | null;
  /** Its size, for the budget's estimate. */
  chars: number;
  /** Assistant turns since the latest user message folded into the summary (see ModelRequest.omittedTurns). */
  omittedTurns?: number;
}

/** A run's tool messages are wrapped once, not at every model call (the wrapping hashes the whole output). */
const wrappedMessages = new WeakMap<ChatMessage, ChatMessage>();
function wrapped(m: Extract<ChatMessage, { role: "tool" }>): ChatMessage {
  let w = wrappedMessages.get(m);
  if (!w) {
    w = { ...m, content: wrapUntrusted(m.toolName, m.content) };
    wrappedMessages.set(m, w);
  }
  return w;
}

/** The system message's fixed part: instructions, and the untrusted-data note when tools or memory bring data in. */
function systemBase(agent: AgentDefinition, tools: ToolSpec[], memory: MemoryBlock | null): string {
  return tools.length > 0 || memory ? `${agent.instructions}\n\n${UNTRUSTED_DATA_NOTE}` : agent.instructions;
}

/** One system message (not every provider takes more): instructions, then recalled memory and the running summary,
 * each marked for what it is; then the history the window holds. */
function promptFor(system: string, history: HistoryEntry[], location: ModelLocation, tools: ToolSpec[]): Prompt {
  let messages: ChatMessage[] = [{ role: "system", content: system }];
  for (const e of history) messages.push(e.message);
  let pii: PiiMapping | null = null;
  if (location !== "local") {
    const masked = maskMessages(messages);
    messages = masked.messages;
    pii = masked.mapping.values.size > 0 ? masked.mapping : null;
  }
  let chars = JSON.stringify(tools).length;
  for (const m of messages) chars += m.content.length + (m.role === "assistant" && m.toolCalls ? JSON.stringify(m.toolCalls).length : 0);
  return { messages, pii, chars };
}

/** The run's own cap (limits.max_usd) holds before a call too: one that could cross it is not made. */
function runCapRefusal(agent: AgentDefinition, s: RunState, usd: number): Omit<Extract<ReserveResult, { ok: false }>, "ok"> | null {
  const limit = agent.limits.maxUsd;
  if (s.costUsd + usd <= limit) return null;
  return {
    cap: {
      scope: `run:${s.runId}`,
      period: "total",
      periodKey: "total",
      usd: limit,
      unit: "usd",
      limit,
      spent: s.costUsd,
      reserved: 0,
      requested: usd,
    },
    onExceed: "fail",
    retryAt: null,
    message:
      `the next model call could cost up to $${usd.toFixed(4)}, and this run has spent $${s.costUsd.toFixed(4)} of its ` +
      `$${limit} (limit max_usd of agent ${agent.name}): the call was not made`,
  };
}

async function callModel(
  deps: ExecutorDeps,
  model: ModelClient,
  agent: AgentDefinition,
  prompt: Prompt,
  state: RunState,
  tools: ToolSpec[],
  control: RunControl,
  step: number,
  budgeted: boolean,
): Promise<NewEvent | null> {
  const signal = control.signal;
  const pii = prompt.pii;
  try {
    const call = model.generate({
      agent: agent.name,
      messages: prompt.messages,
      tools,
      signal,
      ...(prompt.omittedTurns ? { omittedTurns: prompt.omittedTurns } : {}),
      ...(budgeted ? { maxOutputTokens: BUDGETED_MAX_OUTPUT_TOKENS } : {}),
      // Streamed text carries placeholders where PII was masked: put the values back for the watcher too.
      onTextDelta: (text) => deps.publish(state.runId, -1, "model.delta", { step, text: pii ? unmaskValue(text, pii) : text }, Date.now()),
    });
    // A provider that ignores its signal must still not hold a cancel or a shutdown hostage.
    const raw = await raceAbort(call, signal);
    // The log keeps real values: placeholders the model wrote (e.g. in a tool's arguments) are put back.
    const r = pii ? { ...raw, text: unmaskValue(raw.text, pii), toolCalls: unmaskValue(raw.toolCalls, pii) } : raw;
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
  bound: { tokens: number; meter: PromptMeter },
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
    onBehalfOf: state.by,
    runClassification: state.classification,
    clearance: deps.project.agents.get(state.agent || run.agent)?.clearance ?? "internal",
    step: state.modelCalls,
    callId: call.id,
    // Built on first use: most tools never look at it, and signals are not free.
    get signal(): AbortSignal {
      callSignal ??= AbortSignal.any([control.signal, timeout.signal]);
      return callSignal;
    },
  };
  let output = "";
  let isError = false;
  /** What the result itself says about its class (memory.recall: the most sensitive item it returned). */
  let resultClass: Classification | undefined;
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
      resultClass = tool.resultClassification?.(result);
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
        deps.log.warn({ tool: tool.name, attempt, err: message }, "tool call outcome unknown; retrying with the same key");
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
      deps.log.warn({ tool: tool.name, err: message }, "tool call failed");
      break;
    }
  }
  output = storable(deps.redact ? deps.redact(output) : output);
  const max = deps.project.agents.get(state.agent)?.limits.maxToolOutput ?? DEFAULT_LIMITS.maxToolOutput;
  const overWindow = () => tokenBound(output) > bound.tokens && bound.meter.counter.count(output) > bound.tokens;
  if (output.length > max || overWindow()) {
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
    // The preview within both bounds: characters (max_tool_output) and the window's share for a tool result.
    let chars = Math.min(max, PREVIEW_CHARS);
    let preview = artifactPreview(output, id, chars);
    while (chars > 200 && bound.meter.counter.count(preview) > bound.tokens) {
      chars = Math.floor(chars / 2);
      preview = artifactPreview(output, id, chars);
    }
    output = preview;
  }
  // What the run has now taken in: the data's class, and whether it carries what looks like injected instructions.
  const declared = tool.classification ?? connectionOf(deps.project, tool.name)?.classification ?? "internal";
  const classification = resultClass ? maxClassification(declared, resultClass) : declared;
  const scan = isError ? null : scanForInjection(output);
  const tainted = scan?.suspicious ? [...new Set(scan.findings.map((f) => f.pattern))] : [];
  return ev("tool.completed", {
    call_id: call.id,
    tool: call.name,
    output,
    is_error: isError,
    classification,
    ...(tainted.length > 0 ? { tainted } : {}),
  });
}
