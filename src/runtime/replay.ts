/**
 * `outpost replay RUN --with CHANGED_PROJECT`: a recorded run re-driven against changed definitions, to see where
 * the new version would part from what happened — with no side effects.
 *
 * The run goes through the real executor, step function, policy engine and model client of the changed project, in
 * a throwaway SQLite store in a temporary folder (the real store is only read, by the caller). No tool is ever
 * executed: each handler is replaced by one that answers from the recording.
 *
 *  - A tool call is answered with the result of the recorded call of the same tool with the same arguments (the
 *    model's, compared canonically), else of the next unused recorded call of that tool in order (`by_order`).
 *    A call with no recorded counterpart is not executed: it gets an error result saying it was not recorded, and
 *    the run goes on (the model may react to it).
 *  - Policies of the changed project decide every action for real; a denied call is refused as it would be.
 *  - An approval is not waited for: it gets the recorded decision of the matching approval. One the recording has
 *    no decision for is assumed approved (the step shows it) so the rest can be compared; one the recorded run is
 *    itself still waiting for stops the replay there, as the recorded run stopped.
 *  - A delegation is answered with the recorded child run's answer (the child is not re-driven); an event a run
 *    waits for is delivered from the recording. A timer a run waits on stops the replay.
 *
 * Then the two runs' steps (model turns, policy decisions, approvals, tool results, the end) are lined up
 * (runtime/replay-trace.ts): `identical`, or the first divergence and every later difference.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { ContextCache, contextLookupTool } from "../context/index.js";
import { OutpostError } from "../core/errors.js";
import type { RunEvent } from "../core/events.js";
import { newId } from "../core/ids.js";
import { ProjectError } from "../definitions/index.js";
import type { AgentDefinition, Classification, Project, ToolDefinition } from "../definitions/types.js";
import { createEmbedder, MemoryStore, memoryTools } from "../memory/index.js";
import type { ModelClient } from "../models/index.js";
import { checkPolicies, createPolicyEngine } from "../security/policy/index.js";
import { openStore, type RunRecord, type Store } from "../store/index.js";
import {
  artifactsTool,
  builtinTools,
  collaborationTools,
  eventTools,
  normalizeToolName,
  ToolRegistry,
  type ToolSource,
} from "../tools/index.js";
import { isWorkflowRun } from "../workflows/executor.js";
import { type Collaboration, childLink, executeRun, type ModelRoute, RunControl } from "./executor.js";
import { connectionOf, runGovernance } from "./governance.js";
import { modelRoutes } from "./model-routes.js";
import { eventSubscriptions } from "./outpost.js";
import { alignTraces, brief, parseArgs, sameArgs, summaryOf, type TraceRow, type TraceStep, traceOf } from "./replay-trace.js";
import { type RunState, replay, type ToolCallState, WAIT_FOR_EVENT } from "./state.js";

export interface ReplayOptions {
  /** The recorded run's log, as read from its store. */
  recorded: RunEvent[];
  /** The recorded run's id (for the report). */
  runId?: string;
  /** The changed project the run is re-driven against. */
  project: Project;
  /** Earlier turns of the recorded run's session, oldest first: the replay is given them as its context. */
  history?: { role: "user" | "assistant"; content: string }[];
  /** For the models' credentials (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Replaces the model an agent uses (tests). */
  modelFor?: (agent: AgentDefinition) => ModelClient | undefined;
}

/** How the replay answered a call of the new version from the recording. */
export interface ReplayMatch {
  kind: "tool" | "delegation" | "approval" | "event";
  tool: string;
  args: unknown;
  /** `exact`: same tool and arguments; `by_order`: the next unused recorded call of that tool (arguments differ);
   * `not_recorded`: none — not executed (a tool), failed (a delegation), assumed approved (an approval). */
  match: "exact" | "by_order" | "not_recorded";
  /** The recorded call it was answered with. */
  recordedCallId?: string;
}

export interface ReplayReport {
  identical: boolean;
  /** The first step (1-based) at which the runs differ; null when identical. */
  divergedAt: number | null;
  summary: string;
  rows: TraceRow[];
  recorded: { runId: string | null; agent: string; status: string };
  replay: { status: string; output: string | null; error: { code: string; message: string } | null };
  matches: ReplayMatch[];
  /** What the replay could not reproduce or did not do. */
  notes: string[];
}

/** How long the replay's one worker holds its run: never renewed, so longer than any replay takes. */
const LEASE_MS = 24 * 3600_000;
/** Executions of the run (one per wait resolved) before the replay gives up. */
const MAX_ROUNDS = 500;

export async function replayRun(options: ReplayOptions): Promise<ReplayReport> {
  const recorded = options.recorded;
  const started = recorded[0];
  if (started?.type !== "run.started") {
    throw new OutpostError("invalid_request", "the recorded run's log does not begin with run.started", "replay a run recorded by Outpost");
  }
  if (isWorkflowRun(started.data.agent)) {
    throw new OutpostError(
      "invalid_request",
      `${options.runId ? `run ${options.runId}` : "the run"} is a workflow run (${started.data.agent}); replay re-drives agent runs`,
      "replay one of the agent runs the workflow started (outpost runs tree ID lists them)",
    );
  }
  const project = options.project;
  // As at start: a forbid that fails to evaluate does not count, so policies that do not fit the schema are refused.
  const checked = checkPolicies(project);
  if (checked.errors.length > 0) throw new ProjectError(project.root, checked.errors);

  const scratch = await mkdtemp(join(tmpdir(), "outpost-replay-"));
  let store: Store | null = null;
  try {
    // SQLite in the scratch folder, whatever OUTPOST_DATABASE_URL says: nothing of the replay reaches a real store.
    store = await openStore({ dataDir: scratch });
    return await new Replay(options, store, scratch).run();
  } finally {
    await store?.close().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** A call the recorded run made, to answer the new version's calls with. */
interface RecordedCall {
  callId: string;
  tool: string;
  args: unknown;
  used: boolean;
}

interface RecordedResult extends RecordedCall {
  output: string;
  isError: boolean;
  classification?: Classification;
}

interface RecordedApproval extends RecordedCall {
  decision: { decision: "approve" | "deny" | "expire"; reason: string | null; by: string | null } | null;
}

interface RecordedChild extends RecordedCall {
  childRunId: string;
  finished: Extract<RunEvent, { type: "child.finished" }>["data"] | null;
}

/** What the recording holds to answer the replay with, and what its tools looked like to policy. */
class Recording {
  readonly results: RecordedResult[] = [];
  readonly approvals: RecordedApproval[] = [];
  readonly children: RecordedChild[] = [];
  readonly events: { name: string; payload: unknown; used: boolean }[] = [];
  /** Tools the run called, with their attributes as policy saw them (side_effects, classification). */
  readonly tools = new Map<string, { sideEffects?: boolean }>();
  recalled = 0;

  constructor(events: RunEvent[]) {
    let calls = new Map<string, { tool: string; args: unknown; called: boolean }>();
    const byChild = new Map<string, RecordedChild>();
    for (const e of events) {
      switch (e.type) {
        case "model.responded": {
          const seen = new Set<string>();
          calls = new Map();
          e.data.tool_calls.forEach((c, i) => {
            const id = seen.has(c.id) ? `${c.id}#${i}` : c.id;
            seen.add(id);
            calls.set(id, { tool: c.name, args: parseArgs(c.arguments), called: false });
            if (!this.tools.has(c.name)) this.tools.set(c.name, {});
          });
          break;
        }
        case "tool.called": {
          const c = calls.get(e.data.call_id);
          if (c) c.called = true;
          break;
        }
        case "tool.completed": {
          const c = calls.get(e.data.call_id);
          // Only calls that ran (their intent was committed): a refused one has no result a tool gave.
          if (c?.called) {
            this.results.push({
              callId: e.data.call_id,
              tool: c.tool,
              args: c.args,
              used: false,
              output: e.data.output,
              isError: e.data.is_error,
              ...(e.data.classification ? { classification: e.data.classification } : {}),
            });
          }
          break;
        }
        case "policy.decided": {
          const r = e.data.request;
          if (r.action === "tool.call" && r.resource.type === "Tool" && typeof r.resource.attributes?.side_effects === "boolean") {
            this.tools.set(r.resource.id, { sideEffects: r.resource.attributes.side_effects });
          }
          break;
        }
        case "approval.requested": {
          const c = calls.get(e.data.call_id);
          this.approvals.push({
            callId: e.data.approval_id,
            tool: e.data.tool,
            args: c?.args ?? e.data.arguments,
            used: false,
            decision: null,
          });
          break;
        }
        case "approval.decided": {
          const a = this.approvals.find((x) => x.callId === e.data.approval_id);
          if (a) a.decision = { decision: e.data.decision, reason: e.data.reason, by: e.data.by };
          break;
        }
        case "delegation.started": {
          const c = calls.get(e.data.call_id);
          const child: RecordedChild = {
            callId: e.data.call_id,
            tool: c?.tool ?? `delegate.${e.data.agent}`,
            args: c?.args ?? {},
            used: false,
            childRunId: e.data.child_run_id,
            finished: null,
          };
          this.children.push(child);
          byChild.set(e.data.child_run_id, child);
          break;
        }
        case "child.finished": {
          const child = byChild.get(e.data.child_run_id);
          if (child) child.finished = e.data;
          break;
        }
        case "event.received":
          this.events.push({ name: e.data.name, payload: e.data.payload, used: false });
          break;
        case "memory.recalled":
          this.recalled++;
          break;
        default:
          break;
      }
    }
  }

  /** The recorded call that answers one of the new version's: same tool and arguments first, then by order. */
  take<T extends RecordedCall>(pool: T[], tool: string, args: unknown): { entry: T; match: "exact" | "by_order" } | null {
    const exact = pool.find((c) => !c.used && c.tool === tool && sameArgs(c.args, args));
    const entry = exact ?? pool.find((c) => !c.used && c.tool === tool);
    if (!entry) return null;
    entry.used = true;
    return { entry, match: exact ? "exact" : "by_order" };
  }
}

class Replay {
  private readonly recording: Recording;
  private readonly matches: ReplayMatch[] = [];
  private readonly notes: string[] = [];
  private readonly project: Project;
  private readonly env: NodeJS.ProcessEnv;
  private readonly models = new Map<string, ModelClient>();
  /** Ids the replay made, and the recorded ones they stand for (so they compare equal). */
  private readonly ids = new Map<string, string>();
  /** Approvals the replay decided itself (the recording has none for them). */
  private readonly assumed = new Map<string, "assumed">();
  /** The class a recorded result carried, for tools whose class depends on the result (memory.recall). */
  private lastClass: Classification | undefined;
  private tools!: ToolRegistry;
  /** Per connection: its tool of a name, made on first use. */
  private readonly stubs = new Map<string, (tool: string) => ToolDefinition | undefined>();

  constructor(
    private readonly options: ReplayOptions,
    private readonly store: Store,
    private readonly scratch: string,
  ) {
    this.recording = new Recording(options.recorded);
    this.project = options.project;
    this.env = options.env ?? process.env;
  }

  async run(): Promise<ReplayReport> {
    const started = this.options.recorded[0] as Extract<RunEvent, { type: "run.started" }>;
    const d = started.data;
    const workspace = this.project.workspace;
    this.tools = this.registry();
    if (this.recording.recalled > 0) {
      this.notes.push(
        `the recorded run recalled memory before ${this.recording.recalled} model call${this.recording.recalled === 1 ? "" : "s"}; the replay does not recall memory (its prompts carry none)`,
      );
    }

    // A delegated run sits under a stand-in parent, so depth and cycle bounds hold as they did.
    let parent: { runId: string; callId: string; rootRunId: string; depth: number; chain: string[] } | undefined;
    if (d.parent) {
      const { run: stand } = await this.store.createRun({ workspace, agent: d.parent.chain.at(-1) ?? d.agent, input: "(replay: parent)" });
      await this.store.applyExternal(workspace, { kind: "cancel", runId: stand.id, reason: "replay: stands in for the parent" });
      parent = { runId: stand.id, callId: d.parent.call_id, rootRunId: stand.id, depth: d.parent.depth, chain: d.parent.chain };
    }
    const context = [...(this.options.history ?? []), ...(d.context ?? [])];
    const { run } = await this.store.createRun({
      workspace,
      agent: d.agent,
      input: d.input,
      ...(context.length > 0 ? { context } : {}),
      ...(d.by !== undefined ? { startedBy: d.by } : {}),
      ...(d.tainted ? { tainted: d.tainted } : {}),
      ...(parent ? { parent } : {}),
    });
    if (this.options.runId) this.ids.set(run.id, this.options.runId);

    const deps = this.deps();
    const owner = newId("replay");
    let state: RunState = replay(run.id, await this.store.getEvents(run.id));
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const claimed = (await this.store.claimRuns(owner, 10, LEASE_MS)).find((c) => c.run.id === run.id);
      if (!claimed) break;
      await executeRun(deps, claimed, new RunControl());
      state = replay(run.id, await this.store.getEvents(run.id));
      if (state.terminal || !state.waiting) break;
      if (!(await this.resolveWait(run, state))) break;
    }
    return this.report(run, await this.store.getEvents(run.id));
  }

  /** Answers what the run waits for from the recording; false when it cannot (the replay stops there). */
  private async resolveWait(run: RunRecord, s: RunState): Promise<boolean> {
    const w = s.waiting;
    const workspace = run.workspace;
    if (w?.kind === "approval") {
      const call = s.calls.find((c) => c.approval?.id === w.approval_id);
      if (!call) return false;
      const args = parseArgs(call.argumentsText);
      const found = this.recording.take(this.recording.approvals, call.name, args);
      if (found && !found.entry.decision) {
        // The recorded run is waiting for this very approval: so does the replay.
        this.matches.push({ kind: "approval", tool: call.name, args, match: found.match, recordedCallId: found.entry.callId });
        this.notes.push(`the recorded run is still waiting for its approval of ${call.name}: the replay stops there too`);
        return false;
      }
      this.matches.push({
        kind: "approval",
        tool: call.name,
        args,
        match: found ? found.match : "not_recorded",
        ...(found ? { recordedCallId: found.entry.callId } : {}),
      });
      if (found) this.ids.set(w.approval_id, found.entry.callId);
      else this.assumed.set(w.approval_id, "assumed");
      const decision = found?.entry.decision ?? {
        decision: "approve" as const,
        reason: "replay: the recorded run has no approval for this; assumed approved to go on",
        by: "replay",
      };
      await this.store.applyExternal(workspace, { kind: "approval", approvalId: w.approval_id, ...decision });
      return true;
    }
    if (w?.kind === "children") {
      for (const call of s.calls) {
        if (!call.child || call.childResult || call.result) continue;
        await this.answerDelegation(run, call);
      }
      return true;
    }
    if (w?.kind === "event") {
      const event = this.recording.events.find((e) => !e.used && e.name === w.event);
      this.matches.push({ kind: "event", tool: WAIT_FOR_EVENT, args: { name: w.event }, match: event ? "exact" : "not_recorded" });
      if (!event) {
        this.notes.push(`the replay waits for event ${w.event}, which the recorded run never received: it stops there`);
        return false;
      }
      event.used = true;
      await this.store.applyExternal(workspace, { kind: "event", runId: run.id, name: w.event, payload: event.payload });
      return true;
    }
    if (w?.kind === "timer") {
      this.notes.push(`the replay waits on a timer (until ${w.until}${w.retry ? `, to retry ${w.retry}` : ""}): it stops there`);
      return false;
    }
    return false;
  }

  /** A delegation gets the recorded child's answer, or fails as not recorded. */
  private async answerDelegation(run: RunRecord, call: ToolCallState): Promise<void> {
    const child = call.child as NonNullable<ToolCallState["child"]>;
    const args = parseArgs(call.argumentsText);
    const found = this.recording.take(this.recording.children, call.name, args);
    const finished = found?.entry.finished ?? null;
    this.matches.push({
      kind: "delegation",
      tool: call.name,
      args,
      match: found && finished ? found.match : "not_recorded",
      ...(found ? { recordedCallId: found.entry.callId } : {}),
    });
    if (found) this.ids.set(child.runId, found.entry.childRunId);
    await this.store.applyExternal(run.workspace, {
      kind: "child",
      notice: {
        parentRunId: run.id,
        callId: call.id,
        callKey: call.key,
        childRunId: child.runId,
        agent: child.agent,
        ...(finished
          ? {
              status: finished.status,
              output: finished.output,
              error: finished.error,
              ...(finished.tainted ? { tainted: finished.tainted } : {}),
            }
          : {
              status: "failed" as const,
              output: null,
              error: {
                code: "not_recorded",
                message: `replay: the recorded run has no ${call.name} call${found ? " that finished" : ""} to answer this one with, so no child run was started`,
              },
            }),
      },
    });
  }

  /** Every tool the changed project offers, each answering from the recording instead of running. */
  private registry(): ToolRegistry {
    const project = this.project;
    const memory = new MemoryStore(this.store.domain, { embedder: createEmbedder(undefined, this.env) });
    const fixed = new Map<string, ToolDefinition>();
    // The same tools an Outpost offers (runtime/outpost.ts), but for the handlers.
    for (const t of [
      ...builtinTools,
      artifactsTool(this.store),
      ...memoryTools(memory),
      ...(project.context
        ? [
            contextLookupTool({
              types: project.context,
              tool: (name) => this.tools.get(name),
              connectionClassification: (name) => connectionOf(project, name)?.classification,
              cache: new ContextCache(this.store.domain),
            }),
          ]
        : []),
      ...collaborationTools(project),
      ...eventTools(project, eventSubscriptions(project), async () => ({ delivered: 0, started: 0 })),
      ...project.tools.values(),
    ]) {
      fixed.set(t.name, this.answering(t));
    }
    const sources = [...project.connections.values()].map((c) => this.recordedSource(c.name));
    return new ToolRegistry(fixed, sources);
  }

  /** A tool whose handler answers from the recording: the recorded result of the matching call, or an error. */
  private answering(tool: ToolDefinition): ToolDefinition {
    // Its properties as they are (getters stay getters: context.lookup's timeout reads the registry when asked).
    const wrapped = Object.defineProperties({}, Object.getOwnPropertyDescriptors(tool)) as ToolDefinition;
    Object.assign(wrapped, {
      handler: async ({ idempotencyKey, context }: Parameters<ToolDefinition["handler"]>[0]) => {
        // Matched on the model's own arguments (what it asked for), as both runs' logs hold them.
        const s = replay(context.runId, await this.store.getEvents(context.runId));
        const call = s.calls.find((c) => c.key === idempotencyKey);
        const args = call ? parseArgs(call.argumentsText) : {};
        const found = this.recording.take(this.recording.results, tool.name, args);
        this.matches.push({
          kind: "tool",
          tool: tool.name,
          args,
          match: found ? found.match : "not_recorded",
          ...(found ? { recordedCallId: found.entry.callId } : {}),
        });
        if (!found) {
          throw new Error(
            `not recorded: the recorded run made no ${tool.name} call to answer this one (${brief(args, 120)}), so the replay did not run it`,
          );
        }
        this.lastClass = found.entry.classification;
        const prefix = `error: ${tool.name} failed: `;
        if (found.entry.isError)
          throw new Error(found.entry.output.startsWith(prefix) ? found.entry.output.slice(prefix.length) : found.entry.output);
        return found.entry.output;
      },
    });
    // What the recorded result's class was (memory.recall's depends on what it returned).
    if (tool.resultClassification) wrapped.resultClassification = () => this.lastClass;
    else delete wrapped.resultClassification;
    return wrapped;
  }

  /**
   * A connection's tools as the recording knows them (the system itself is not contacted): the ones the run called
   * and the ones agents name, with the connection's settings, taking any other name of it as a tool too (its call
   * is then not recorded). Their input schemas are unknown offline: any JSON object is taken.
   */
  private recordedSource(name: string): ToolSource {
    const connection = this.project.connections.get(name);
    const prefix = `${name}.`;
    const names = new Set<string>();
    for (const t of this.recording.tools.keys()) if (t.startsWith(prefix)) names.add(t);
    for (const a of this.project.agents.values())
      for (const t of a.tools) if (t.name.startsWith(prefix) && !t.name.endsWith(".*")) names.add(t.name);
    // Settings, include and exclude name the remote tool; its Outpost name is normalized (`echoMeta` → `echo_meta`).
    const named = (remotes: string[] | undefined, local: string) =>
      (remotes ?? []).some((r) => r === local || normalizeToolName(r) === local);
    const offered = (local: string) => (!connection?.include || named(connection.include, local)) && !named(connection?.exclude, local);
    const tools = new Map<string, ToolDefinition>();
    const stub = (tool: string): ToolDefinition | undefined => {
      const local = tool.slice(prefix.length);
      if (!local || !offered(local)) return undefined;
      let def = tools.get(tool);
      if (!def) {
        const remote = Object.keys(connection?.tools ?? {}).find((r) => named([r], local));
        const settings = (remote !== undefined ? connection?.tools[remote] : undefined) ?? {};
        const recorded = this.recording.tools.get(tool)?.sideEffects;
        def = this.answering({
          name: tool,
          description: `${tool} (its system is not contacted in a replay: its result comes from the recorded run)`,
          input: z.record(z.string(), z.unknown()),
          sideEffects: settings.sideEffects ?? recorded ?? true,
          ...(settings.approval ? { approval: settings.approval } : {}),
          ...((settings.classification ?? connection?.classification)
            ? { classification: settings.classification ?? connection?.classification }
            : {}),
          ...((settings.timeoutMs ?? connection?.timeoutMs) ? { timeoutMs: settings.timeoutMs ?? connection?.timeoutMs } : {}),
          handler: () => undefined,
        });
        tools.set(tool, def);
      }
      return def;
    };
    for (const t of names) stub(t);
    this.stubs.set(name, stub);
    return {
      name,
      start: async () => undefined,
      tools: () => [...tools.values()],
      status: () => ({ state: "ready", tools: tools.size }),
      close: async () => undefined,
    };
  }

  private deps(): Parameters<typeof executeRun>[0] {
    const project = this.project;
    const engine = createPolicyEngine(project);
    const registry = this.tools;
    const tools = {
      get: (name: string) => {
        const found = registry.get(name);
        if (found) return found;
        // A tool of a connection the recording never saw (an agent using `<connection>.*`): answered as not recorded.
        const dot = name.indexOf(".");
        return dot > 0 ? this.stubs.get(name.slice(0, dot))?.(name) : undefined;
      },
    };
    const collaboration: Collaboration = {
      startChild: async ({ parentRun, parent, call, agent, task }) => {
        // A child run exists (the parent's log links to it) but never runs: its answer comes from the recording.
        const { run } = await this.store.createRun({
          workspace: parentRun.workspace,
          agent,
          input: task,
          idempotencyKey: `delegate:${call.key}`,
          startedBy: parent.by,
          parent: childLink(parent, parentRun, call),
        });
        await this.store.applyExternal(parentRun.workspace, {
          kind: "cancel",
          runId: run.id,
          reason: "replay: answered from the recording",
        });
        return run.id;
      },
      cancelRuns: async () => undefined,
      notifyParent: async () => undefined,
      setSessionAgent: (workspace, sessionId, agent) => this.store.setSessionAgent(workspace, sessionId, agent),
    };
    return {
      store: this.store,
      project,
      tools,
      collaboration,
      modelsFor: (agent) => this.modelsFor(agent),
      toolSpecsFor: (agent) => registry.specsFor(agent),
      policy: engine,
      governanceFor: (run) =>
        runGovernance({
          project,
          engine,
          workspace: run.workspace,
          runId: run.id,
          ...(project.approvalTtlMs !== undefined ? { approvalTtlMs: project.approvalTtlMs } : {}),
        }),
      dataDir: this.scratch,
      publish: () => undefined,
      log: {
        warn: () => undefined,
        error: (obj, msg) => this.notes.push(`${msg}${(obj as { err?: string }).err ? `: ${(obj as { err?: string }).err}` : ""}`),
      },
    };
  }

  /** The agent's usable models, as an Outpost routes them (runtime/outpost.ts modelsFor). */
  private modelsFor(agent: AgentDefinition): ModelRoute[] {
    return modelRoutes(agent, { project: this.project, env: this.env, modelFor: this.options.modelFor, clients: this.models });
  }

  private report(run: RunRecord, events: RunEvent[]): ReplayReport {
    // The replay's own ids (run, approvals, child runs) read as the recorded ones they stand for.
    const swap = (e: RunEvent): RunEvent => {
      if (this.ids.size === 0) return e;
      let text = JSON.stringify(e.data);
      for (const [mine, theirs] of this.ids) text = text.replaceAll(mine, theirs);
      return { ...e, data: JSON.parse(text) } as RunEvent;
    };
    const assumed = new Map([...this.assumed].map(([id, v]) => [this.ids.get(id) ?? id, v] as const));
    const rows = alignTraces(traceOf(this.options.recorded), traceOf(events.map(swap), assumed));
    const first = rows.find((r) => r.status !== "same");
    const s = replay(run.id, events);
    const recordedEnd = traceOf(this.options.recorded).at(-1) as Extract<TraceStep, { kind: "end" }>;
    const started = this.options.recorded[0] as Extract<RunEvent, { type: "run.started" }>;
    const byOrder = this.matches.filter((m) => m.match === "by_order").length;
    if (byOrder > 0) {
      this.notes.push(
        `${byOrder} call${byOrder === 1 ? " was" : "s were"} answered with the result of a recorded call of the same tool with other arguments (by order)`,
      );
    }
    return {
      identical: !first,
      divergedAt: first?.step ?? null,
      summary: summaryOf(rows),
      rows,
      recorded: { runId: this.options.runId ?? null, agent: started.data.agent, status: recordedEnd.status },
      replay: {
        status: s.terminal?.status ?? (s.waiting ? "waiting" : "running"),
        output: s.terminal?.status === "completed" ? s.terminal.output : null,
        error: s.terminal && s.terminal.status !== "completed" ? s.terminal.error : null,
      },
      matches: this.matches,
      notes: this.notes,
    };
  }
}
