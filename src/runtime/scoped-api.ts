/**
 * The API as one caller sees it: every read and write confined to the caller's workspace, runs recorded as
 * started by the caller, approvals decided by the caller. The server makes one per request (`outpost.as(caller)`);
 * the plain LocalOutpost is the one of its local owner (caller `local`, admin of the project's workspace).
 */
import type {
  AgentView,
  ApprovalStatus,
  ApprovalView,
  ArtifactView,
  EventView,
  ListRunsRequest,
  OutpostApi,
  Page,
  RunTreeView,
  RunView,
  SessionView,
  StartRunRequest,
} from "../core/api.js";
import type { Caller } from "../security/types.js";

/** What a running Outpost does for a given workspace and caller (LocalOutpost implements it). */
export interface WorkspaceRuntime {
  health(): ReturnType<OutpostApi["health"]>;
  listAgents(): Promise<AgentView[]>;
  getAgent(name: string): Promise<AgentView>;
  startRunAs(caller: Caller, request: StartRunRequest): Promise<RunView>;
  getRunIn(workspace: string, id: string): Promise<RunView>;
  listRunsIn(workspace: string, request: ListRunsRequest): Promise<Page<RunView>>;
  getEventsIn(workspace: string, runId: string, after?: number): Promise<EventView[]>;
  streamEventsIn(workspace: string, runId: string, options?: { after?: number; signal?: AbortSignal }): AsyncIterable<EventView>;
  cancelRunIn(workspace: string, id: string, reason?: string): Promise<RunView>;
  sendEventIn(workspace: string, runId: string, event: { name: string; payload?: unknown }): Promise<RunView>;
  listApprovalsIn(workspace: string, request: { status?: ApprovalStatus }): Promise<ApprovalView[]>;
  decideApprovalAs(
    workspace: string,
    caller: Caller,
    id: string,
    decision: { decision: "approve" | "deny"; reason?: string; by?: string },
  ): Promise<ApprovalView>;
  getSessionIn(workspace: string, id: string): Promise<SessionView>;
  getRunTreeIn(workspace: string, id: string): Promise<RunTreeView>;
  getArtifactIn(workspace: string, id: string, page?: { offset?: number; limit?: number }): Promise<ArtifactView>;
}

export class ScopedOutpost implements OutpostApi {
  constructor(
    private readonly runtime: WorkspaceRuntime,
    readonly caller: Caller,
  ) {}

  private get workspace(): string {
    return this.caller.workspace;
  }

  health() {
    return this.runtime.health();
  }
  listAgents() {
    return this.runtime.listAgents();
  }
  getAgent(name: string) {
    return this.runtime.getAgent(name);
  }
  startRun(request: StartRunRequest) {
    return this.runtime.startRunAs(this.caller, request);
  }
  getRun(id: string) {
    return this.runtime.getRunIn(this.workspace, id);
  }
  listRuns(request: ListRunsRequest = {}) {
    return this.runtime.listRunsIn(this.workspace, request);
  }
  getEvents(runId: string, after?: number) {
    return this.runtime.getEventsIn(this.workspace, runId, after);
  }
  streamEvents(runId: string, options?: { after?: number; signal?: AbortSignal }) {
    return this.runtime.streamEventsIn(this.workspace, runId, options);
  }
  cancelRun(id: string, reason?: string) {
    return this.runtime.cancelRunIn(this.workspace, id, reason);
  }
  sendEvent(runId: string, event: { name: string; payload?: unknown }) {
    return this.runtime.sendEventIn(this.workspace, runId, event);
  }
  listApprovals(request: { status?: ApprovalStatus } = {}) {
    return this.runtime.listApprovalsIn(this.workspace, request);
  }
  /** The decider is the caller: a `by` naming someone else is not believed (see decideApprovalAs). */
  decideApproval(id: string, decision: { decision: "approve" | "deny"; reason?: string; by?: string }) {
    return this.runtime.decideApprovalAs(this.workspace, this.caller, id, decision);
  }
  getSession(id: string) {
    return this.runtime.getSessionIn(this.workspace, id);
  }
  getRunTree(id: string) {
    return this.runtime.getRunTreeIn(this.workspace, id);
  }
  getArtifact(id: string, page?: { offset?: number; limit?: number }) {
    return this.runtime.getArtifactIn(this.workspace, id, page);
  }
}
