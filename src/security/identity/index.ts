/** Identities: workspaces (tenants), API keys, OIDC tokens; what a request's credentials stand for. */
export { type Authentication, type Authenticator, type AuthFailure, type AuthRejection, Identities } from "./identities.js";
export { generateKey, hashKey, isApiKey, KEY_PATTERN, keyPrefix } from "./keys.js";
export { type OidcSettings, OidcVerifier, type TokenRejection } from "./oidc.js";
export { type ApiKeyRecord, checkRoles, IdentityStore, type KeyRejection, type NewKey, type WorkspaceRecord } from "./store.js";

import type { Caller } from "../types.js";

/** The in-process owner of a project (embedded use, the local CLI): its workspace's admin. */
export const localCaller = (workspace: string): Caller => ({
  workspace,
  id: "local",
  name: "local",
  roles: ["admin"],
  groups: [],
  via: "local",
});
