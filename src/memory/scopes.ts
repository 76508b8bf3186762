/**
 * Scope names. A scope is written `workspace`, `team/finance`, `agent/refunds`, `user/key:k_12`, `session/ses_…`
 * (`team:finance` is accepted too). Which agent may read or write which scope is a policy decision
 * (memory.read / memory.write on `MemoryScope::"<scope>"`); these functions only name them.
 */
import { OutpostError } from "../core/errors.js";
import type { MemoryScope, ScopeKind } from "./types.js";

const KINDS: readonly ScopeKind[] = ["workspace", "team", "agent", "user", "session"];
const OWNER = /^[A-Za-z0-9_.:@-]{1,200}$/;

export function formatScope(scope: MemoryScope): string {
  return scope.kind === "workspace" ? "workspace" : `${scope.kind}/${scope.owner}`;
}

/** Parses a scope name; a mistake is an `invalid_request` that says what a scope looks like. */
export function parseScope(text: string): MemoryScope {
  const trimmed = text.trim();
  if (trimmed === "workspace") return { kind: "workspace", owner: "" };
  const at = trimmed.search(/[/:]/);
  const kind = (at > 0 ? trimmed.slice(0, at) : trimmed) as ScopeKind;
  const owner = at > 0 ? trimmed.slice(at + 1) : "";
  if (!KINDS.includes(kind) || kind === "workspace") {
    throw new OutpostError(
      "invalid_request",
      `"${short(text)}" is not a memory scope`,
      "a scope is workspace, team/<team>, agent/<agent>, user/<user id> or session/<session id>, e.g. team/finance",
    );
  }
  if (!OWNER.test(owner)) {
    throw new OutpostError(
      "invalid_request",
      `memory scope "${short(text)}" needs the ${kind} it belongs to after "${kind}/"`,
      `e.g. ${kind}/${kind === "team" ? "finance" : kind === "agent" ? "refunds" : kind === "user" ? "key:k_12" : "ses_…"}`,
    );
  }
  return { kind, owner };
}

/** A scope name in its canonical form (`team:finance` → `team/finance`). */
export const normalizeScope = (text: string) => formatScope(parseScope(text));

/** Who a run is, for the scopes it can name: its agent, that agent's teams, the person it acts for, its session. */
export interface RunScopeFacts {
  agent: string;
  teams: string[];
  /** `key:<id>` / `user:<sub>`; null when nobody is known. */
  onBehalfOf: string | null;
  sessionId: string;
}

/** The scopes a run reaches by default, most specific first (what recall searches, subject to policy). */
export function runScopes(facts: RunScopeFacts): string[] {
  const out = [formatScope({ kind: "session", owner: facts.sessionId })];
  if (facts.onBehalfOf) out.push(formatScope({ kind: "user", owner: facts.onBehalfOf }));
  out.push(formatScope({ kind: "agent", owner: facts.agent }));
  for (const team of facts.teams) out.push(formatScope({ kind: "team", owner: team }));
  out.push("workspace");
  return out;
}

/**
 * The scope a memory tool call names: `session`, `user`, `agent` (its own), `team` (its first team, or `team` with
 * a team name), `workspace`, or a full scope name. What it may then do there is for the policy to say.
 */
export function scopeForTool(name: string, facts: RunScopeFacts): string {
  switch (name) {
    case "session":
      return formatScope({ kind: "session", owner: facts.sessionId });
    case "user":
      if (!facts.onBehalfOf) throw new Error("this run acts for nobody known, so it has no user scope; use session or agent");
      return formatScope({ kind: "user", owner: facts.onBehalfOf });
    case "agent":
      return formatScope({ kind: "agent", owner: facts.agent });
    case "team": {
      const team = facts.teams[0];
      if (!team) throw new Error(`agent ${facts.agent} is in no team; use agent or session`);
      return formatScope({ kind: "team", owner: team });
    }
    case "workspace":
      return "workspace";
    default:
      try {
        return normalizeScope(name);
      } catch (err) {
        throw new Error(`${(err as OutpostError).message}: ${(err as OutpostError).hint ?? ""}`);
      }
  }
}

const short = (s: string) => (s.length > 60 ? `${s.slice(0, 60)}…` : s);
