/**
 * The security services a running Outpost offers its HTTP API and CLI. Each part adds its member here;
 * the server registers a part's routes only when the part is present.
 */
import type { AuditLog } from "./audit/index.js";
import type { Budgets } from "./budgets/index.js";
import type { Identities } from "./identity/index.js";
import type { Vault } from "./vault/index.js";

export interface SecurityServices {
  /** The workspace of the project this Outpost serves (the one its first admin key belongs to). */
  defaultWorkspace: string;
  /** API keys and OIDC tokens: the server authenticates every request with it (POST/GET/DELETE /v1/keys, POST /v1/workspaces). */
  identities?: Identities;
  /** Secrets of each workspace (PUT/GET/DELETE /v1/secrets). */
  vault?: Vault;
  /** Spend caps with reservations around each model call (GET /v1/budgets). */
  budgets?: Budgets;
  /** The tamper-evident audit log (GET /v1/audit, /v1/audit/verify, /v1/reports). */
  audit?: AuditLog;
}
