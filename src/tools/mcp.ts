/**
 * The MCP client: a ToolSource whose tools are those of one MCP server,
 * reached over stdio (a child process Outpost starts) or Streamable HTTP.
 *
 * What it promises (see ToolSource): a dead or hung server never takes Outpost
 * down. A call in flight when the server dies, or one that outlives its timeout
 * (cancelled on the server), fails at once with ToolOutcomeUnknown — the run
 * loop retries such a call with its key if it has side effects, and reports it
 * otherwise; while the server is down, calls fail fast with ToolUnavailable and
 * the source reconnects in the background with exponential backoff; a server
 * that times out several calls in a row is restarted.
 *
 * Secrets: `env` and `headers` values (after `${VAR}` expansion and `secret://`
 * resolution, both at connect time) are never logged nor put in an error; they
 * are also masked in the server's own stderr and error texts before those reach
 * the log, and (with a vault) in results. Under an egress allowlist the server's
 * URL must be allowed and redirects are not followed.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { setMaxListeners } from "node:events";
import { statSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ReadBuffer, serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  type CallToolResult,
  CallToolResultSchema,
  ErrorCode,
  type JSONRPCMessage,
  McpError,
  type Tool,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { expandEnv } from "../definitions/models.js";
import type { McpConnection, ToolDefinition, ToolHandlerArgs } from "../definitions/types.js";
import { validatorFor } from "./json-schema.js";
import { resolveSecretRefs } from "./secret-refs.js";
import { ToolOutcomeUnknown, type ToolSource, type ToolSourceDeps, type ToolSourceStatus, ToolUnavailable } from "./source.js";

/** Reconnect backoff: 250 ms doubling to 30 s, each delay jittered by ±25 %. */
const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 30_000;
/** A connection that stayed up this long starts its backoff from the beginning again when it drops. */
const STABLE_AFTER_MS = 30_000;
/** This many calls in a row without an answer and the server is taken for hung: it is restarted. */
const HUNG_AFTER_TIMEOUTS = 3;
/** How long an HTTP server may take to answer the ping sent after a transport error. */
const PROBE_TIMEOUT_MS = 5_000;
/** A burst of `tools/list_changed` notifications causes one refresh. */
const REFRESH_DEBOUNCE_MS = 100;
/** Stopping a child: stdin closed, then SIGTERM, then SIGKILL. */
const EXIT_GRACE_MS = 500;
const TERM_GRACE_MS = 2_000;
const MAX_PAGES = 1_000;
const STDERR_TAIL_LINES = 5;
const IDEMPOTENCY_META_KEY = "outpost/idempotency_key";

type Log = ToolSourceDeps["log"] & { debug?(obj: object, msg: string): void };

/** `getTicket`, `get-ticket`, `Get Ticket` → `get_ticket`; null when nothing usable is left (e.g. `42`). */
export function normalizeToolName(remote: string): string | null {
  const name = remote
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "") // accents: é → e
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2") // HTTPStatus → HTTP_Status
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2") // getTicket → get_Ticket
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "");
  return /^[a-z][a-z0-9_]*$/.test(name) ? name : null;
}

/** 30000 → "30 s", 1500 → "1.5 s", 300 → "300 ms". */
function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const seconds = ms / 1000;
  return `${Number.isInteger(seconds) ? seconds : Number(seconds.toFixed(1))} s`;
}

/** The model's view of a tool result: text as is, structured content as JSON, media summarized (never base64). */
/** Any JSON-RPC result: how it reads is decided by readableResult, never by a refusal. */
const ANY_RESULT = z.looseObject({});

/** A tools/call answer as a CallToolResult; an answer that does not have that shape becomes its JSON as text. */
function readableResult(raw: unknown): CallToolResult {
  const parsed = CallToolResultSchema.safeParse(raw);
  if (parsed.success) return parsed.data as CallToolResult;
  return { content: [{ type: "text", text: `[the server's answer did not follow MCP's result format] ${JSON.stringify(raw)}` }] };
}

export function resultText(result: Pick<CallToolResult, "content" | "structuredContent">): string {
  const parts: string[] = [];
  let hasText = false;
  for (const block of result.content ?? []) {
    switch (block.type) {
      case "text":
        hasText = true;
        parts.push(block.text);
        break;
      case "image":
      case "audio":
        parts.push(`[${block.type}: ${block.mimeType}, ${base64Bytes(block.data)} bytes]`);
        break;
      case "resource_link":
        parts.push(`[resource: ${block.uri}]`);
        break;
      case "resource": {
        const r = block.resource;
        if ("text" in r && typeof r.text === "string") {
          hasText = true;
          parts.push(`[resource: ${r.uri}]\n${r.text}`);
        } else {
          const blob = "blob" in r && typeof r.blob === "string" ? r.blob : "";
          parts.push(`[resource: ${r.uri}${r.mimeType ? `, ${r.mimeType}` : ""}, ${base64Bytes(blob)} bytes]`);
        }
        break;
      }
      default:
        parts.push(`[${(block as { type?: string }).type ?? "unknown"} content]`);
    }
  }
  if (!hasText && result.structuredContent !== undefined) parts.unshift(JSON.stringify(result.structuredContent));
  return parts.join("\n");
}

function base64Bytes(data: string): number {
  const clean = data.replace(/\s/g, "");
  const padding = clean.endsWith("==") ? 2 : clean.endsWith("=") ? 1 : 0;
  return Math.max(0, Math.floor((clean.length * 3) / 4) - padding);
}

/** A connection problem the user must fix (e.g. an unset environment variable): described as is. */
class ConnectError extends Error {}

/** The child process of a stdio server, speaking newline-delimited JSON-RPC on stdin/stdout. Unlike the
 * SDK's stdio transport it keeps the exit code and the tail of stderr (for errors people can act on), and
 * puts the server in its own process group so that stopping it also stops what it started. */
class ChildProcessTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  /** How the process ended, once it has. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  /** Set when Outpost stopped the process (so its end is not reported as a crash). */
  stopping = false;
  /** A protocol failure that made us stop the process. */
  failure: string | null = null;
  readonly stderrTail: string[] = [];
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private readonly buffer = new ReadBuffer();
  private stderrCarry = "";
  private closing: Promise<void> | null = null;
  private readonly group = process.platform !== "win32";

  constructor(
    private readonly params: { command: string; args: string[]; cwd: string; env: Record<string, string> },
    private readonly onStderrLine: (line: string) => void,
  ) {}

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      let spawned = false;
      let child: ChildProcess;
      try {
        child = spawn(this.params.command, this.params.args, {
          cwd: this.params.cwd,
          env: this.params.env,
          stdio: ["pipe", "pipe", "pipe"],
          detached: this.group, // its own process group: see stop()
          shell: false,
          windowsHide: true,
        });
      } catch (err) {
        reject(err);
        return;
      }
      this.child = child;
      this.exited = new Promise((done) => {
        child.once("close", (code, signal) => {
          this.exit = { code, signal };
          this.flushStderr();
          done();
          this.onclose?.();
        });
      });
      child.on("error", (err) => {
        if (!spawned) reject(err);
        else this.onerror?.(err);
      });
      child.once("spawn", () => {
        spawned = true;
        resolve();
      });
      // Stream errors (EPIPE once it is gone…) are reported, never thrown: its exit is what ends the session.
      child.stdin?.on("error", (err) => this.onerror?.(err));
      child.stdout?.on("error", (err) => this.onerror?.(err));
      child.stderr?.on("error", (err) => this.onerror?.(err));
      child.stdout?.on("data", (chunk: Buffer) => this.onStdout(chunk));
      child.stderr?.setEncoding("utf8");
      child.stderr?.on("data", (text: string) => this.onStderr(text));
    });
  }

  private onStdout(chunk: Buffer): void {
    try {
      this.buffer.append(chunk);
    } catch (err) {
      this.failure = `the MCP server sent a message too large to read (${(err as Error).message})`;
      this.onerror?.(new Error(this.failure));
      void this.close();
      return;
    }
    for (;;) {
      let message: JSONRPCMessage | null;
      try {
        message = this.buffer.readMessage();
      } catch {
        this.onerror?.(new Error("the MCP server wrote a line to stdout that is not JSON-RPC (servers must log to stderr)"));
        continue;
      }
      if (message === null) return;
      this.onmessage?.(message);
    }
  }

  private onStderr(text: string): void {
    const lines = (this.stderrCarry + text).split(/\r?\n/);
    this.stderrCarry = lines.pop() ?? "";
    if (this.stderrCarry.length > 8192) {
      lines.push(this.stderrCarry);
      this.stderrCarry = "";
    }
    for (const line of lines) this.stderrLine(line);
  }

  private flushStderr(): void {
    if (this.stderrCarry) this.stderrLine(this.stderrCarry);
    this.stderrCarry = "";
  }

  private stderrLine(line: string): void {
    if (!line.trim()) return;
    this.stderrTail.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
    if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
    this.onStderrLine(line);
  }

  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (!stdin?.writable || this.exit) return Promise.reject(new Error("the MCP server is not running"));
    // A write that fails surfaces as the stdin "error" event, and the process's exit fails the request.
    return new Promise((resolve) => {
      if (stdin.write(serializeMessage(message))) resolve();
      else stdin.once("drain", () => resolve());
    });
  }

  /** Stops the process: stdin closed (a polite server exits), then SIGTERM, then SIGKILL. Resolves once it is gone. */
  close(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  private async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child || child.pid === undefined) return;
    if (!this.exit) {
      child.stdin?.end();
      if (!(await this.waitExit(EXIT_GRACE_MS))) {
        this.signal(child, "SIGTERM");
        if (!(await this.waitExit(TERM_GRACE_MS))) {
          this.signal(child, "SIGKILL");
          await this.waitExit(TERM_GRACE_MS);
        }
      }
    }
    // Whatever the server started and left behind in its group goes with it.
    if (this.group) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // none left
      }
    }
    this.buffer.clear();
  }

  private signal(child: ChildProcess, signal: NodeJS.Signals): void {
    try {
      if (this.group && child.pid !== undefined) process.kill(-child.pid, signal);
      else child.kill(signal);
    } catch {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    }
  }

  private async waitExit(ms: number): Promise<boolean> {
    if (this.exit) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    try {
      return await Promise.race([this.exited.then(() => true), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** One connection to the server: from connect to its loss or close. */
interface Session {
  client: Client;
  transport: Transport;
  child: ChildProcessTransport | null;
  /** Why it ended (set once): "the MCP server exited (code 1)". */
  lost: string | null;
  readyAt: number;
  probing: boolean;
  disposed: Promise<void> | null;
}

class McpSource implements ToolSource {
  readonly name: string;
  private state: ToolSourceStatus["state"] = "connecting";
  private error: string | undefined;
  private definitions: ToolDefinition[] = [];
  /** The live session, only while ready. */
  private session: Session | null = null;
  /** Every session not yet disposed (also those still connecting): close() disposes them all. */
  private readonly sessions = new Set<Session>();
  private connecting: Promise<void> | null = null;
  private started: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  /** Consecutive failed connects (or quick losses): the backoff exponent. */
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private nextAttemptAt = 0;
  private refreshTimer: NodeJS.Timeout | undefined;
  private consecutiveTimeouts = 0;
  private lastLoggedError: string | undefined;
  private readonly warnedSettings = new Set<string>();
  private readonly log: Log;
  /** Expanded env / header values: masked wherever server text is shown. */
  private secrets: string[] = [];

  constructor(
    private readonly connection: McpConnection,
    private readonly deps: ToolSourceDeps,
  ) {
    this.name = connection.name;
    this.log = deps.log as Log;
  }

  start(): Promise<void> {
    if (this.state === "closed") return Promise.resolve();
    this.started ??= this.connectNow();
    return this.started;
  }

  tools(): ToolDefinition[] {
    return this.definitions;
  }

  status(): ToolSourceStatus {
    const status: ToolSourceStatus = { state: this.state, tools: this.definitions.length };
    if (this.error && (this.state === "down" || this.state === "connecting")) status.error = this.error;
    return status;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.state = "closed";
    this.error = undefined;
    clearTimeout(this.retryTimer);
    clearTimeout(this.refreshTimer);
    const live = this.session;
    this.session = null;
    if (live?.transport instanceof StreamableHTTPClientTransport) {
      // Tell the server the session is over (best effort, bounded).
      await withTimeout(live.transport.terminateSession(), 1_000).catch(() => undefined);
    }
    for (const s of this.sessions) s.lost ??= "closed";
    await Promise.all([...this.sessions].map((s) => this.dispose(s)));
    await this.connecting?.catch(() => undefined);
    // A connect that was in its last step when we closed created nothing new: but make sure.
    await Promise.all([...this.sessions].map((s) => this.dispose(s)));
  }

  // ---- connecting ---------------------------------------------------------

  private connectNow(): Promise<void> {
    if (this.connecting) return this.connecting;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.state = "connecting";
    const attempt = this.openSession().then(
      ({ session, tools }) => {
        if (this.state === "closed") {
          void this.dispose(session);
          return;
        }
        session.readyAt = Date.now();
        this.session = session;
        this.state = "ready";
        this.error = undefined;
        this.lastLoggedError = undefined;
        this.consecutiveTimeouts = 0;
        this.install(tools);
        this.log.info({ connection: this.name, tools: this.definitions.length }, "MCP server connected");
      },
      (err) => {
        if (this.state === "closed") return;
        const reason = err instanceof ConnectError ? err.message : String((err as Error)?.message ?? err);
        this.state = "down";
        this.error = reason;
        this.failures++;
        const delay = this.scheduleRetry();
        const line = { connection: this.name, error: reason, retry_in_ms: delay };
        if (reason !== this.lastLoggedError) this.log.warn(line, "MCP server unavailable; retrying in the background");
        else this.log.debug?.(line, "MCP server still unavailable");
        this.lastLoggedError = reason;
      },
    );
    this.connecting = attempt.finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private scheduleRetry(): number {
    clearTimeout(this.retryTimer);
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.max(0, this.failures - 1));
    const delay = Math.round(Math.min(BACKOFF_MAX_MS, base * (0.75 + Math.random() * 0.5)));
    this.nextAttemptAt = Date.now() + delay;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.state !== "closed") void this.connectNow();
    }, delay);
    this.retryTimer.unref();
    return delay;
  }

  /** Connects, initializes and lists the tools, all within connectTimeoutMs; on failure leaves nothing running. */
  private async openSession(): Promise<{ session: Session; tools: Tool[] }> {
    const deadline = Date.now() + this.connection.connectTimeoutMs;
    const { transport, child } = await this.makeTransport();
    const client = new Client({ name: "outpost", version: "0.1.0" }, { capabilities: {} });
    const session: Session = { client, transport, child, lost: null, readyAt: 0, probing: false, disposed: null };
    this.sessions.add(session);
    client.onclose = () => this.onClosed(session);
    client.onerror = (err) => this.onTransportError(session, err);
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => this.scheduleRefresh(session));
    try {
      const work = (async () => {
        await client.connect(transport, { timeout: remaining(deadline) });
        if (!client.getServerCapabilities()?.tools) {
          this.log.warn({ connection: this.name }, "the MCP server offers no tools");
          return [];
        }
        return this.listAll(client, deadline);
      })();
      const tools = await withTimeout(work, remaining(deadline));
      if (session.lost) throw new Error(session.lost);
      return { session, tools };
    } catch (err) {
      const reason = this.describeConnectFailure(err, session);
      session.lost ??= reason;
      await this.dispose(session);
      throw new ConnectError(reason);
    }
  }

  private async makeTransport(): Promise<{ transport: Transport; child: ChildProcessTransport | null }> {
    const t = this.connection.transport;
    const secrets: string[] = [];
    // `${VAR}` from the environment, then `secret://name` from the vault: both values are masked from then on.
    const expand = async (text: string, where: string): Promise<string> => {
      const { text: out, required } = expandEnv(text, this.deps.env);
      const missing = required.find((name) => this.deps.env[name] === undefined || this.deps.env[name] === "");
      if (missing)
        throw new ConnectError(`environment variable ${missing} is not set (connections.${this.name}.mcp.${where} refers to it)`);
      for (const name of required) {
        secrets.push(this.deps.env[name] ?? "");
        this.deps.secrets?.protect(`env:${name}`, this.deps.env[name] ?? "");
      }
      try {
        const resolved = await resolveSecretRefs(out, this.deps.secrets, this.name, `connections.${this.name}.mcp.${where}`);
        secrets.push(...resolved.values);
        return resolved.text;
      } catch (err) {
        throw new ConnectError((err as Error).message);
      }
    };
    if (t.type === "stdio") {
      const env: Record<string, string> = { ...getDefaultEnvironment() };
      for (const [key, value] of Object.entries(t.env)) {
        env[key] = await expand(value, `env.${key}`);
        secrets.push(env[key]);
      }
      env.OUTPOST_DATA_DIR = this.deps.dataDir;
      this.secrets = secrets.filter((s) => s.length >= 4);
      let isDir = false;
      try {
        isDir = statSync(t.cwd).isDirectory();
      } catch {
        // reported below
      }
      if (!isDir) throw new ConnectError(`cannot start "${t.command}": its working directory ${t.cwd} does not exist`);
      const child = new ChildProcessTransport({ command: t.command, args: t.args, cwd: t.cwd, env }, (line) =>
        this.log.debug?.({ connection: this.name, stderr: this.mask(line) }, "MCP server stderr"),
      );
      return { transport: child, child };
    }
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(t.headers)) {
      headers[key] = await expand(value, `headers.${key}`);
      secrets.push(headers[key]);
    }
    const url = await expand(t.url, "url");
    this.secrets = secrets.filter((s) => s.length >= 4);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ConnectError(`${t.url} is not a valid URL (connections.${this.name}.mcp.url)`);
    }
    const egress = this.deps.egress;
    const configured = [parsed.host];
    const guard = (target: URL): void => {
      try {
        egress?.check(target, this.name, configured);
      } catch (err) {
        throw new ConnectError(this.mask((err as Error).message));
      }
    };
    guard(parsed);
    const transport = new StreamableHTTPClientTransport(parsed, {
      requestInit: { headers },
      // The transport hands one long-lived signal to every request, and fetch lets go of its listener only when
      // the request is garbage-collected: without this, a busy connection prints MaxListenersExceededWarning.
      fetch: (url, init) => {
        if (init?.signal) setMaxListeners(0, init.signal);
        if (!egress) return fetch(url, init);
        guard(new URL(String(url)));
        // A redirect could lead anywhere (with the headers): under an egress allowlist it is an error, not followed.
        return fetch(url, { ...init, redirect: "error" });
      },
      reconnectionOptions: { initialReconnectionDelay: 500, maxReconnectionDelay: 5_000, reconnectionDelayGrowFactor: 2, maxRetries: 2 },
    });
    return { transport, child: null };
  }

  private async listAll(client: Client, deadline: number): Promise<Tool[]> {
    const tools: Tool[] = [];
    const seen = new Set<string>();
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const result = await client.listTools(cursor === undefined ? {} : { cursor }, { timeout: remaining(deadline) });
      tools.push(...result.tools);
      cursor = result.nextCursor;
      if (!cursor || seen.has(cursor)) break;
      seen.add(cursor);
    }
    return tools;
  }

  private scheduleRefresh(session: Session): void {
    if (session !== this.session) return;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => void this.refresh(session), REFRESH_DEBOUNCE_MS);
    this.refreshTimer.unref();
  }

  private async refresh(session: Session): Promise<void> {
    try {
      const tools = await this.listAll(session.client, Date.now() + this.connection.connectTimeoutMs);
      if (session !== this.session) return;
      this.install(tools);
      this.log.info({ connection: this.name, tools: this.definitions.length }, "MCP server tools changed");
    } catch (err) {
      if (session !== this.session) return;
      if (err instanceof McpError && err.code !== ErrorCode.ConnectionClosed) {
        this.log.warn({ connection: this.name, error: this.describe(err) }, "MCP server tools changed, but listing them failed");
      } else {
        this.lose(session, this.describe(err));
      }
    }
  }

  // ---- losing the connection ---------------------------------------------------

  /** The transport closed: the server went away (while connecting, the connect fails on its own). */
  private onClosed(session: Session): void {
    if (session.lost) return;
    const reason = this.describeEnd(session) ?? "the connection to the MCP server closed";
    if (session === this.session) this.lose(session, reason);
    else session.lost = reason;
  }

  private onTransportError(session: Session, err: Error): void {
    if (session.lost) return;
    const message = this.mask(String(err?.message ?? err));
    this.log.debug?.({ connection: this.name, error: message }, "MCP transport error");
    if (session !== this.session || session.child || session.probing) return;
    // Over HTTP a broken stream does not close the transport: ask the server whether it is still there.
    session.probing = true;
    session.client.ping({ timeout: PROBE_TIMEOUT_MS }).then(
      () => {
        session.probing = false;
      },
      (probeErr) => {
        session.probing = false;
        if (session === this.session && !session.lost) this.lose(session, this.describe(probeErr));
      },
    );
  }

  /** The live session is gone: fail what is in flight, stop it, and reconnect with backoff. */
  private lose(session: Session, reason: string): void {
    if (session.lost) return;
    session.lost = reason;
    if (this.session !== session) return;
    this.session = null;
    clearTimeout(this.refreshTimer);
    if (this.state === "closed") return;
    this.state = "down";
    this.error = reason;
    if (Date.now() - session.readyAt > STABLE_AFTER_MS) this.failures = 0;
    this.failures++;
    const delay = this.scheduleRetry();
    const stderr = session.child?.stderrTail.map((line) => this.mask(line)) ?? [];
    this.log.warn({ connection: this.name, error: reason, retry_in_ms: delay, stderr }, "MCP server connection lost; reconnecting");
    void this.dispose(session);
  }

  private dispose(session: Session): Promise<void> {
    session.disposed ??= (async () => {
      session.lost ??= "closed";
      try {
        // Closing the transport fails every request still pending on it.
        await session.transport.close();
      } catch {
        // already closed
      }
      this.sessions.delete(session);
    })();
    return session.disposed;
  }

  // ---- calls ----------------------------------------------------------------

  private async call(tool: string, remote: string, timeoutMs: number, args: ToolHandlerArgs<Record<string, unknown>>): Promise<string> {
    // Answer a little before the executor's own timer (same timeoutMs), so the run records our clearer message.
    const budget = Math.max(1, timeoutMs - Math.min(1_000, Math.floor(timeoutMs / 20)));
    const deadline = Date.now() + budget;
    const outer = args.context.signal;
    const session = await this.sessionFor(deadline, outer);

    // One signal per call: the SDK never removes the listener it adds, so a long-lived signal would collect them.
    const controller = new AbortController();
    const onAbort = () => controller.abort(outer.reason);
    if (outer.aborted) controller.abort(outer.reason);
    else outer.addEventListener("abort", onAbort, { once: true });
    try {
      // A plain request, not callTool: the SDK's callTool checks the answer against the tool's output schema
      // AFTER the server ran it, and a write that was applied must never come back as "refused".
      const result = readableResult(
        await session.client.request(
          { method: "tools/call", params: { name: remote, arguments: args.input, _meta: { [IDEMPOTENCY_META_KEY]: args.idempotencyKey } } },
          ANY_RESULT,
          { signal: controller.signal, timeout: remaining(deadline) },
        ),
      );
      this.consecutiveTimeouts = 0;
      if (result.isError) {
        const text = this.mask(resultText(result as CallToolResult)).trim();
        throw new ToolFailed(text || `${tool} reported an error without a message`);
      }
      const text = resultText(result as CallToolResult);
      return this.deps.secrets ? this.deps.secrets.redact(text) : text;
    } catch (err) {
      if (err instanceof ToolFailed) throw new Error(err.message);
      if (outer.aborted) throw outer.reason instanceof Error ? outer.reason : new Error(`${tool} was cancelled`);
      if (session.lost) {
        if (this.state === "closed") {
          throw new ToolOutcomeUnknown(`${this.name}: the connection was closed during the call (Outpost is shutting down)`);
        }
        throw new ToolOutcomeUnknown(`${this.name}: ${session.lost} during the call; Outpost is reconnecting`);
      }
      if (err instanceof McpError && err.code === ErrorCode.RequestTimeout) {
        this.consecutiveTimeouts++;
        if (this.consecutiveTimeouts >= HUNG_AFTER_TIMEOUTS) {
          this.consecutiveTimeouts = 0;
          this.lose(session, `the MCP server did not answer ${HUNG_AFTER_TIMEOUTS} calls in a row (restarting it)`);
        }
        throw new ToolOutcomeUnknown(`${tool} did not answer within ${formatDuration(timeoutMs)}`);
      }
      if (err instanceof McpError && err.code !== ErrorCode.ConnectionClosed) {
        // The server answered, with a protocol error (unknown tool, invalid arguments…).
        this.consecutiveTimeouts = 0;
        throw new Error(`${this.name} refused the call: ${this.describe(err)}`);
      }
      // The transport failed (HTTP 5xx, connection refused, a broken stream): the session is gone.
      const reason = this.describe(err);
      this.lose(session, reason);
      throw new ToolOutcomeUnknown(`${this.name}: ${reason} during the call; Outpost is reconnecting`);
    } finally {
      outer.removeEventListener("abort", onAbort);
    }
  }

  /** The live session; waits for a connect in progress (within the call's time), fails fast while down. */
  private async sessionFor(deadline: number, signal: AbortSignal): Promise<Session> {
    if (this.session) return this.session;
    if (this.state === "closed") throw new ToolUnavailable(`${this.name} is closed (Outpost is shutting down)`);
    if (!this.connecting && this.retryTimer === undefined) void this.connectNow(); // never started
    if (this.connecting) {
      await raceWith(this.connecting, remaining(deadline), signal);
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error("cancelled");
      if (this.session) return this.session;
    }
    throw new ToolUnavailable(this.unavailable());
  }

  private unavailable(): string {
    const reason = this.error ?? "not connected yet";
    if (this.state === "closed") return `${this.name} is closed (Outpost is shutting down)`;
    const next = this.connecting
      ? "reconnecting now"
      : `reconnecting (next attempt in ${formatDuration(roundUp(this.nextAttemptAt - Date.now()))})`;
    return `${this.name} is unavailable: ${reason}; ${next}`;
  }

  // ---- tool definitions ------------------------------------------------------

  private install(remoteTools: Tool[]): void {
    const c = this.connection;
    const include = c.include ? new Set(c.include) : null;
    const exclude = new Set(c.exclude ?? []);
    const offered = new Set(remoteTools.map((t) => t.name));
    for (const [what, names] of [
      ["include", c.include ?? []],
      ["tools", Object.keys(c.tools)],
    ] as const) {
      for (const n of names) {
        const key = `${what}:${n}`;
        if (offered.has(n) || this.warnedSettings.has(key)) continue;
        this.warnedSettings.add(key);
        this.log.warn({ connection: this.name, tool: n }, `connections.${this.name}.${what} names a tool the MCP server does not offer`);
      }
    }

    const chosen = new Map<string, Tool>();
    for (const tool of remoteTools) {
      if ((include && !include.has(tool.name)) || exclude.has(tool.name)) continue;
      const local = normalizeToolName(tool.name);
      if (!local) {
        this.log.warn(
          { connection: this.name, tool: tool.name },
          "MCP tool skipped: its name has no letters to make an Outpost tool name from",
        );
        continue;
      }
      const taken = chosen.get(local);
      if (taken) {
        // The one already spelled like the Outpost name wins; otherwise the first listed.
        const keep = tool.name === local && taken.name !== local ? tool : taken;
        const skip = keep === tool ? taken : tool;
        chosen.set(local, keep);
        this.log.warn(
          { connection: this.name, tool: skip.name, kept: keep.name, name: `${this.name}.${local}` },
          "MCP tool skipped: its name collides with another tool's once normalized",
        );
        continue;
      }
      chosen.set(local, tool);
    }
    this.definitions = [...chosen].map(([local, tool]) => this.definition(local, tool));
  }

  private definition(local: string, tool: Tool): ToolDefinition<Record<string, unknown>, string> {
    const c = this.connection;
    const settings = c.tools[tool.name] ?? {};
    const name = `${this.name}.${local}`;
    const inputSchema = tool.inputSchema as Record<string, unknown>;
    const timeoutMs = settings.timeoutMs ?? c.timeoutMs;
    const def: ToolDefinition<Record<string, unknown>, string> = {
      name,
      description: tool.description || tool.title || tool.annotations?.title || `${tool.name} (from ${this.name})`,
      input: validatorFor(inputSchema),
      inputSchema,
      sideEffects: settings.sideEffects ?? tool.annotations?.readOnlyHint !== true,
      timeoutMs,
      handler: (args) => this.call(name, tool.name, timeoutMs, args),
      file: c.file,
    };
    if (settings.approval) def.approval = settings.approval;
    const classification = settings.classification ?? c.classification;
    if (classification) def.classification = classification;
    return def;
  }

  // ---- describing failures (no secrets) -------------------------------------------

  /** How a stdio server ended, if it has. */
  private describeEnd(session: Session): string | null {
    const child = session.child;
    if (!child) return null;
    if (child.failure) return child.failure;
    if (!child.exit) return null;
    const { code, signal } = child.exit;
    return signal ? `the MCP server was killed by ${signal}` : `the MCP server exited (code ${code})`;
  }

  private describeConnectFailure(err: unknown, session: Session): string {
    if (err instanceof ConnectError) return err.message;
    const t = this.connection.transport;
    if (t.type === "stdio") {
      const code = (err as NodeJS.ErrnoException)?.code;
      if (code === "ENOENT") return `cannot start "${t.command}": command not found`;
      if (code === "EACCES") return `cannot start "${t.command}": permission denied`;
      const ended = this.describeEnd(session);
      if (ended) {
        const last = session.child?.stderrTail.at(-1);
        return `${ended} while starting${last ? `: ${this.mask(last)}` : ""}`;
      }
      if (err instanceof TimeoutError || (err instanceof McpError && err.code === ErrorCode.RequestTimeout)) {
        return `the MCP server "${t.command}" did not finish starting within ${formatDuration(this.connection.connectTimeoutMs)}`;
      }
      return `cannot start "${t.command}": ${this.describe(err)}`;
    }
    if (err instanceof TimeoutError || (err instanceof McpError && err.code === ErrorCode.RequestTimeout)) {
      return `${t.url} did not finish connecting within ${formatDuration(this.connection.connectTimeoutMs)}`;
    }
    return `cannot connect to ${t.url}: ${this.describe(err)}`;
  }

  /** An error in words, with secrets masked. */
  private describe(err: unknown): string {
    if (err instanceof StreamableHTTPError) {
      if (err.code === 404) return "the MCP server no longer knows this session (HTTP 404)";
      const body = err.message.replace(/^Streamable HTTP error: /, "").replace(/^Error POSTing to endpoint: ?/, "");
      return this.mask(`the MCP server answered HTTP ${err.code ?? "error"}${body && body !== "null" ? ` (${oneLine(body)})` : ""}`);
    }
    if (err instanceof McpError) {
      if (err.code === ErrorCode.RequestTimeout) return "the MCP server did not answer in time";
      if (err.code === ErrorCode.ConnectionClosed) return "the connection to the MCP server closed";
      return this.mask(oneLine(err.message.replace(/^MCP error -?\d+: /, "")));
    }
    const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
    const code = e?.code ?? e?.cause?.code;
    const known: Record<string, string> = {
      ECONNREFUSED: "the MCP server could not be reached (connection refused)",
      ECONNRESET: "the connection to the MCP server was reset",
      ENOTFOUND: "the MCP server's host name was not found",
      ETIMEDOUT: "the MCP server could not be reached (timed out)",
      EHOSTUNREACH: "the MCP server's host is unreachable",
      UND_ERR_SOCKET: "the MCP server closed the connection",
      EPIPE: "the connection to the MCP server broke",
    };
    if (code && known[code]) return known[code];
    const message = e?.cause?.message && e.message === "fetch failed" ? `fetch failed: ${e.cause.message}` : (e?.message ?? String(err));
    return this.mask(oneLine(message));
  }

  private mask(text: string): string {
    let out = this.deps.secrets ? this.deps.secrets.redact(text) : text;
    for (const secret of this.secrets) out = out.split(secret).join("***");
    return out;
  }
}

class ToolFailed extends Error {}
class TimeoutError extends Error {}

function remaining(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}

function roundUp(ms: number): number {
  return ms >= 1000 ? Math.ceil(ms / 1000) * 1000 : Math.max(0, ms);
}

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError("timed out")), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** Waits for `work` to settle, for at most `ms`, or until `signal` aborts; never rejects. */
async function raceWith(work: Promise<unknown>, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<void>((resolve) => {
    onAbort = resolve;
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    await Promise.race([withTimeout(work, ms).catch(() => undefined), aborted]);
  } finally {
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
}

/** The tools of one MCP server as a ToolSource. */
export function mcpSource(connection: McpConnection, deps: ToolSourceDeps): ToolSource {
  return new McpSource(connection, deps);
}
