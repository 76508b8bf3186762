/**
 * Who is calling: an API key (`opk_…`) or an OIDC token, turned into a Caller, or the reason it was refused.
 */
import type { Caller } from "../types.js";
import { isApiKey, keyPrefix } from "./keys.js";
import type { OidcVerifier, TokenRejection } from "./oidc.js";
import type { ApiKeyRecord, IdentityStore, KeyRejection } from "./store.js";

export type AuthRejection = KeyRejection | TokenRejection | "no_credentials" | "oidc_not_configured";

export interface AuthFailure {
  reason: AuthRejection;
  /** The first characters of a presented API key (never the key). */
  keyPrefix?: string;
}

export type Authentication = { caller: Caller } | { failure: AuthFailure };

/** What the HTTP server needs to know about identities (the runtime's Identities, or a test double). */
export interface Authenticator {
  authenticate(credential: string): Promise<Authentication>;
}

export class Identities implements Authenticator {
  constructor(
    readonly store: IdentityStore,
    private readonly oidc: OidcVerifier | null = null,
  ) {}

  async authenticate(credential: string): Promise<Authentication> {
    const token = credential.trim();
    if (token === "") return { failure: { reason: "no_credentials" } };
    if (isApiKey(token)) {
      const r = await this.store.verifyKey(token);
      return "caller" in r ? r : { failure: { reason: r.rejected, keyPrefix: keyPrefix(token) } };
    }
    if (!this.oidc) return { failure: { reason: "oidc_not_configured" } };
    const r = await this.oidc.verify(token);
    return "caller" in r ? r : { failure: { reason: r.rejected } };
  }

  /**
   * First start of a workspace: when it has no working key, `adminKey` (OUTPOST_ADMIN_KEY) becomes its admin
   * key, or a new one is created and returned (to be shown once). Null when the workspace already has a key.
   */
  async ensureAdminKey(workspace: string, adminKey?: string): Promise<{ record: ApiKeyRecord; key: string | null } | null> {
    await this.store.ensureWorkspace(workspace);
    if ((await this.store.countActiveKeys(workspace)) > 0) {
      // An adopted key given again (a restart with the same environment) is fine; any other is left alone.
      return null;
    }
    const input = { name: "admin", roles: ["admin" as const], createdBy: "local" };
    if (adminKey) return { record: await this.store.adoptKey(workspace, adminKey, input), key: null };
    const created = await this.store.createKey({ workspace, ...input });
    return { record: created.record, key: created.key };
  }
}
