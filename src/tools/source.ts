/**
 * A ToolSource is a remote system whose tools an Outpost uses: an MCP server
 * or an OpenAPI document. Outpost starts every source at boot, asks it for its
 * tools whenever an agent's tool list is built, and closes it at shutdown.
 *
 * A source must never take Outpost down: an unreachable or crashing system is
 * reported by status() and retried in the background. A call made while it is
 * down fails with ToolUnavailable; one it may have applied (it went away or
 * stopped answering mid-call) with ToolOutcomeUnknown, which the run loop
 * retries with the same key rather than report.
 */
import type { ToolDefinition } from "../definitions/types.js";

export interface ToolSourceStatus {
  state: "connecting" | "ready" | "down" | "closed";
  /** Why it is down (no secrets). */
  error?: string;
  tools: number;
}

export interface ToolSource {
  /** The connection's name: every tool it offers is named `<name>.<remote tool>`. */
  readonly name: string;
  /** Connects and discovers tools. Resolves once ready or once the first attempt failed (it then
   * keeps retrying in the background with backoff); never rejects for an unreachable system. */
  start(): Promise<void>;
  /** Its tools as currently known (empty until first discovered). */
  tools(): ToolDefinition[];
  status(): ToolSourceStatus;
  close(): Promise<void>;
}

export interface ToolSourceDeps {
  /** For `${VAR}` expansion at connect time. */
  env: NodeJS.ProcessEnv;
  /** Outpost's data folder: stdio MCP servers get it as OUTPOST_DATA_DIR, to keep their own state beside Outpost's. */
  dataDir: string;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** Resolves `secret://name` in connection settings at connect/call time (security/vault); without it such a
   * reference is an error saying so. */
  secrets?: ConnectionSecrets;
  /** Which hosts HTTP tools may reach (security/egress); without it, any. */
  egress?: EgressGuard;
}

/** `secret://name` references, resolved only when connecting or calling: resolved values never sit in the Project. */
export interface ConnectionSecrets {
  /** The value of `secret://name` for `connection`; rejects with a message saying how to set it when it is missing. */
  resolve(name: string, connection: string): Promise<string>;
  /** Registers a value that must never leave (an environment value a connection uses), masked as `[secret:label]`. */
  protect(label: string, value: string): void;
  /** Masks every resolved or protected value. */
  redact(text: string): string;
}

/** Decides whether an HTTP tool may send a request to a URL; throws a message naming the host and how to allow it. */
export interface EgressGuard {
  /** `configured`: the hosts (host[:port]) this connection's own settings name, allowed when outpost.yaml has no `egress`. */
  check(url: URL, connection: string, configured: readonly string[]): void;
}

/**
 * A call that never reached the system (it is down, or not connected yet): nothing was sent, so the
 * model may be told and may try again.
 */
export class ToolUnavailable extends Error {}

/**
 * A call whose outcome is unknown: the system went away or stopped answering while it had the call,
 * so it may have applied it. The run loop retries such a call with the same idempotency key rather
 * than telling the model it failed (which would invite a second call under a new key).
 */
export class ToolOutcomeUnknown extends Error {}
