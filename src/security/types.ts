/**
 * The shared vocabulary of security and governance: who is calling (Caller), what they may do (Role),
 * how an action is put to the policy engine (PolicyRequest) and what it answers (PolicyDecision).
 * Each part lives in its own folder (identity, policy, approvals, vault, guardrails, budgets, audit)
 * and is reached through ./index.ts.
 */
import type { Classification } from "../definitions/types.js";

export type Role = "admin" | "builder" | "operator" | "auditor" | "viewer";
export const ROLES: readonly Role[] = ["admin", "builder", "operator", "auditor", "viewer"];

/** An authenticated caller of the API (or the local process, which acts as its project's admin). */
export interface Caller {
  /** The tenant every read and write of this caller is confined to. */
  workspace: string;
  /** Stable principal id: `key:<id>` for API keys, `user:<sub>` for OIDC tokens, `local` for the in-process owner. */
  id: string;
  /** For people: the key's name, or the token's name/email claim. */
  name: string;
  roles: Role[];
  /** Departments the caller belongs to (e.g. finance): approvals may require one. */
  groups: string[];
  via: "api_key" | "oidc" | "local";
  /** API key id, for rate limiting and audit. */
  keyId?: string;
}

export const CLASSIFICATIONS: readonly Classification[] = ["public", "internal", "confidential", "restricted"];
/** 0 public … 3 restricted: Cedar compares numbers, not names. */
export const classificationLevel = (c: Classification | undefined | null): number => (c ? CLASSIFICATIONS.indexOf(c) : 0);
export const maxClassification = (a: Classification, b: Classification | undefined): Classification =>
  b && classificationLevel(b) > classificationLevel(a) ? b : a;

/** The actions Outpost puts to the policy engine, one per kind of thing an agent does. */
export type PolicyAction =
  | "tool.call"
  | "memory.read"
  | "memory.write"
  | "agent.delegate"
  | "agent.handoff"
  | "model.use"
  | "connector.use";

/** A Cedar value as JSON: strings, Longs, booleans, sets (arrays) and records. Floats are not Cedar values. */
export type CedarJson = string | number | boolean | CedarJson[] | { [key: string]: CedarJson };

export interface PolicyRequest {
  action: PolicyAction;
  /** The acting agent (Cedar principal `Agent::"<name>"`). */
  agent: string;
  /** Who the run acts for (`key:<id>`, `user:<sub>`; null when unknown): `context.on_behalf_of`. */
  onBehalfOf: string | null;
  /** `Tool::"ledger.issue_refund"`, `Agent::"refunds"`, `Model::"default/openai:gpt-4.1"`, `MemoryScope::"team/finance"`,
   * `Connector::"ledger"`. `attributes` are the resource entity's (classification_level, location…), recorded with the
   * request so a replay sees the resource as it was; an Agent resource's come from the project. */
  resource: {
    type: "Tool" | "Agent" | "Model" | "MemoryScope" | "Connector";
    id: string;
    attributes?: Record<string, CedarJson>;
  };
  /** Cedar context. Conventions (security/policy/requests.ts builds it): `on_behalf_of` (String, "" if unknown),
   * `run_classification(_level)`, `tainted` (Bool); tool.call adds `arguments` (record) and `amount_cents` (Long, optional). */
  context: Record<string, CedarJson>;
}

export interface PolicyDecision {
  effect: "allow" | "deny";
  /** The policies that decided: satisfied permits on allow, satisfied forbids on deny; empty on default deny. */
  policies: string[];
  /** A permitted action that a person must approve first (from a deciding policy's `@approval("role[:group]")`). */
  approval: { role: string; group: string | null; policies: string[] } | null;
  /** Policies that failed to evaluate (they count as not satisfied; Cedar semantics). */
  errors: string[];
}

export interface PolicyEngine {
  authorize(request: PolicyRequest): PolicyDecision;
  /** SHA-256 of the loaded policy texts: which policies a recorded decision was made under. */
  readonly hash: string;
}

/**
 * Audit entry kinds (security/audit). `data` of each:
 * - `auth.failed` {reason, key_prefix?, ip?} · `key.created` / `key.revoked` {key_id, name, roles, groups}
 * - `policy.decision` {run_id, agent, on_behalf_of, action, resource, effect, policies, approval?, context}
 * - `approval.requested` / `approval.approved` / `approval.denied` / `approval.expired`
 *     {approval_id, run_id, agent, tool, action_hash, by?, reason?}
 * - `tool.executed` {run_id, agent, tool, idempotency_key, arguments_sha256, is_error, classification}
 * - `model.used` {run_id, agent, model, location, run_classification, input_tokens, output_tokens, cost_usd}
 * - `secret.used` {name, connection} · `secret.changed` {name, change: "set" | "deleted"}
 * - `budget.blocked` {run_id, agent, cap, limit, spent}
 * - `guardrail.injection` {run_id, tool, findings} · `guardrail.egress_blocked` {url, connection}
 * - `definitions.loaded` {definitions_sha256, policies_sha256, files}
 * - `webhook.delivered` {webhook, delivery_id, run_id, agent, signed, duplicate, payload_sha256} ·
 *   `webhook.refused` {webhook, reason} (a signature that did not check out)
 * Actors: `agent:<name>`, `key:<id>`, `user:<sub>`, `local`, `system`.
 */
export type AuditKind =
  | "auth.failed"
  | "key.created"
  | "key.revoked"
  | "policy.decision"
  | "approval.requested"
  | "approval.approved"
  | "approval.denied"
  | "approval.expired"
  | "tool.executed"
  | "model.used"
  | "secret.used"
  | "secret.changed"
  | "budget.blocked"
  | "guardrail.injection"
  | "guardrail.egress_blocked"
  | "definitions.loaded"
  // memory/: a person's write, edit or forget; an erasure by subject; retention; what a run was shown
  | "memory.written"
  | "memory.edited"
  | "memory.forgotten"
  | "memory.erased"
  | "memory.expired"
  | "memory.recalled"
  // memory/: a knowledge document ingested (chunks added, rewritten or dropped) or removed
  | "knowledge.ingested"
  | "knowledge.removed"
  // triggers/: a webhook delivery that started a run, or one whose signature was refused
  | "webhook.delivered"
  | "webhook.refused";
