/**
 * Credentials for tests that talk HTTP to an Outpost: one known admin key (adopted at start through
 * OUTPOST_ADMIN_KEY, as an operator would for automation) and a fetch that sends it to the servers a test
 * started, unless the request carries credentials of its own. Tests of authentication itself use their own keys.
 */
import type { Authenticator } from "../../src/security/identity/index.js";

export const TEST_ADMIN_KEY = "opk_TestAdminKey0000000000000000000000000000";
/** An operator of the same workspace: decides approvals, which the one who started a run may not (no self-approval). */
export const approverKeyOf = (adminKey: string) => `${adminKey}Approver`;
export const ADMIN_HEADERS = { authorization: `Bearer ${TEST_ADMIN_KEY}` } as const;

/** For servers over a stand-in API (no store): TEST_ADMIN_KEY is an admin of workspace "test", nothing else is anyone. */
export const testAuthenticator: Authenticator = {
  async authenticate(credential) {
    if (credential !== TEST_ADMIN_KEY) return { failure: { reason: "unknown_key" } };
    return {
      caller: { workspace: "test", id: "key:test", name: "test admin", roles: ["admin"], groups: [], via: "api_key", keyId: "test" },
    };
  },
};

/** Origin → the admin key fetch sends there. */
const origins = new Map<string, string>();
let installed = false;

/** From now on, fetch sends `key` (default TEST_ADMIN_KEY) to `url`'s origin when a request names no credentials. */
export function authorizeFetchTo(url: string, key = TEST_ADMIN_KEY): void {
  origins.set(new URL(url).origin, key);
  if (installed) return;
  installed = true;
  const original = globalThis.fetch;
  globalThis.fetch = (input: string | URL | Request, init?: RequestInit) => {
    const target = input instanceof Request ? input.url : String(input);
    let origin: string;
    try {
      origin = new URL(target).origin;
    } catch {
      return original(input, init);
    }
    const key = origins.get(origin);
    if (key === undefined) return original(input, init);
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    const method = (init?.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
    const deciding = method === "POST" && /^\/v1\/approvals\/[^/]+$/.test(new URL(target).pathname);
    const as = deciding ? approverKeyOf(key) : key;
    if (!headers.has("authorization") && !headers.has("x-api-key")) headers.set("authorization", `Bearer ${as}`);
    return original(input, { ...init, headers });
  };
}
