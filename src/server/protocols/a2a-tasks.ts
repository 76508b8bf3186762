/**
 * Outpost runs as A2A tasks: the request handler behind `/a2a/<agent>`.
 *
 * A task IS a run. The task id is the run id and the contextId is the run's
 * session; a task's state, messages and artifact are read from the run each
 * time. Nothing about a task is kept in memory, so a task is answered for after
 * a restart, by any Outpost process on the same database, and never stale: the
 * run, moved on by whichever worker holds it, is the only state.
 *
 * Mapping:
 * - a message starts a run of the endpoint's agent; its text parts, joined, are
 *   the input; `contextId` continues that session when it exists (else a new
 *   one, whose id comes back as the contextId); the `messageId` makes a
 *   retried message return the same task. A continued session is answered by
 *   this endpoint's agent (even where the conversation was handed off since).
 *   A message naming a `taskId` is refused: a task takes one message.
 * - run status → task state: queued → submitted (working once it has made
 *   progress), running → working, waiting for an approval or an external event
 *   → input-required (the status message says what it waits for: nothing the
 *   A2A client can send), waiting for a timer or delegated runs → working,
 *   completed → completed (the output as artifact and agent message), failed →
 *   failed (with the reason), cancelled → canceled.
 * - held up by another run: a task waiting for the runs it delegated to (at any
 *   depth), or queued behind an earlier run of its session, is input-required
 *   when one of those runs waits for an approval or an external event; the
 *   status message names that run and what it waits for (while waiting for
 *   children or queued, the runs it depends on are looked through every few
 *   hundred milliseconds).
 * - tasks of this agent only: a run of another agent, or one that another run
 *   delegated to, is "task not found" here.
 */
import {
  type AgentCard,
  type Artifact,
  type CancelTaskRequest,
  type GetTaskRequest,
  type ListTaskPushNotificationConfigsResponse,
  type ListTasksResponse,
  type Message,
  type Part,
  Role,
  type SendMessageRequest,
  type StreamResponse,
  type SubscribeToTaskRequest,
  type Task,
  type TaskPushNotificationConfig,
  TaskState,
  type TaskStatus,
} from "@a2a-js/sdk";
import {
  A2AError,
  ExtendedAgentCardNotConfiguredError,
  PushNotificationNotSupportedError,
  RequestMalformedError,
  TaskNotCancelableError,
  TaskNotFoundError,
  UnsupportedOperationError,
} from "@a2a-js/sdk/errors";
import type { A2ARequestHandler } from "@a2a-js/sdk/server";
import type { FastifyBaseLogger } from "fastify";
import { type AgentView, type EventView, isTerminal, type OutpostApi, type RunView, type WaitingFor } from "../../core/api.js";
import { OutpostError } from "../../core/errors.js";
import { findHeldUp, needsSomeone, sameWait, type Waiting, watchHeldUp } from "./follow.js";

export interface RunTasksOptions {
  api: OutpostApi;
  agent: AgentView;
  card: AgentCard;
  /** Aborted when the client goes away or the server shuts down: ends waits and streams. */
  signal: AbortSignal;
  log: FastifyBaseLogger;
  requestId: string;
}

/** How long `tasks/cancel` waits for a worker to stop a run it holds before answering with the task as it is. */
const CANCEL_WAIT_MS = 10_000;
const CANCEL_REASON = "cancelled by the A2A client";

const TERMINAL_STATES = new Set([TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED]);
/** States after which a stream (and a blocking send) ends: terminal, or waiting for something from outside. */
const isFinal = (s: TaskState) => TERMINAL_STATES.has(s) || s === TaskState.TASK_STATE_INPUT_REQUIRED;

const STATE_NAMES: Record<number, string> = {
  [TaskState.TASK_STATE_SUBMITTED]: "submitted",
  [TaskState.TASK_STATE_WORKING]: "working",
  [TaskState.TASK_STATE_COMPLETED]: "completed",
  [TaskState.TASK_STATE_FAILED]: "failed",
  [TaskState.TASK_STATE_CANCELED]: "canceled",
  [TaskState.TASK_STATE_INPUT_REQUIRED]: "input-required",
};
const stateName = (s: TaskState) => STATE_NAMES[s] ?? String(s);

export class RunTasks implements A2ARequestHandler {
  private readonly api: OutpostApi;
  private readonly agent: AgentView;

  constructor(private readonly options: RunTasksOptions) {
    this.api = options.api;
    this.agent = options.agent;
  }

  async getAgentCard(): Promise<AgentCard> {
    return this.options.card;
  }

  async getAuthenticatedExtendedAgentCard(): Promise<AgentCard> {
    throw new ExtendedAgentCardNotConfiguredError("this agent has no extended card; its public card is all there is");
  }

  async sendMessage(params: SendMessageRequest): Promise<Message | Task> {
    return this.guard(async () => {
      const run = await this.start(params);
      const historyLength = params.configuration?.historyLength;
      if (params.configuration?.returnImmediately) return this.taskOf(run, historyLength);
      // Blocking: until the task ends or waits for something from outside, or for a distant time (the client may leave sooner).
      const state = await this.stateOf(run);
      if (!isFinal(state.state) && !endsBlockingSend(run.waiting_for)) await this.untilBlockingSendEnds(run);
      return this.taskOf(await this.api.getRun(run.id), historyLength);
    });
  }

  async *sendMessageStream(params: SendMessageRequest): AsyncGenerator<StreamResponse, void, undefined> {
    const run = await this.guard(() => this.start(params));
    const task = await this.guard(() => this.taskOf(run));
    yield { payload: { $case: "task", value: task } };
    const state = task.status?.state ?? TaskState.TASK_STATE_SUBMITTED;
    // A retried message may find its task already over: the snapshot says it all.
    if (isFinal(state)) return;
    yield* this.follow(run, 0, state);
  }

  async getTask(params: GetTaskRequest): Promise<Task> {
    return this.guard(async () => this.taskOf(await this.ownRun(params.id), params.historyLength));
  }

  async cancelTask(params: CancelTaskRequest): Promise<Task> {
    return this.guard(async () => {
      const run = await this.ownRun(params.id);
      if (run.status === "cancelled") return this.taskOf(run);
      if (run.status === "completed" || run.status === "failed") throw notCancelable(run);
      let after: RunView;
      try {
        after = await this.api.cancelRun(run.id, CANCEL_REASON);
      } catch (err) {
        // It ended meanwhile.
        if (err instanceof OutpostError && err.code === "conflict") throw notCancelable(await this.api.getRun(run.id));
        throw err;
      }
      if (!isTerminal(after.status)) {
        // A worker holds the run: it stops at its next step (or at once, for a model or tool call in flight).
        const signal = AbortSignal.any([this.options.signal, AbortSignal.timeout(CANCEL_WAIT_MS)]);
        for await (const e of this.api.streamEvents(run.id, { signal })) void e;
        after = await this.api.getRun(run.id);
      }
      return this.taskOf(after);
    });
  }

  async *resubscribe(params: SubscribeToTaskRequest): AsyncGenerator<StreamResponse, void, undefined> {
    const { run, last, tools } = await this.guard(async () => {
      const r = await this.ownRun(params.id);
      const log = await this.api.getEvents(r.id);
      return { run: r, last: log.at(-1)?.seq ?? 0, tools: approvalTools(log) };
    });
    const { task, heldUp } = await this.guard(() => this.snapshot(run, undefined, tools));
    const state = task.status?.state ?? TaskState.TASK_STATE_SUBMITTED;
    if (TERMINAL_STATES.has(state)) {
      throw new UnsupportedOperationError(`task ${run.id} is already ${stateName(state)}; read it with tasks/get`);
    }
    yield { payload: { $case: "task", value: task } };
    // A subscriber to a task that waits (for an approval, say) follows it to what comes next.
    yield* this.follow(run, last, state, tools, heldUp);
  }

  async listTasks(): Promise<ListTasksResponse> {
    throw new UnsupportedOperationError(
      "listing tasks is not supported here; keep the task ids you were given and read each with tasks/get",
    );
  }

  async createTaskPushNotificationConfig(): Promise<TaskPushNotificationConfig> {
    throw noPush();
  }
  async getTaskPushNotificationConfig(): Promise<TaskPushNotificationConfig> {
    throw noPush();
  }
  async listTaskPushNotificationConfigs(): Promise<ListTaskPushNotificationConfigsResponse> {
    throw noPush();
  }
  async deleteTaskPushNotificationConfig(): Promise<void> {
    throw noPush();
  }

  // ---- runs ----

  /** Starts the run a message asks for (or finds it again, for a retried message). */
  private async start(params: SendMessageRequest): Promise<RunView> {
    const message = params.message;
    if (!message)
      throw new RequestMalformedError('params.message is required: {"message": {"role": "ROLE_USER", "parts": [{"text": "…"}], …}}');
    if (message.taskId) {
      // Every message is a task of its own here; a task takes no further input over A2A.
      const run = await this.ownRun(message.taskId);
      const { state } = await this.stateOf(run);
      throw new UnsupportedOperationError(
        `task ${run.id} is ${stateName(state)} and takes no further messages: send a new message without taskId, ` +
          `with contextId "${run.session_id}" to continue the conversation` +
          (run.waiting_for?.kind === "approval" ? `; the approval it waits for is decided by a person in Outpost` : ""),
      );
    }
    const input = inputOf(message);
    const session = message.contextId ? await this.existingSession(message.contextId) : undefined;
    try {
      return await this.api.startRun({
        agent: this.agent.name,
        input,
        ...(session ? { session_id: session } : {}),
        ...(message.messageId ? { idempotency_key: `a2a:${this.agent.name}:${message.messageId}` } : {}),
      });
    } catch (err) {
      if (err instanceof OutpostError && err.code === "conflict") {
        throw new RequestMalformedError(
          `messageId "${message.messageId}" was already used for a different message; give every new message a new messageId (a retry reuses it)`,
        );
      }
      throw err;
    }
  }

  private async existingSession(contextId: string): Promise<string | undefined> {
    try {
      return (await this.api.getSession(contextId)).id;
    } catch (err) {
      if (err instanceof OutpostError && err.code === "not_found") return undefined;
      throw err;
    }
  }

  /** The run behind a task of this agent; anything else is "task not found". */
  private async ownRun(id: string): Promise<RunView> {
    if (typeof id !== "string" || id.trim() === "") throw new RequestMalformedError('params.id is required: the task id ("run_…")');
    let run: RunView;
    try {
      run = await this.api.getRun(id);
    } catch (err) {
      if (err instanceof OutpostError && err.code === "not_found") throw taskNotFound(id);
      throw err;
    }
    // A run keeps the agent it started with (through handoffs); runs that other runs delegated to are theirs, not tasks.
    if (run.agent !== this.agent.name || run.parent_run_id) throw taskNotFound(id);
    return run;
  }

  // ---- tasks ----

  private async stateOf(run: RunView, tools?: Map<string, string>): Promise<{ state: TaskState; message?: Message; heldUp?: Waiting }> {
    const w = run.status === "waiting" ? run.waiting_for : null;
    if (run.status === "queued" || w?.kind === "children") {
      // Held up by a run it delegated to, or by an earlier run of its session, that waits for someone outside.
      const heldUp = await findHeldUp(this.api, run, outside);
      if (heldUp) return { state: TaskState.TASK_STATE_INPUT_REQUIRED, message: heldUpMessage(run.id, run.session_id, heldUp), heldUp };
    }
    switch (run.status) {
      case "queued":
        return { state: run.steps > 0 ? TaskState.TASK_STATE_WORKING : TaskState.TASK_STATE_SUBMITTED };
      case "running":
        return { state: TaskState.TASK_STATE_WORKING };
      case "waiting": {
        if (!w) return { state: TaskState.TASK_STATE_WORKING };
        const tool = w.kind === "approval" ? (tools?.get(w.approval_id) ?? (await this.approvalTool(run.id, w.approval_id))) : undefined;
        return {
          state: waitsForOutside(w) ? TaskState.TASK_STATE_INPUT_REQUIRED : TaskState.TASK_STATE_WORKING,
          message: agentMessage(run.id, run.session_id, `waiting-${w.kind}`, waitingText(run.id, w, tool)),
        };
      }
      case "completed":
        return { state: TaskState.TASK_STATE_COMPLETED, message: outputMessage(run.id, run.session_id, run.output ?? "") };
      case "failed":
        return { state: TaskState.TASK_STATE_FAILED, message: agentMessage(run.id, run.session_id, "failed", failedText(run.error)) };
      case "cancelled":
        return {
          state: TaskState.TASK_STATE_CANCELED,
          message: agentMessage(run.id, run.session_id, "cancelled", cancelledText(run.error?.message)),
        };
    }
  }

  private async approvalTool(runId: string, approvalId: string): Promise<string | undefined> {
    return approvalTools(await this.api.getEvents(runId)).get(approvalId);
  }

  private async taskOf(run: RunView, historyLength?: number, tools?: Map<string, string>): Promise<Task> {
    return (await this.snapshot(run, historyLength, tools)).task;
  }

  /** The task, and the wait of another run that holds it up, if one does. */
  private async snapshot(run: RunView, historyLength?: number, tools?: Map<string, string>): Promise<{ task: Task; heldUp?: Waiting }> {
    const { state, message, heldUp } = await this.stateOf(run, tools);
    const history: Message[] = [inputMessage(run)];
    const artifacts: Artifact[] = [];
    if (run.status === "completed") {
      history.push(outputMessage(run.id, run.session_id, run.output ?? ""));
      artifacts.push(outputArtifact(run.id, run.output ?? ""));
    }
    const status: TaskStatus = { state, message, timestamp: run.updated_at };
    const task: Task = {
      id: run.id,
      contextId: run.session_id,
      status,
      artifacts,
      history: historyLength === undefined ? history : historyLength <= 0 ? [] : history.slice(-historyLength),
      metadata: {
        outpost: {
          agent: run.agent,
          run_status: run.status,
          ...(run.waiting_for ? { waiting_for: run.waiting_for } : {}),
          ...(heldUp ? { held_up_by: { ...heldUp } } : {}),
        },
      },
    };
    return heldUp ? { task, heldUp } : { task };
  }

  /** Until the run ends, waits for something from outside (itself, or a run holding it up), or for a distant time. */
  private async untilBlockingSendEnds(run: RunView): Promise<void> {
    const done = new AbortController();
    const signal = AbortSignal.any([this.options.signal, done.signal]);
    const watch = watchHeldUp(this.api, run.id, { signal, counts: needsSomeone });
    const iterator = this.api.streamEvents(run.id, { signal })[Symbol.asyncIterator]();
    watch.arm(); // it may be queued behind an earlier run of its session
    try {
      for (;;) {
        const next = await Promise.race([iterator.next(), watch.found]);
        if ("waiting" in next || next.done) return;
        const e = next.value;
        if (e.type !== "run.waiting") continue;
        const w = e.data.for as WaitingFor;
        if (w.kind === "children") watch.arm();
        // A retried message replays the log from its start: only a wait the run is still in ends the send.
        else if (endsBlockingSend(w) && sameWait(await this.api.getRun(run.id), w)) return;
      }
    } finally {
      stopFollowing(watch, done, iterator);
    }
  }

  /**
   * The run's progress as A2A stream events, until the task ends or waits for something from outside (itself, or
   * a run holding it up). `known`: a wait of another run that the subscriber was already told about.
   */
  private async *follow(
    run: RunView,
    after: number,
    initial: TaskState,
    tools = new Map<string, string>(),
    known?: Waiting,
  ): AsyncGenerator<StreamResponse, void, undefined> {
    const taskId = run.id;
    const contextId = run.session_id;
    let state = initial;
    const status = (next: TaskState, message?: Message, at?: string): StreamResponse => {
      state = next;
      return {
        payload: {
          $case: "statusUpdate",
          value: { taskId, contextId, status: { state: next, message, timestamp: at ?? new Date().toISOString() }, metadata: undefined },
        },
      };
    };
    const done = new AbortController();
    const signal = AbortSignal.any([this.options.signal, done.signal]);
    const watch = watchHeldUp(this.api, run.id, { signal, counts: (w) => outside(w) && !(known && sameHeldUp(w, known)) });
    const iterator = this.api.streamEvents(run.id, { after, signal })[Symbol.asyncIterator]();
    watch.arm(); // it may be queued behind an earlier run of its session
    try {
      for (;;) {
        const next = await this.guard(() => Promise.race([iterator.next(), watch.found]));
        if ("waiting" in next) {
          yield status(TaskState.TASK_STATE_INPUT_REQUIRED, heldUpMessage(taskId, contextId, next.waiting));
          return;
        }
        if (next.done) return;
        const e: EventView = next.value;
        const d = e.data;
        switch (e.type) {
          case "model.called":
          case "model.responded":
            if (state !== TaskState.TASK_STATE_WORKING) yield status(TaskState.TASK_STATE_WORKING, undefined, e.at);
            break;
          case "tool.called":
            yield status(
              TaskState.TASK_STATE_WORKING,
              agentMessage(taskId, contextId, `tool-${e.seq}`, `Calling ${String(d.tool)}.`),
              e.at,
            );
            break;
          case "approval.requested":
            tools.set(String(d.approval_id), String(d.tool));
            break;
          case "run.waiting": {
            const w = d.for as WaitingFor;
            if (w.kind === "children") watch.arm();
            // A retried message replays the log from its start: a wait the run is no longer in is history.
            if (waitsForOutside(w) && !sameWait(await this.guard(() => this.api.getRun(taskId)), w)) break;
            const next = waitsForOutside(w) ? TaskState.TASK_STATE_INPUT_REQUIRED : TaskState.TASK_STATE_WORKING;
            const tool = w.kind === "approval" ? tools.get(w.approval_id) : undefined;
            yield status(next, agentMessage(taskId, contextId, `waiting-${w.kind}`, waitingText(taskId, w, tool)), e.at);
            if (isFinal(state)) return;
            break;
          }
          case "run.resumed":
            yield status(
              TaskState.TASK_STATE_WORKING,
              agentMessage(taskId, contextId, `resumed-${e.seq}`, `Resumed: ${String(d.reason)}.`),
              e.at,
            );
            break;
          case "run.completed": {
            const output = String(d.output ?? "");
            yield {
              payload: {
                $case: "artifactUpdate",
                value: { taskId, contextId, artifact: outputArtifact(taskId, output), append: false, lastChunk: true, metadata: undefined },
              },
            };
            yield status(TaskState.TASK_STATE_COMPLETED, outputMessage(taskId, contextId, output), e.at);
            return;
          }
          case "run.failed":
            yield status(
              TaskState.TASK_STATE_FAILED,
              agentMessage(taskId, contextId, "failed", failedText(d.error as RunView["error"])),
              e.at,
            );
            return;
          case "run.cancelled":
            yield status(
              TaskState.TASK_STATE_CANCELED,
              agentMessage(taskId, contextId, "cancelled", cancelledText(String(d.reason))),
              e.at,
            );
            return;
        }
      }
    } finally {
      stopFollowing(watch, done, iterator);
    }
  }

  /** Outpost's errors as A2A errors; anything unexpected is logged and answered without its internals. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.toA2AError(err);
    }
  }

  private toA2AError(err: unknown): Error {
    if (err instanceof A2AError) return err;
    if (err instanceof OutpostError) {
      const text = err.hint ? `${err.message} (${err.hint})` : err.message;
      if (err.code === "invalid_request" || err.code === "payload_too_large" || err.code === "not_found" || err.code === "conflict") {
        return new RequestMalformedError(text);
      }
      if (err.code !== "internal") return new Error(text);
    }
    this.options.log.error({ err }, "A2A request failed");
    return new Error(`internal error (request ${this.options.requestId}); the server log has the details`);
  }
}

// ---- messages ----

/** Approval and external-event waits need someone other than the A2A client; timers and delegated runs just take time. */
const waitsForOutside = (w: WaitingFor | null | undefined) => w?.kind === "approval" || w?.kind === "event";

/** A blocking send answers (working, with the wait in its status) rather than hold the request open for longer than this. */
const LONG_TIMER_MS = 60_000;
const endsBlockingSend = (w: WaitingFor | null | undefined) =>
  waitsForOutside(w) || (w?.kind === "timer" && Date.parse(w.until) - Date.now() > LONG_TIMER_MS);

/** As `waitsForOutside`, for a wait found in the runs a task depends on. */
const outside = (w: Waiting) => w.kind === "approval" || w.kind === "event";

/** The same wait of the same run. */
const sameHeldUp = (a: Waiting, b: Waiting) =>
  a.run_id === b.run_id && a.kind === b.kind && a.approval_id === b.approval_id && a.event === b.event;

/** What holds a task up: which run waits (one it delegated to, or an earlier one of its conversation), and for what. */
function heldUpMessage(taskId: string, contextId: string, w: Waiting): Message {
  const waiter = `run ${w.run_id} (agent "${w.agent ?? "?"}")`;
  let waits: string;
  switch (w.kind) {
    case "approval":
      waits =
        `waits for a human approval: a person must approve ${w.tool ? `the call to ${w.tool}` : "its next action"} ` +
        `(approval ${w.approval_id}) in Outpost`;
      break;
    case "event":
      waits = `waits for the external event "${w.event}", delivered to run ${w.run_id} in Outpost (POST /v1/runs/${w.run_id}/events)`;
      break;
    default:
      waits = `waits (${w.kind})`;
  }
  const text =
    w.queued_behind === undefined
      ? `Waiting for the work it delegated: ${waiter} ${waits} before the agent continues; nothing needs to be sent over A2A.`
      : w.queued_behind === w.run_id
        ? `Queued behind an earlier message of this conversation: ${waiter} ${waits}; this task starts once that run is done. Nothing needs to be sent over A2A.`
        : `Queued behind an earlier message of this conversation, run ${w.queued_behind}, whose delegated ${waiter} ${waits}; ` +
          "this task starts once that run is done. Nothing needs to be sent over A2A.";
  return agentMessage(taskId, contextId, `held-up-${w.run_id}-${w.approval_id ?? w.kind}`, text);
}

function approvalTools(log: EventView[]): Map<string, string> {
  const tools = new Map<string, string>();
  for (const e of log) if (e.type === "approval.requested") tools.set(String(e.data.approval_id), String(e.data.tool));
  return tools;
}

function waitingText(runId: string, w: WaitingFor, tool: string | undefined): string {
  switch (w.kind) {
    case "approval":
      return (
        `Waiting for a human approval: a person must approve ${tool ? `the call to ${tool}` : "the next action"} ` +
        `(approval ${w.approval_id}) in Outpost before the agent continues; nothing needs to be sent over A2A.`
      );
    case "event":
      return `Waiting for the external event "${w.event}", delivered to run ${runId} in Outpost (POST /v1/runs/${runId}/events).`;
    case "timer":
      return `Waiting until ${w.until}, then continuing.`;
    case "children":
      return `Waiting for ${w.run_ids.length} delegated run(s) to finish.`;
    case "any":
      return `Waiting for the first of ${w.approvals.length + w.events.length + w.run_ids.length + (w.until ? 1 : 0)} workflow steps to move on.`;
    default:
      return "Waiting.";
  }
}

const failedText = (error: RunView["error"]) => (error ? `The task failed (${error.code}): ${error.message}` : "The task failed.");
const cancelledText = (reason: string | undefined) => `The task was canceled${reason ? `: ${reason}` : "."}`;

const textPart = (value: string): Part => ({
  content: { $case: "text", value },
  metadata: undefined,
  filename: "",
  mediaType: "text/plain",
});

function agentMessage(taskId: string, contextId: string, key: string, text: string): Message {
  return {
    messageId: `${taskId}-${key}`,
    contextId,
    taskId,
    role: Role.ROLE_AGENT,
    parts: [textPart(text)],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  };
}

const outputMessage = (taskId: string, contextId: string, output: string) => agentMessage(taskId, contextId, "output", output);

function inputMessage(run: RunView): Message {
  return { ...agentMessage(run.id, run.session_id, "input", run.input), role: Role.ROLE_USER };
}

function outputArtifact(taskId: string, output: string): Artifact {
  return {
    artifactId: `${taskId}-output`,
    name: "output",
    description: "The agent's answer.",
    parts: [textPart(output)],
    metadata: undefined,
    extensions: [],
  };
}

/** The run's input: the message's text parts, joined. Other parts (files, data) are not read. */
function inputOf(message: Message): string {
  const texts = (message.parts ?? [])
    .map((p) => (p?.content?.$case === "text" && typeof p.content.value === "string" ? p.content.value : ""))
    .filter((t) => t.trim() !== "");
  if (texts.length === 0) {
    throw new RequestMalformedError(
      "the message has no text part: Outpost agents take text; send at least one non-empty text part, " +
        'e.g. "parts": [{"text": "Where is order 1042?"}] (A2A 0.3: [{"kind": "text", "text": "…"}])',
    );
  }
  return texts.join("\n");
}

const taskNotFound = (id: string) => new TaskNotFoundError(`task "${id}" does not exist (for this agent)`);
const noPush = () =>
  new PushNotificationNotSupportedError("push notifications are not supported; follow a task with message/stream or poll tasks/get");

function notCancelable(run: RunView): Error {
  const state = run.status === "cancelled" ? "canceled" : run.status;
  return new TaskNotCancelableError(`task ${run.id} is already ${state}; only a submitted, working or input-required task can be canceled`);
}

/** Ends a follow: the held-up watch, the event stream's signal, and the stream itself (never awaited: it may be mid-read). */
function stopFollowing(watch: { close(): void }, done: AbortController, iterator: AsyncIterator<unknown>): void {
  watch.close();
  done.abort();
  void Promise.resolve()
    .then(() => iterator.return?.())
    .catch(() => {});
}
