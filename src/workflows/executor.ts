/**
 * Runs a claimed workflow run: replays its log, asks the plan (plan.ts) what is next, does it, commits. The same
 * guarantees as an agent run, from the same mechanics: every step's intent (what it was given, its idempotency key)
 * is committed before it acts, its outcome after; a run killed in between resumes from its log and acts again with
 * the same key, so a committed step never runs twice; a run that waits (for an agent, an approval, an event, a
 * time) commits run.waiting and holds no worker.
 *
 * Tool calls pass the same policy check as an agent's, with the workflow as principal (`Agent::"workflow:<name>"`,
 * its team and clearance from the definition); one a policy sends for approval waits for it.
 */
import { z } from "zod";
import type { WaitingFor } from "../core/api.js";
import { OutpostError } from "../core/errors.js";
import { type EventDataOf, ev, type NewEvent, type RunEvent } from "../core/events.js";
import { newId } from "../core/ids.js";
import type { ToolDefinition } from "../definitions/types.js";
import type { ExecutorDeps, RunControl } from "../runtime/executor.js";
import { approvalRequestedEntry, connectionOf, policyDecisionEntry } from "../runtime/governance.js";
import { actionHash, DEFAULT_APPROVAL_TTL_MS } from "../security/approvals/index.js";
import { sha256Hex } from "../security/canonical.js";
import { connectorUseRequest, toolCallRequest } from "../security/policy/index.js";
import { classificationLevel, type PolicyRequest } from "../security/types.js";
import { type ApprovalRequestInput, type AuditEntryInput, type ClaimedRun, CommitConflict, type RunPatch } from "../store/types.js";
import { ToolOutcomeUnknown, ToolUnavailable } from "../tools/source.js";
import type { Step, WorkflowDefinition } from "./definition.js";
import { ExpressionError, evaluateExpression, render, truthy } from "./expressions.js";
import { applyWorkflowEvent, foldWorkflow, type Plan, planWorkflow, toCompensate, type Work, type WorkflowState } from "./plan.js";

/** Agent names of workflow runs: `workflow:<name>` (agent names have no colon). */
export const WORKFLOW_PREFIX = "workflow:";
export const isWorkflowRun = (agent: string) => agent.startsWith(WORKFLOW_PREFIX);

const TOOL_TIMEOUT_MS = 60_000;

/** The content hash a workflow run records as its version. */
export function workflowVersion(definition: WorkflowDefinition): string {
  const { file: _file, ...content } = definition;
  return sha256Hex(JSON.stringify(content)).slice(0, 16);
}

type StepError = { code: string; message: string };

export async function executeWorkflow(deps: ExecutorDeps, claimed: ClaimedRun, control: RunControl): Promise<void> {
  const { store } = deps;
  const run = claimed.run;
  const name = run.agent.slice(WORKFLOW_PREFIX.length);
  const actor = `agent:${run.agent}`;
  let log = await store.getEvents(run.id);
  deps.tookUp?.(run, log);
  let state = foldWorkflow(log);
  let committedSeq = state.lastSeq;

  /** Appends `events` (and applies them to the state); on a log that moved on (a child finished, an approval was
   * decided meanwhile) reads it again and appends the same events after it — they are this worker's facts — unless
   * they are a `decision` made on the old log (to wait): then nothing is appended and it answers false, to plan again. */
  const commit = async (
    events: NewEvent[],
    patch: Partial<RunPatch> = {},
    extra: { approval?: ApprovalRequestInput; audit?: AuditEntryInput[]; decision?: boolean } = {},
  ): Promise<boolean> => {
    for (;;) {
      const status = patch.status ?? "running";
      try {
        const result = await store.commit({
          runId: run.id,
          leaseToken: claimed.leaseToken,
          expectedSeq: committedSeq,
          events,
          patch: {
            status,
            steps: [...state.steps.values()].filter((r) => r.status === "completed").length,
            inputTokens: 0,
            outputTokens: 0,
            costUsd: 0,
            ...patch,
          },
          ...(extra.approval ? { approval: extra.approval } : {}),
          ...(extra.audit && extra.audit.length > 0 ? { audit: extra.audit } : {}),
        });
        for (let i = 0; i < events.length; i++) {
          const e = { ...events[i], seq: committedSeq + 1 + i, at: result.at } as RunEvent;
          applyWorkflowEvent(state, e);
          deps.publish(run.id, e.seq, e.type, e.data, e.at);
        }
        committedSeq = result.lastSeq;
        if (result.cancelRequested) control.cancel(result.cancelRequested);
        return true;
      } catch (err) {
        if (!(err instanceof CommitConflict) || err.reason !== "seq_conflict") throw err;
        log = await store.getEvents(run.id);
        state = foldWorkflow(log);
        committedSeq = state.lastSeq;
        if (state.terminal || extra.decision) return false;
      }
    }
  };
  const fail = async (error: StepError): Promise<void> => {
    await commit([ev("run.failed", { error: redacted(error) })], { status: "failed", error: redacted(error), release: true });
    await withdraw(`the workflow run failed: ${redacted(error).message}`);
  };
  /** A branch still waiting for a person when the run ended: its approval is withdrawn, not left pending. */
  const withdraw = (reason: string) => store.withdrawApprovals(run.workspace, run.id, reason).catch(() => []);
  const redacted = (e: StepError): StepError => ({ code: e.code, message: deps.redact ? deps.redact(e.message) : e.message });

  // ---- the definition it runs: recorded once, at its first claim
  if (!state.definition && !state.terminal) {
    const definition = deps.project.workflows?.get(name);
    if (!definition)
      return fail({ code: "workflow_not_found", message: `workflow "${name}" is not defined in the project (workflows/${name}.yaml)` });
    let input: unknown;
    try {
      input = run.input.trim() === "" ? {} : JSON.parse(run.input);
    } catch {
      input = run.input;
    }
    if (definition.inputSchema) {
      const checked = z.fromJSONSchema(definition.inputSchema as Parameters<typeof z.fromJSONSchema>[0]).safeParse(input);
      if (!checked.success) {
        const issues = checked.error.issues.map((i) => `${i.path.join(".") || "(input)"}: ${i.message}`).join("; ");
        return fail({ code: "invalid_input", message: `the input does not match workflow ${name}'s input schema: ${issues}` });
      }
    }
    await commit([ev("workflow.started", { workflow: name, version: workflowVersion(definition), definition, input })]);
  } else if (run.status === "running" && !state.terminal) {
    await commit([ev("run.resumed", { reason: "recovered" })]);
  }

  const definition = state.definition as WorkflowDefinition;
  while (!state.terminal) {
    if (control.why === "shutdown") return;
    if (control.why === "cancel") {
      await cancelOpenChildren(deps, run.workspace, state, `workflow run ${run.id} cancelled`);
      const reason = control.cancelReason ?? "cancelled";
      await commit([ev("run.cancelled", { reason })], {
        status: "cancelled",
        error: { code: "cancelled", message: reason },
        release: true,
      });
      await withdraw(`the workflow run was cancelled: ${reason}`);
      return;
    }
    if (state.compensating) {
      await compensate();
      continue;
    }
    const plan: Plan = planWorkflow(definition, state, Date.now());
    if (plan.kind === "done") {
      let output: unknown = plan.last;
      try {
        if (definition.output !== undefined) output = await render(definition.output, plan.scope);
      } catch (err) {
        await fail({ code: "invalid_output", message: `workflow ${name}: output: ${(err as Error).message}` });
        return;
      }
      const text = typeof output === "string" ? output : JSON.stringify(output ?? null);
      await commit([ev("run.completed", { output: text })], { status: "completed", output: text, release: true });
      return;
    }
    if (plan.kind === "failed") {
      await cancelOpenChildren(deps, run.workspace, state, `step ${plan.path} of workflow run ${run.id} failed`);
      if (toCompensate(definition, state).length > 0) {
        await commit([ev("workflow.compensating", { failed: plan.path, error: plan.error })]);
        continue;
      }
      await fail({ code: "step_failed", message: `step ${plan.path} failed: ${plan.error.message}` });
      return;
    }
    const acting = plan.work.filter((w) => w.kind !== "wait");
    if (acting.length === 0) {
      // What it waits for may have come while it planned: then the wait is not committed, and it plans again.
      if (await wait(plan.work as Extract<Work, { kind: "wait" }>[])) return;
      continue;
    }
    // Side by side: the steps of parallel branches start and act together; each commits as it ends.
    await Promise.all(acting.map((w) => act(w)));
  }

  // ---- acting on one piece of work --------------------------------------------------------------------------

  async function act(w: Work): Promise<void> {
    try {
      if (w.kind === "start") await start(w);
      else if (w.kind === "resume") await resume(w.path, w.step, w.record.key, w.record.detail, w.record.attempt);
      else if (w.kind === "settle") await settle(w);
      else if (w.kind === "expire") await expire(w.approval);
    } catch (err) {
      if (err instanceof ExpressionError) {
        await commit([ev("step.failed", { path: w.path, attempt: 1, error: { code: "expression_failed", message: err.message } })]);
        return;
      }
      throw err;
    }
  }

  async function start(w: Extract<Work, { kind: "start" }>): Promise<void> {
    const { step, path, scope, attempt } = w;
    const key = `${run.id}:${path}`;
    const started = (detail: Record<string, unknown>) =>
      ev("step.started", { path, kind: step.kind, attempt, idempotency_key: key, detail });
    switch (step.kind) {
      case "branch": {
        const taken = truthy(await evaluateExpression(step.if, scope));
        await commit([started({ branch: taken ? "then" : "else" })]);
        return;
      }
      case "loop": {
        const items = await evaluateExpression(step.forEach, scope);
        if (!Array.isArray(items)) {
          await commit([
            started({ items: [] }),
            ev("step.failed", {
              path,
              attempt,
              error: { code: "not_a_list", message: `for_each of ${path} gave ${JSON.stringify(items)?.slice(0, 200)}, not a list` },
            }),
          ]);
          return;
        }
        await commit([started({ items })]);
        return;
      }
      case "parallel":
        await commit([started({})]);
        return;
      case "sleep": {
        const until =
          step.until !== null ? new Date(String(await evaluateExpression(step.until, scope))) : new Date(Date.now() + (step.forMs ?? 0));
        if (Number.isNaN(until.getTime())) {
          await commit([
            started({}),
            ev("step.failed", { path, attempt, error: { code: "invalid_time", message: `until of ${path} is not a time` } }),
          ]);
          return;
        }
        await commit([started({ until: until.toISOString() })]);
        return;
      }
      case "wait_event":
        await commit([started({ event: step.event })]);
        return;
      case "approval": {
        const message = String(await render(step.message, scope));
        const approvalId = newId("apr");
        const args = { message };
        const asked = approvalRequest(approvalId, path, key, "workflow.approval", args, step.approver, []);
        await commit([started({ approval_id: approvalId, message }), asked.event], {}, { approval: asked.record, audit: [asked.audit] });
        return;
      }
      case "agent": {
        const task = String(await render(step.task, scope));
        const child = await startAgent(step, path, attempt, task, null);
        await commit([started({ agent: step.agent, task, child_run_id: child })]);
        return;
      }
      case "tool":
      case "emit": {
        const args =
          step.kind === "tool" ? await render(step.arguments, scope) : { event: step.event, payload: await render(step.payload, scope) };
        if (step.kind === "emit") {
          await commit([started({ arguments: args })]);
          await resume(path, step, key, { arguments: args }, attempt);
          return;
        }
        const tool = deps.tools.get(step.tool);
        if (!tool) {
          await commit([started({ arguments: args }), stepFailed(path, attempt, "tool_not_found", `tool ${step.tool} is not available`)]);
          return;
        }
        const parsed = tool.input.safeParse(args);
        if (!parsed.success) {
          const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(arguments)"}: ${i.message}`).join("; ");
          await commit([
            started({ arguments: args }),
            stepFailed(path, attempt, "invalid_arguments", `${step.tool} was given invalid arguments: ${issues}`),
          ]);
          return;
        }
        // Policy, before the intent: a denial is the step's failure, an approval is waited for.
        const decisions = policyFor(tool, parsed.data);
        const denied = decisions.find((d) => d.effect === "deny");
        const approvals = decisions.filter((d) => d.approval !== null);
        const decided = decisions.map((d) => d.event);
        const audit = decisions.map((d) => d.audit);
        if (denied) {
          await commit(
            [
              ...decided,
              started({ arguments: parsed.data }),
              stepFailed(path, attempt, "policy_denied", `policy denied ${step.tool}: ${denialReason(denied.policies, tool, definition)}`),
            ],
            {},
            { audit },
          );
          return;
        }
        if (approvals.length > 0 || tool.approval === "required") {
          const approvalId = newId("apr");
          const approver = approvals[0]?.approval ?? { role: "operator", group: null };
          const policies = approvals.flatMap((d) => d.policies);
          const asked = approvalRequest(approvalId, path, key, step.tool, parsed.data, approver, policies);
          await commit(
            [...decided, started({ arguments: parsed.data, approval_id: approvalId }), asked.event],
            {},
            { approval: asked.record, audit: [...audit, asked.audit] },
          );
          return;
        }
        await commit([...decided, started({ arguments: parsed.data })], {}, { audit });
        await resume(path, step, key, { arguments: parsed.data }, attempt);
        return;
      }
    }
  }

  /** A started tool or emit step acts (again) with its recorded arguments and key. */
  async function resume(path: string, step: Step, key: string, detail: Record<string, unknown>, attempt: number): Promise<void> {
    if (step.kind === "emit") {
      const args = detail.arguments as { event: string; payload: unknown };
      const delivered = deps.emitEvent
        ? await deps.emitEvent(run.workspace, args.event, args.payload, key, run.id)
        : { delivered: 0, started: 0 };
      await commit([ev("step.completed", { path, output: delivered })]);
      return;
    }
    if (step.kind !== "tool") return;
    const tool = deps.tools.get(step.tool) as ToolDefinition;
    const outcome = await invoke(tool, detail.arguments, key, path);
    if (outcome === "stopped") return;
    if (outcome.ok) {
      await commit(
        [ev("step.completed", { path, output: outcome.output })],
        {},
        { audit: [executed(step.tool, key, detail.arguments, false)] },
      );
      return;
    }
    const retryAt =
      outcome.uncertain || attempt < step.retry.attempts
        ? new Date(Date.now() + step.retry.backoffMs * 2 ** (attempt - 1)).toISOString()
        : undefined;
    await commit(
      [
        ev("step.failed", {
          path,
          attempt,
          error: { code: "tool_failed", message: outcome.message },
          ...(retryAt ? { retry_at: retryAt } : {}),
        }),
      ],
      {},
      { audit: [executed(step.tool, key, detail.arguments, true)] },
    );
  }

  async function settle(w: Extract<Work, { kind: "settle" }>): Promise<unknown> {
    const { path, step, record, outcome } = w;
    if (outcome.kind === "time") return commit([ev("step.completed", { path, output: { until: record.detail.until } })]);
    if (outcome.kind === "event") return commit([ev("step.completed", { path, output: outcome.payload })]);
    if (outcome.kind === "approval") {
      if (outcome.decision === "approve")
        return commit([ev("step.completed", { path, output: { approved: true, by: outcome.by, reason: outcome.reason } })]);
      const what =
        outcome.decision === "expire"
          ? "expired before anyone decided"
          : `was denied by ${outcome.by ?? "an approver"}${outcome.reason ? `: ${outcome.reason}` : ""}`;
      return commit([
        stepFailed(path, record.attempt, outcome.decision === "expire" ? "approval_expired" : "approval_denied", `the approval ${what}`),
      ]);
    }
    // An agent's answer: checked against the output schema; an invalid one is asked again, within the bound.
    if (step.kind !== "agent") return;
    if (outcome.status !== "completed") {
      return commit([
        stepFailed(path, record.attempt, "agent_failed", `${step.agent} ${outcome.status}: ${outcome.error?.message ?? "no answer"}`),
      ]);
    }
    const checked = checkAnswer(outcome.output ?? "", step.outputSchema);
    if (checked.ok) return commit([ev("step.completed", { path, output: checked.value })]);
    if (record.attempt > step.retries) {
      return commit([
        stepFailed(
          path,
          record.attempt,
          "invalid_agent_output",
          `${step.agent} gave no valid answer in ${record.attempt} attempts; the last: ${checked.problem}`,
        ),
      ]);
    }
    const attempt = record.attempt + 1;
    const task = `${String(record.detail.task)}\n\nYour previous answer could not be used: ${checked.problem}. Answer again with only a JSON value matching this JSON Schema:\n${JSON.stringify(step.outputSchema)}`;
    const child = await startAgent(step, path, attempt, task, record.detail.child_run_id as string);
    await commit([
      ev("step.failed", {
        path,
        attempt: record.attempt,
        error: { code: "invalid_agent_output", message: checked.problem },
        retry_at: new Date().toISOString(),
      }),
      ev("step.started", {
        path,
        kind: "agent",
        attempt,
        idempotency_key: record.key,
        detail: { agent: step.agent, task, child_run_id: child },
      }),
    ]);
  }

  /** Nobody decided in time: the store marks the approval expired (unless someone decided just now) and logs it. */
  async function expire(approvalId: string): Promise<void> {
    try {
      await store.applyExternal(run.workspace, { kind: "approval", approvalId, decision: "expire", reason: null, by: null });
    } catch (err) {
      if (!(err instanceof OutpostError && err.code === "conflict")) throw err;
    }
    log = await store.getEvents(run.id); // the store appended to the log: read it back
    state = foldWorkflow(log);
    committedSeq = state.lastSeq;
  }

  async function wait(waits: Extract<Work, { kind: "wait" }>[]): Promise<boolean> {
    const approvals = waits.flatMap((w) => ("approval" in w.on ? [w.on.approval] : []));
    const events = waits.flatMap((w) => ("event" in w.on ? [w.on.event] : []));
    const children = waits.flatMap((w) => ("child" in w.on ? [w.on.child] : []));
    const times = waits.flatMap((w) => ("until" in w.on ? [w.on.until] : []));
    // An approval's expiry wakes the run too, to record it.
    const expiries = waits.flatMap((w) => ("approval" in w.on && w.on.expiresAt !== undefined ? [w.on.expiresAt] : []));
    const wakeAt = times.length + expiries.length > 0 ? Math.min(...times, ...expiries) : null;
    const until = times.length > 0 ? Math.min(...times) : null;
    const iso = until !== null ? new Date(until).toISOString() : undefined;
    let on: WaitingFor;
    if (waits.length === 1 && approvals.length === 1) {
      on = {
        kind: "approval",
        approval_id: approvals[0],
        ...(expiries.length > 0 ? { expires_at: new Date(expiries[0]).toISOString() } : {}),
      };
    } else if (waits.length === 1 && events.length === 1) on = { kind: "event", event: events[0] };
    else if (waits.length === 1 && children.length === 1) on = { kind: "children", run_ids: children, mode: "all" };
    else if (waits.length === 1 && iso) on = { kind: "timer", until: iso };
    else on = { kind: "any", approvals, events, run_ids: children, ...(iso ? { until: iso } : {}) };
    return commit([ev("run.waiting", { for: on })], { status: "waiting", waitingFor: on, wakeAt, release: true }, { decision: true });
  }

  async function compensate(): Promise<void> {
    const failed = state.compensating as NonNullable<WorkflowState["compensating"]>;
    for (const c of toCompensate(definition, state)) {
      if (control.why !== null) return;
      const undo = c.step.compensate as NonNullable<Step["compensate"]>;
      const key = `${c.record.key}:compensate`;
      const tool = deps.tools.get(undo.tool);
      let args: unknown;
      try {
        args = await render(undo.arguments ?? {}, { input: state.input, output: c.record.output, steps: completedOutputs(state) });
      } catch (err) {
        await commit([ev("step.compensated", { path: c.path, tool: undo.tool, output: (err as Error).message, is_error: true })]);
        continue;
      }
      const outcome = tool
        ? await invoke(tool, args, key, c.path)
        : { ok: false as const, message: `tool ${undo.tool} is not available`, uncertain: false };
      if (outcome === "stopped") return;
      await commit(
        [
          ev("step.compensated", {
            path: c.path,
            tool: undo.tool,
            output: outcome.ok ? outcome.output : outcome.message,
            is_error: !outcome.ok,
          }),
        ],
        {},
        { audit: [executed(undo.tool, key, args, !outcome.ok)] },
      );
    }
    const undone = [...state.compensated];
    await fail({
      code: "step_failed",
      message: `step ${failed.failed} failed: ${failed.error.message}${undone.length > 0 ? `; compensated: ${undone.join(", ")}` : ""}`,
    });
  }

  // ---- helpers ----------------------------------------------------------------------------------------------

  type Invoked = { ok: true; output: unknown } | { ok: false; message: string; uncertain: boolean } | "stopped";

  async function invoke(tool: ToolDefinition, args: unknown, key: string, path: string): Promise<Invoked> {
    const timeout = AbortSignal.timeout(tool.timeoutMs ?? TOOL_TIMEOUT_MS);
    const context = {
      runId: run.id,
      sessionId: run.sessionId,
      agent: run.agent,
      workspace: run.workspace,
      rootRunId: run.rootRunId,
      dataDir: deps.dataDir,
      onBehalfOf: state.by,
      clearance: definition.clearance,
      callId: path,
      signal: AbortSignal.any([control.signal, timeout]),
    };
    try {
      const parsed = tool.input.parse(args);
      const result = await Promise.race([
        Promise.resolve(tool.handler({ input: parsed, idempotencyKey: key, context })),
        new Promise<never>((_, reject) => context.signal.addEventListener("abort", () => reject(context.signal.reason), { once: true })),
      ]);
      let output: unknown = result ?? null;
      if (typeof output === "string") {
        try {
          output = JSON.parse(output);
        } catch {
          // text stays text
        }
      }
      return { ok: true, output };
    } catch (err) {
      if (control.why !== null) return "stopped";
      const message = timeout.aborted
        ? `${tool.name} did not finish within ${tool.timeoutMs ?? TOOL_TIMEOUT_MS} ms`
        : `${tool.name} failed: ${(err as Error)?.message ?? String(err)}`;
      deps.log.warn({ step: path, tool: tool.name, err: message }, "workflow tool call failed");
      return {
        ok: false,
        message: deps.redact ? deps.redact(message) : message,
        uncertain: err instanceof ToolOutcomeUnknown || err instanceof ToolUnavailable,
      };
    }
  }

  function policyFor(tool: ToolDefinition, args: unknown) {
    if (!deps.policy) return [];
    const facts = { agent: run.agent, onBehalfOf: state.by, runClassification: definition.clearance, tainted: false };
    const connection = connectionOf(deps.project, tool.name);
    const requests: PolicyRequest[] = [];
    if (connection) requests.push(connectorUseRequest({ ...facts, connection }));
    requests.push(toolCallRequest({ ...facts, tool, args, ...(connection ? { connection: connection.name } : {}) }));
    const engine = deps.policy;
    return requests.map((request) => {
      const d = engine.authorize(request);
      const data: EventDataOf<"policy.decided"> = {
        request: {
          action: request.action,
          agent: request.agent,
          on_behalf_of: request.onBehalfOf,
          resource: request.resource,
          context: request.context,
        },
        effect: d.effect,
        policies: d.policies,
        approval: d.approval,
        policies_sha256: engine.hash,
      };
      const event = ev("policy.decided", data);
      const audit = policyDecisionEntry(run.id, data);
      return { effect: d.effect, policies: d.policies, approval: d.approval, event, audit };
    });
  }

  /** An approval bound to the action's hash: its record, the log's approval.requested (which a decision is checked
   * against) and its audit entry. */
  function approvalRequest(
    id: string,
    path: string,
    key: string,
    tool: string,
    args: unknown,
    approver: { role: string; group: string | null },
    policies: string[],
  ) {
    const hash = actionHash({ workspace: run.workspace, runId: run.id, callKey: key, agent: run.agent, tool, arguments: args });
    // Undecided by then, it expires (a denial), as an agent's does: approvals.expire_after in outpost.yaml.
    const expiresAt = Date.now() + (deps.approvalTtlMs ?? DEFAULT_APPROVAL_TTL_MS);
    const expires = new Date(expiresAt).toISOString();
    const data: EventDataOf<"approval.requested"> = {
      approval_id: id,
      call_id: path,
      tool,
      arguments: args,
      action_hash: hash,
      approver,
      expires_at: expires,
      ...(policies.length > 0 ? { policies } : {}),
    };
    const event = ev("approval.requested", data);
    const audit = approvalRequestedEntry(run.id, run.agent, data);
    const record: ApprovalRequestInput = {
      id,
      callId: path,
      agent: run.agent,
      callKey: key,
      tool,
      arguments: args,
      requestedBy: state.by,
      approverRole: approver.role,
      approverGroup: approver.group,
      policies,
      actionHash: hash,
      expiresAt,
    };
    return { record, event, audit };
  }

  function executed(tool: string, key: string, args: unknown, isError: boolean): AuditEntryInput {
    return {
      kind: "tool.executed",
      actor,
      data: {
        run_id: run.id,
        agent: run.agent,
        tool,
        idempotency_key: key,
        arguments_sha256: sha256Hex(JSON.stringify(args ?? null)),
        is_error: isError,
      },
    };
  }

  /** Starts (or, on a retry of this very attempt, finds) the agent run an agent step waits for. */
  async function startAgent(
    step: Extract<Step, { kind: "agent" }>,
    path: string,
    attempt: number,
    task: string,
    _previous: string | null,
  ): Promise<string> {
    if (!deps.project.agents.has(step.agent)) throw new ExpressionError(step.agent, `agent ${step.agent} is not defined`);
    const schemaNote = step.outputSchema
      ? `\n\nAnswer with only a JSON value matching this JSON Schema:\n${JSON.stringify(step.outputSchema)}`
      : "";
    const { run: child } = await store.createRun({
      workspace: run.workspace,
      agent: step.agent,
      input: attempt === 1 ? task + schemaNote : task,
      idempotencyKey: `${run.id}:${path}:${attempt}`,
      parent: { runId: run.id, callId: path, rootRunId: run.rootRunId, depth: run.depth + 1, chain: [run.agent] },
      startedBy: state.by,
    });
    deps.wake?.();
    return child.id;
  }
}

function stepFailed(path: string, attempt: number, code: string, message: string): NewEvent {
  return ev("step.failed", { path, attempt, error: { code, message } });
}

/** An agent's answer as a value: JSON (a ```json fence around it is tolerated), checked against the schema. */
export function checkAnswer(
  text: string,
  schema: Record<string, unknown> | null,
): { ok: true; value: unknown } | { ok: false; problem: string } {
  if (!schema) {
    try {
      return { ok: true, value: JSON.parse(text) };
    } catch {
      return { ok: true, value: text };
    }
  }
  const fenced = /```(?:json)?\s*([\s\S]*?)```/.exec(text);
  let value: unknown;
  try {
    value = JSON.parse((fenced ? fenced[1] : text).trim());
  } catch {
    return { ok: false, problem: `the answer is not JSON (${JSON.stringify(text.slice(0, 120))})` };
  }
  const checked = z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]).safeParse(value);
  if (checked.success) return { ok: true, value: checked.data };
  return { ok: false, problem: checked.error.issues.map((i) => `${i.path.join(".") || "(answer)"}: ${i.message}`).join("; ") };
}

function completedOutputs(s: WorkflowState): Record<string, { output: unknown }> {
  const out: Record<string, { output: unknown }> = {};
  for (const r of s.steps.values()) if (r.status === "completed" && !r.path.includes("[")) out[r.path] = { output: r.output };
  return out;
}

async function cancelOpenChildren(deps: ExecutorDeps, _workspace: string, s: WorkflowState, reason: string): Promise<void> {
  const open = [...s.steps.values()]
    .filter((r) => r.kind === "agent" && r.status === "started" && !s.children.has(r.detail.child_run_id as string))
    .map((r) => r.detail.child_run_id as string);
  if (open.length > 0) await deps.collaboration.cancelRuns(open, reason).catch(() => undefined);
}

/** Why a tool step was refused, with what to change when it is the workflow's own clearance. */
function denialReason(policies: string[], tool: ToolDefinition, definition: WorkflowDefinition): string {
  if (policies.length > 0) return `forbidden by ${policies.join(", ")}`;
  const cls = tool.classification ?? "internal";
  if (classificationLevel(cls) > classificationLevel(definition.clearance)) {
    return `no policy permits it — the tool's data is ${cls}, above the workflow's clearance ${definition.clearance}; raise clearance: in ${definition.file}`;
  }
  return "no policy permits it";
}
