/** Workflows as API clients see them, and what the server needs of the runtime for them. */
import type { RunView } from "../core/api.js";
import type { Caller } from "../security/types.js";
import type { Step, WorkflowDefinition } from "./definition.js";
import { workflowVersion } from "./executor.js";

export interface WorkflowView {
  name: string;
  description: string;
  team: string | null;
  /** The content hash a run records when it starts: runs finish on the version they started with. */
  version: string;
  input_schema: Record<string, unknown> | null;
  steps: StepView[];
  file: string;
}

export interface WorkflowsHost {
  listWorkflows(): WorkflowView[];
  /** In the caller's workspace; not_found for an unknown workflow, invalid_request for an input its schema refuses. */
  startWorkflowAs(caller: Caller, name: string, request: { input?: unknown; idempotency_key?: string }): Promise<RunView>;
}

/** Workflows as one caller sees them: the HTTP client, and the local CLI (workflowsApi). */
export interface WorkflowsApi {
  listWorkflows(): Promise<{ workflows: WorkflowView[] }>;
  startWorkflow(name: string, request?: { input?: unknown; idempotency_key?: string }): Promise<RunView>;
}

/** A host's workflows as `caller` sees them. */
export function workflowsApi(host: WorkflowsHost, caller: Caller): WorkflowsApi {
  return {
    listWorkflows: async () => ({ workflows: host.listWorkflows() }),
    startWorkflow: (name, request = {}) => host.startWorkflowAs(caller, name, request),
  };
}

export interface StepView {
  id: string;
  kind: Step["kind"];
  /** The tool, agent, event or approver the step names. */
  target: string | null;
  steps?: StepView[];
}

export function workflowView(w: WorkflowDefinition): WorkflowView {
  return {
    name: w.name,
    description: w.description,
    team: w.team,
    version: workflowVersion(w),
    input_schema: w.inputSchema,
    steps: w.steps.map(stepView),
    file: w.file,
  };
}

function stepView(s: Step): StepView {
  const target =
    s.kind === "tool"
      ? s.tool
      : s.kind === "agent"
        ? s.agent
        : s.kind === "wait_event" || s.kind === "emit"
          ? s.event
          : s.kind === "approval"
            ? [s.approver.role, s.approver.group].filter(Boolean).join(":")
            : null;
  const children =
    s.kind === "branch" ? [...s.whenTrue, ...s.whenFalse] : s.kind === "loop" ? s.do : s.kind === "parallel" ? s.branches.flat() : null;
  return { id: s.id, kind: s.kind, target, ...(children ? { steps: children.map(stepView) } : {}) };
}
