/**
 * Approvals that fail closed. An approval is bound to the exact action it allows — agent, tool,
 * arguments, run and call (whose idempotency key names the step) — by a SHA-256 over their RFC 8785
 * canonical JSON, recorded when it is requested. A record altered afterwards, an action that changed,
 * an expired or already-decided approval, an approver without the required role or group, or the person
 * the run acts for approving their own request: each is a denial, never a pass.
 */
import { canonicalJson, sha256Hex } from "../canonical.js";
import type { Caller } from "../types.js";

export interface BoundAction {
  workspace: string;
  runId: string;
  callKey: string;
  agent: string;
  tool: string;
  arguments: unknown;
}

/** The hash an approval is bound to. Pure: the runtime recomputes it from the run's log before the action runs. */
export function actionHash(a: BoundAction): string {
  const text = canonicalJson({
    workspace: a.workspace,
    run_id: a.runId,
    call_key: a.callKey,
    agent: a.agent,
    tool: a.tool,
    arguments: a.arguments ?? null,
  });
  return sha256Hex(text);
}

/** Who must approve: a role (operator unless a policy says otherwise) and optionally a group (e.g. finance). */
export interface Approver {
  role: string;
  group: string | null;
}

export const DEFAULT_APPROVER: Approver = { role: "operator", group: null };

/** Approvals expire after this long unless the project says otherwise (`approvals.expire_after`). */
export const DEFAULT_APPROVAL_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Why `caller` may not decide this approval, or null when they may. Deciding includes denying: a person
 * who could not approve should not be the one to close the request either.
 */
export function approverProblem(
  approval: { requestedBy: string | null; approverRole: string | null; approverGroup: string | null },
  caller: Pick<Caller, "id" | "name" | "roles" | "groups" | "via">,
): string | null {
  if (caller.via !== "local" && approval.requestedBy !== null && approval.requestedBy === caller.id) {
    return `${caller.name} started the run that asked for this approval and cannot approve their own request; another operator must decide it`;
  }
  const role = approval.approverRole ?? DEFAULT_APPROVER.role;
  const hasRole = caller.roles.includes("admin") || caller.roles.includes(role as Caller["roles"][number]);
  if (!hasRole) return `this approval needs the role ${role}; ${caller.name} has ${caller.roles.join(", ") || "no role"}`;
  if (approval.approverGroup && caller.via !== "local" && !caller.groups.includes(approval.approverGroup)) {
    return `this approval needs a ${role} of ${approval.approverGroup}; ${caller.name} is in ${caller.groups.join(", ") || "no group"}`;
  }
  return null;
}
