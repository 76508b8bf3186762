/**
 * Spans from the run event log. A run's trace is derived from the events its executor commits, not from timers
 * around calls: the log is what happened, it carries the times, and it survives the process. Ids are derived from
 * run ids (a trace per delegation tree, a span per run, model call, tool call and workflow step), so a run resumed
 * by another worker after a crash continues the same trace, and a child run nests under the call that delegated it.
 *
 * Pure: `SpanBuilder.observe` takes one committed event and returns the spans it finished. What a span carries
 * follows the OpenTelemetry GenAI conventions (`invoke_agent`, `chat`, `execute_tool`); it never carries content
 * (prompts, answers, tool arguments or results), only names, counts, codes and ids.
 */
import { createHash } from "node:crypto";

export type SpanKind = "internal" | "client";
export type AttributeValue = string | number | boolean | string[];

export interface SpanRecord {
  traceId: string;
  spanId: string;
  /** Absent for the root run of a tree. */
  parentSpanId?: string;
  name: string;
  kind: SpanKind;
  /** Epoch ms. */
  start: number;
  end: number;
  attributes: Record<string, AttributeValue>;
  /** Set when the operation failed: `error.type` is among the attributes too. */
  error?: { message: string };
}

/** What the builder needs to know of a run besides its events (the run record as claimed). */
export interface RunMeta {
  id: string;
  workspace: string;
  agent: string;
  sessionId: string;
  rootRunId: string;
  parentRunId: string | null;
  parentCallId: string | null;
  createdAt: number;
  /** The run's committed totals when it was claimed: the run span reports these plus what followed. */
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

const hex = (text: string, chars: number) => createHash("sha256").update(text).digest("hex").slice(0, chars);

/** The trace of a delegation tree: every run in it shares its root's. */
export const traceIdOf = (rootRunId: string) => hex(`trace:${rootRunId}`, 32);
export const runSpanIdOf = (runId: string) => hex(`run:${runId}`, 16);
const toolSpanIdOf = (runId: string, callId: string) => hex(`tool:${runId}:${callId}`, 16);
const modelSpanIdOf = (runId: string, step: number) => hex(`model:${runId}:${step}`, 16);
const stepSpanIdOf = (runId: string, path: string, attempt: number) => hex(`step:${runId}:${path}:${attempt}`, 16);

const WORKFLOW_PREFIX = "workflow:";

interface Open {
  start: number;
  attributes: Record<string, AttributeValue>;
}

interface RunTrack {
  meta: RunMeta;
  /** When this process took the run up: the start of a span whose opening event an earlier process committed. */
  claimedAt: number;
  open: Map<string, Open>;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  /** What is learnt of a tool call before its span ends (policy effect, approval, child run), by call id. */
  calls: Map<string, Record<string, AttributeValue>>;
}

type Data = Record<string, unknown>;

export interface SpanBuilderOptions {
  /** The provider of an agent's model (`gen_ai.provider.name`), e.g. `openai`; undefined when unknown. */
  providerOf?: (agent: string) => string | undefined;
}

export class SpanBuilder {
  private readonly runs = new Map<string, RunTrack>();

  constructor(private readonly options: SpanBuilderOptions = {}) {}

  /**
   * The process took up a run (claimed it); its events follow through `observe`. `history`, the log as it stood:
   * read again (its spans were exported by whoever committed it), it reopens what is still open — a tool call that
   * waited for a person or a child keeps its start and what was learnt of it.
   */
  claim(meta: RunMeta, now: number, history?: readonly { type: string; data: unknown; at: number }[]): void {
    if (this.runs.has(meta.id)) return;
    const fromLog = history !== undefined;
    this.runs.set(meta.id, {
      meta,
      claimedAt: now,
      open: new Map(),
      inputTokens: fromLog ? 0 : meta.inputTokens,
      outputTokens: fromLog ? 0 : meta.outputTokens,
      costUsd: fromLog ? 0 : meta.costUsd,
      calls: new Map(),
    });
    for (const e of history ?? []) this.observe(meta.id, e.type, e.data as Data, e.at);
    if (!this.runs.has(meta.id)) this.claim(meta, now); // the log had ended: follow it as claimed, with its totals
  }

  /** The process let go of a run (it waits, or was handed back): what is open stays open for whoever resumes it. */
  release(runId: string): void {
    this.runs.delete(runId);
  }

  /** Runs this builder follows (for tests and leak checks). */
  get size(): number {
    return this.runs.size;
  }

  observe(runId: string, type: string, data: Data, at: number): SpanRecord[] {
    const t = this.runs.get(runId);
    if (!t) return [];
    const id = t.meta.id;
    switch (type) {
      case "model.called": {
        const step = data.step as number;
        t.open.set(`model:${step}`, { start: at, attributes: { "gen_ai.request.model": String(data.model ?? "") } });
        return [];
      }
      case "model.responded":
      case "model.failed": {
        const step = data.step as number;
        const opened = this.take(t, `model:${step}`);
        const usage = data.usage as { input_tokens: number; output_tokens: number } | undefined;
        const attributes: Record<string, AttributeValue> = {
          ...this.genAi(t, "chat"),
          ...opened.attributes,
          "outpost.step": step,
        };
        const provider = this.options.providerOf?.(t.meta.agent);
        if (provider) attributes["gen_ai.provider.name"] = provider;
        if (usage) {
          t.inputTokens += usage.input_tokens;
          t.outputTokens += usage.output_tokens;
          t.costUsd += (data.cost_usd as number) ?? 0;
          attributes["gen_ai.response.model"] = String(data.model);
          attributes["gen_ai.usage.input_tokens"] = usage.input_tokens;
          attributes["gen_ai.usage.output_tokens"] = usage.output_tokens;
          attributes["gen_ai.response.finish_reasons"] = [String(data.finish_reason)];
          attributes["outpost.cost_usd"] = (data.cost_usd as number) ?? 0;
          const calls = (data.tool_calls as unknown[] | undefined)?.length ?? 0;
          if (calls > 0) attributes["outpost.tool_calls"] = calls;
        }
        const name = `chat ${attributes["gen_ai.request.model"] || attributes["gen_ai.response.model"] || ""}`.trim();
        const error = type === "model.failed" ? (data.error as { code: string; message: string }) : undefined;
        return [this.span(t, modelSpanIdOf(id, step), runSpanIdOf(id), name, "client", opened.start, at, attributes, error)];
      }
      case "context.compacted": {
        // The summarising call: one span, its start unknown to the log (it is committed with its result).
        const usage = data.usage as { input_tokens: number; output_tokens: number };
        t.inputTokens += usage.input_tokens;
        t.outputTokens += usage.output_tokens;
        t.costUsd += (data.cost_usd as number) ?? 0;
        return [];
      }
      case "policy.decided": {
        if (typeof data.call_id === "string") this.learn(t, data.call_id, "outpost.policy.effect", String(data.effect));
        return [];
      }
      case "tool.called": {
        t.open.set(`tool:${data.call_id}`, {
          start: at,
          attributes: { "gen_ai.tool.name": String(data.tool), "outpost.idempotency_key": String(data.idempotency_key) },
        });
        return [];
      }
      case "approval.requested": {
        this.learn(t, String(data.call_id), "outpost.approval.id", String(data.approval_id));
        return [];
      }
      case "delegation.started": {
        // A delegation is not called like a tool: its span starts with the child.
        const key = `tool:${data.call_id}`;
        if (!t.open.has(key)) t.open.set(key, { start: at, attributes: {} });
        this.learn(t, String(data.call_id), "outpost.child_run.id", String(data.child_run_id));
        return [];
      }
      case "tool.completed": {
        const callId = String(data.call_id);
        // A call refused before it ran (by policy, a bound, malformed arguments) has no tool.called: a span of no length.
        const opened = this.take(t, `tool:${callId}`, at);
        const attributes: Record<string, AttributeValue> = {
          ...this.genAi(t, "execute_tool"),
          "gen_ai.tool.name": String(data.tool),
          "gen_ai.tool.call.id": callId,
          "gen_ai.tool.type": "function",
          ...opened.attributes,
          ...t.calls.get(callId),
        };
        const effect = t.calls.get(callId)?.["outpost.policy.effect"];
        t.calls.delete(callId);
        const error = data.is_error
          ? {
              code: data.model_error ? "invalid_arguments" : effect === "deny" ? "policy_denied" : "tool_error",
              message: "the call failed",
            }
          : undefined;
        const span = this.span(
          t,
          toolSpanIdOf(id, callId),
          runSpanIdOf(id),
          `execute_tool ${data.tool}`,
          "internal",
          opened.start,
          at,
          attributes,
          error,
        );
        return [span];
      }
      case "step.started": {
        const key = `step:${data.path}:${data.attempt}`;
        t.open.set(key, {
          start: at,
          attributes: {
            "outpost.step.path": String(data.path),
            "outpost.step.kind": String(data.kind),
            "outpost.step.attempt": data.attempt as number,
          },
        });
        return [];
      }
      case "step.completed":
      case "step.failed": {
        // step.completed carries no attempt: the open one for its path is the only one there can be.
        const path = String(data.path);
        const key = type === "step.failed" ? `step:${path}:${data.attempt}` : [...t.open.keys()].find((k) => k.startsWith(`step:${path}:`));
        const attempt = key ? Number(key.slice(`step:${path}:`.length)) : 1;
        const opened = this.take(t, key ?? `step:${path}:1`);
        const error = type === "step.failed" ? (data.error as { code: string; message: string }) : undefined;
        const attributes = { ...this.base(t), ...opened.attributes };
        return [
          this.span(t, stepSpanIdOf(id, path, attempt), runSpanIdOf(id), `step ${path}`, "internal", opened.start, at, attributes, error),
        ];
      }
      case "run.completed":
      case "run.failed":
      case "run.cancelled": {
        const workflow = t.meta.agent.startsWith(WORKFLOW_PREFIX);
        const operation = workflow ? "invoke_workflow" : "invoke_agent";
        const name = workflow ? t.meta.agent.slice(WORKFLOW_PREFIX.length) : t.meta.agent;
        const attributes: Record<string, AttributeValue> = {
          ...this.genAi(t, operation),
          "gen_ai.conversation.id": t.meta.sessionId,
          "gen_ai.usage.input_tokens": t.inputTokens,
          "gen_ai.usage.output_tokens": t.outputTokens,
          "outpost.cost_usd": t.costUsd,
          "outpost.run.status": type.slice("run.".length),
        };
        if (workflow) attributes["gen_ai.workflow.name"] = name;
        const parent = t.meta.parentRunId && t.meta.parentCallId ? toolSpanIdOf(t.meta.parentRunId, t.meta.parentCallId) : undefined;
        const error =
          type === "run.failed"
            ? (data.error as { code: string; message: string })
            : type === "run.cancelled"
              ? { code: "cancelled", message: String(data.reason) }
              : undefined;
        this.runs.delete(runId);
        return [this.span(t, runSpanIdOf(id), parent, `${operation} ${name}`, "internal", t.meta.createdAt, at, attributes, error)];
      }
      default:
        return [];
    }
  }

  /** The opened span under `key`; else one starting at `at` when given (an operation with no opening event), else at
   * the claim, marked resumed (its opening event came from a process before this one). */
  private take(t: RunTrack, key: string, at?: number): Open {
    const o = t.open.get(key);
    t.open.delete(key);
    if (o) return o;
    return at !== undefined ? { start: at, attributes: {} } : { start: t.claimedAt, attributes: { "outpost.resumed": true } };
  }

  private learn(t: RunTrack, callId: string, key: string, value: AttributeValue): void {
    const known = t.calls.get(callId);
    if (known) known[key] = value;
    else t.calls.set(callId, { [key]: value });
  }

  private base(t: RunTrack): Record<string, AttributeValue> {
    return { "outpost.workspace": t.meta.workspace, "outpost.run.id": t.meta.id };
  }

  private genAi(t: RunTrack, operation: string): Record<string, AttributeValue> {
    return { ...this.base(t), "gen_ai.operation.name": operation, "gen_ai.agent.name": t.meta.agent };
  }

  private span(
    t: RunTrack,
    spanId: string,
    parentSpanId: string | undefined,
    name: string,
    kind: SpanKind,
    start: number,
    end: number,
    attributes: Record<string, AttributeValue>,
    error?: { code: string; message: string },
  ): SpanRecord {
    const s: SpanRecord = { traceId: traceIdOf(t.meta.rootRunId), spanId, name, kind, start: Math.min(start, end), end, attributes };
    if (parentSpanId) s.parentSpanId = parentSpanId;
    if (error) {
      s.attributes["error.type"] = error.code;
      s.error = { message: error.message };
    }
    return s;
  }
}
