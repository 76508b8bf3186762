/**
 * The shape of a loaded, validated Outpost project. The zod schemas in this
 * folder parse YAML into exactly these types; the rest of the system reads
 * only these (never raw YAML).
 */

import type { z } from "zod";
import type { ModelLocation, ModelPrice } from "../models/types.js";
import type { WorkflowDefinition } from "../workflows/definition.js";

export type Classification = "public" | "internal" | "confidential" | "restricted";

/** One way to reach a model. An alias lists candidates; the first whose
 * `requiresEnv` variables are all set is used (so the example project runs on
 * the scripted model offline and on a real one when credentials exist). */
export interface ModelCandidate {
  provider: "openai" | "anthropic" | "amazon-bedrock" | "openai-compatible" | "scripted";
  /** Provider model id; "scripted" for the scripted provider. */
  model: string;
  /** openai-compatible (required) / openai (optional). Env references `${VAR}` already expanded. */
  baseUrl?: string;
  /** Name of the env var holding the API key (never the key itself). */
  apiKeyEnv?: string;
  /** Extra HTTP headers for openai-compatible endpoints. */
  headers?: Record<string, string>;
  /** amazon-bedrock region. */
  region?: string;
  /** Env vars that must be set (non-empty) for this candidate to be chosen: `requires_env`, plus
   * `api_key_env` and any `${VAR}` referenced without a default in model/base_url/headers/region. */
  requiresEnv: string[];
  location: ModelLocation;
  price: ModelPrice;
  /** Per-call timeout in ms (default 60 000). */
  timeoutMs: number;
  /** Retries on 429/5xx/network errors, with exponential backoff (default 3). */
  maxRetries: number;
  /** Tokens one call may take, prompt and answer together (`context_window`; absent: known for well-known models). */
  contextWindow?: number;
}

export interface ModelAlias {
  name: string;
  candidates: ModelCandidate[];
}

export interface AgentLimits {
  /** Max model+tool steps in one run (default 50). */
  maxSteps: number;
  /** Max input+output tokens over the run (default 200 000). */
  maxTokens: number;
  /** Max spend in USD over the run (default 1). */
  maxUsd: number;
  /** Max wall time in ms from run start, excluding time spent waiting (default 10 min). */
  maxWallTimeMs: number;
  /** How many malformed model outputs in a row are fed back before the run fails (default 3). */
  maxModelErrors: number;
  /** Child runs one run may start (default 10). */
  maxDelegations: number;
  /** How deep a delegation tree may grow below a top-level run (default 3). */
  maxDepth: number;
  /** Handoffs within one run (default 5): bounds agents passing a conversation back and forth. */
  maxHandoffs: number;
  /** Tool output beyond this many characters is stored as an artifact; the model sees a preview (default 16 000). */
  maxToolOutput: number;
  /** Runs of this agent one workspace may execute at once, across every worker; more wait queued (default: no cap). */
  maxRunning?: number;
}

export interface AgentToolRef {
  /** Tool name as registered, e.g. "orders.lookup"; or "helpdesk.*" for every tool of a connection. */
  name: string;
  /** Overrides the tool's own approval setting for this agent. */
  approval?: "required" | "none";
}

export interface AgentDefinition {
  name: string;
  description: string;
  instructions: string;
  /** Model alias name from outpost.yaml `models`. */
  model: string;
  /** Includes the `delegate.*` / `handoff.*` tools made from `delegates` and `handoffs`. */
  tools: AgentToolRef[];
  delegates: string[];
  handoffs: string[];
  fanOut: "all" | "fail_fast";
  limits: AgentLimits;
  /** The most sensitive data the agent may touch (policy: `principal.clearance_level`). The loader defaults it to
   * "internal"; optional here so hand-built definitions need not name it. */
  clearance?: Classification;
  /** Recall before each model call (memory/): the loader sets it; absent = auto, 5 items, 800 tokens. */
  memory?: AgentMemorySettings;
  /** Bounds of the prompt within the model's window (runtime/context-window.ts); absent = the defaults. */
  context?: AgentContextSettings;
  /** Events that start a run of the agent each time one is emitted: none when absent. */
  onEvents?: string[];
  /** Events the agent may emit, each through its tool `emit.<event>` (tools/events.ts): none when absent. */
  emits?: string[];
  /** Runs started on a timetable (triggers/): none when absent. */
  schedules?: ScheduleDefinition[];
  /** Runs started by other systems, POST /v1/hooks/<name> (triggers/): none when absent. */
  webhooks?: WebhookDefinition[];
  /** Source file, relative to the project root, e.g. "agents/support.yaml". */
  file: string;
}

/** An agent's `schedules:` entry: each occurrence of `cron` (in `timezone`) starts one run with `input`. */
export interface ScheduleDefinition {
  name: string;
  cron: string;
  /** IANA time zone the expression is read in; default UTC. */
  timezone: string;
  input: string;
  /** After downtime: skip the occurrences missed, or catch up on each (up to 100). */
  missed: "skip" | "catch_up";
}

/** An agent's `webhooks:` entry: each delivery to POST /v1/hooks/<name> starts one run. */
export interface WebhookDefinition {
  /** Unique across the project: the URL's last segment. */
  name: string;
  /** The vault secret whose value signs deliveries; absent: callers need an API key that may start runs. */
  secret?: string;
  /** JSON Schema the payload must match. */
  schema?: Record<string, unknown>;
  /** The run's input; `{{payload}}` stands for the payload as JSON. Default: the payload alone. */
  input?: string;
  /** Lower-case header name carrying the delivery id (default x-outpost-delivery). */
  deliveryHeader: string;
}

export interface AgentContextSettings {
  /** `auto`: history past its share of the window is compacted into a running summary; `off`: a run whose prompt
   * outgrows the window fails (context_overflow). */
  compaction: "auto" | "off";
  keepRecent: number;
  historyTokens?: number;
  summaryTokens?: number;
  toolResultTokens?: number;
}

export interface AgentMemorySettings {
  /** `auto`: before each model call, what is relevant is recalled from the scopes the agent may read. */
  recall: "auto" | "off";
  recallLimit: number;
  /** The most tokens the recalled items may take in the prompt. */
  recallTokens: number;
}

export interface ToolContext {
  runId: string;
  sessionId: string;
  agent: string;
  workspace: string;
  /** The run at the top of this run's delegation tree (its own id for a top-level run). */
  rootRunId: string;
  /** Outpost's data folder (e.g. ./.outpost): where a project's own tools may keep local state. */
  dataDir: string;
  /** Aborted when the run is cancelled or the worker shuts down. */
  signal: AbortSignal;
  /** Who the run acts for (`key:<id>`, `user:<sub>`), when known. */
  onBehalfOf?: string | null;
  /** The most sensitive data the run has touched so far, and the agent's clearance. */
  runClassification?: Classification;
  clearance?: Classification;
  /** The model step and tool call this is. */
  step?: number;
  callId?: string;
}

export interface ToolHandlerArgs<I> {
  input: I;
  context: ToolContext;
  /** Stable across retries of the same call: pass it to the system you call so it can de-duplicate. */
  idempotencyKey: string;
}

export interface ToolDefinition<I = any, O = unknown> {
  name: string;
  description: string;
  /** Validates the model's arguments before the call's intent is committed. */
  input: z.ZodType<I>;
  /** The JSON Schema the model is shown. Tools from MCP servers and OpenAPI documents carry their own;
   * project tools leave it out and it is derived from `input`. */
  inputSchema?: Record<string, unknown>;
  /** "required": every call waits for a human approval before it runs. */
  approval?: "required" | "none";
  /** Marks tools with side effects (documentation, and later policy). Default true. */
  sideEffects?: boolean;
  classification?: Classification;
  /** Per-call timeout in ms (default 30 000). */
  timeoutMs?: number;
  handler: (args: ToolHandlerArgs<I>) => Promise<O> | O;
  /** The data class of one result, when it depends on what was returned (memory.recall): raises the run's class
   * above the tool's own. */
  resultClassification?: (result: unknown) => Classification | undefined;
  /** A memory tool: policy decides memory.read / memory.write on the scopes it names (not tool.call), and the run
   * loop passes the allowed scopes in its arguments. */
  memory?: { access: "read" | "write" };
  /** `context.lookup`: the tool call an entity lookup stands for, which policy decides (connector.use, tool.call on
   * the resolving tool with its arguments), or why there is none (an unknown type). */
  context?: { resolve(args: unknown): { tool: ToolDefinition; args: Record<string, unknown> } | { error: string } };
  /** Tools that are not called but resolved by the run loop: delegation to, or handoff to, another agent. */
  collaboration?: { kind: "delegate" | "handoff"; agent: string };
  /** Where it was defined, relative to the project root (set by the loader). */
  file?: string;
}

/** Per-tool settings a connection may override, keyed by the tool's name on the remote system. */
export interface ConnectionToolSettings {
  approval?: "required" | "none";
  timeoutMs?: number;
  /** Marks a tool as read-only (no side effects). */
  sideEffects?: boolean;
  /** The data class of what this tool returns, when it differs from its connection's. */
  classification?: Classification;
}

interface ConnectionBase {
  /** The namespace of its tools: `helpdesk` → `helpdesk.get_ticket`. */
  name: string;
  /** Per-call timeout in ms (default 30 000). */
  timeoutMs: number;
  /** Only these remote tools / operations (by remote name); default all. */
  include?: string[];
  /** Never these. */
  exclude?: string[];
  tools: Record<string, ConnectionToolSettings>;
  classification?: Classification;
  /** Source file relative to the project root (outpost.yaml). */
  file: string;
}

/**
 * An MCP server. Strings may hold `${VAR}` references: they are kept unexpanded here and expanded
 * from the environment only when connecting, so secrets never sit in the Project.
 */
export interface McpConnection extends ConnectionBase {
  kind: "mcp";
  transport:
    | { type: "stdio"; command: string; args: string[]; env: Record<string, string> /** absolute */; cwd: string }
    | { type: "http"; url: string; headers: Record<string, string> };
  /** How long connecting (spawn + initialize + tools/list) may take, in ms (default 10 000). */
  connectTimeoutMs: number;
}

/** An OpenAPI 3.x document whose operations become tools. `${VAR}` as for MCP. */
export interface OpenApiConnection extends ConnectionBase {
  kind: "openapi";
  /** Absolute file path or http(s) URL of the document. */
  spec: string;
  /** Overrides the document's `servers[0].url`. */
  baseUrl?: string;
  headers: Record<string, string>;
  auth?:
    | { type: "bearer"; tokenEnv: string }
    /** `secret://name`: read from the vault at call time. */
    | { type: "bearer"; token: string }
    | { type: "header"; header: string; valueEnv: string }
    | { type: "header"; header: string; value: string }
    | { type: "basic"; usernameEnv: string; passwordEnv: string };
}

export type Connection = McpConnection | OpenApiConnection;

/** A department: agents that work together, and the ones it lets other teams (and outside clients) reach. */
export interface TeamDefinition {
  name: string;
  description: string;
  lead: string;
  members: string[];
  /** Members other teams' agents may delegate or hand off to, and that the open endpoints (MCP, A2A) offer. */
  exposes: string[];
  file: string;
}

/** A document of outpost.yaml `knowledge:`, kept in its scope at every start (memory/ `ingest`). */
export interface KnowledgeFile {
  /** Absolute path of a .md or .txt file. */
  path: string;
  /** As the project names it (relative to the root): the document's name in its scope is its file name. */
  file: string;
  scope: string;
  format: "markdown" | "text";
  tags: string[];
  classification?: Classification;
}

/**
 * A kind of business entity from context/*.yaml (customer, order, invoice…): the connector tool that resolves one by
 * its id, and how long a resolved one is shared before it is fetched again (src/context: `context.lookup`).
 */
/** `memory.embedder` in outpost.yaml: how memory turns text into vectors (memory/embedding.ts). */
export interface EmbedderSettings {
  provider: "hashed" | "openai" | "openai-compatible";
  model?: string;
  /** openai-compatible: the server, e.g. http://localhost:11434/v1. openai: a proxy in front of api.openai.com. */
  baseUrl?: string;
  /** The environment variable holding the API key (openai: OPENAI_API_KEY unless set). */
  apiKeyEnv?: string;
  /** hashed: the vector size. openai: asks text-embedding-3 models for shortened vectors. openai-compatible: the
   * length of the model's vectors, required (it cannot be known before the first call). */
  dimensions?: number;
}

export interface ContextEntityType {
  /** `customer`: also the subject's prefix (`customer:C-1042`), which erasure finds. */
  type: string;
  description: string;
  /** The tool that resolves one: `helpdesk.get_customer`. */
  tool: string;
  /** The tool's argument that takes the id: `customer_id`. */
  key: string;
  /** How long a resolved entity is served from the cache, in ms (0: always fetched). */
  ttlMs: number;
  /** The data class of an entity when above its tool's (or its connection's): it raises it, never lowers it. */
  classification?: Classification;
  /** Source file relative to the project root. */
  file: string;
}

/** A spend cap from outpost.yaml `budgets:` (security/budgets enforces it). Days and months are UTC. */
export interface BudgetCap {
  /** `workspace`, `team:<name>` or `agent:<name>`. */
  scope: string;
  period: "day" | "month" | "total";
  usd?: number;
  tokens?: number;
  /** What a call that would exceed it does: the run fails (default), or waits for the next period. */
  onExceed: "fail" | "wait";
}

/** A `.cedar` file of the project. */
export interface PolicyFile {
  /** Relative to the project root, e.g. "policies/refunds.cedar". */
  file: string;
  text: string;
}

export interface ProjectDefaults {
  /** Default model alias for agents that name none. */
  model?: string;
  limits: AgentLimits;
}

export interface Project {
  /** Absolute path of the project folder. */
  root: string;
  /** Workspace (tenant) name from outpost.yaml. */
  workspace: string;
  models: Map<string, ModelAlias>;
  agents: Map<string, AgentDefinition>;
  tools: Map<string, ToolDefinition>;
  /** MCP servers and OpenAPI documents, by name (= tool namespace). */
  connections: Map<string, Connection>;
  /** `egress.allow` of outpost.yaml: the only hosts HTTP tools may reach. Absent: the hosts the connections name. */
  egress?: { allow: string[] };
  teams: Map<string, TeamDefinition>;
  defaults: ProjectDefaults;
  /** Absolute path of the folder holding scripted-model scripts (default <root>/scripts). */
  scriptsDir: string;
  /** Cedar policies from policies/*.cedar, syntax-checked (security/policy evaluates them). The loader always sets it. */
  policies?: PolicyFile[];
  /** outpost.yaml `policies:`; `baseline: false` turns the shipped baseline off. Missing = baseline on. */
  policyOptions?: { baseline: boolean };
  /** outpost.yaml `memory.embedder:` (absent: the built-in hashed embedder). */
  embedder?: EmbedderSettings;
  /** outpost.yaml `knowledge:`, folders expanded to their files (none when absent). */
  knowledge?: KnowledgeFile[];
  /** context/*.yaml: the business entities agents look up (`context.lookup`), by type (none when absent). */
  context?: Map<string, ContextEntityType>;
  /** Spend caps per workspace, team and agent (outpost.yaml `budgets:`; none when absent). */
  budgets?: BudgetCap[];
  /** Runs one workspace may execute at once, across every worker (outpost.yaml `scheduling.max_running_per_workspace`). */
  maxRunningPerWorkspace?: number;
  /** How long an approval request stays open, in ms (outpost.yaml `approvals.expire_after`; default 24 h). */
  approvalTtlMs?: number;
  /** outpost.yaml `auth:` (absent: API keys only, the default rate limit). */
  auth?: AuthSettings;
  /** workflows/*.yaml and workflows/*.ts, by name (none when absent). */
  workflows?: Map<string, WorkflowDefinition>;
}

/** Who may call the API besides API keys, and how often (security/identity, server/auth). */
export interface AuthSettings {
  oidc?: {
    issuer: string;
    audience: string;
    jwksUrl?: string;
    /** Absolute path. */
    publicKeyFile?: string;
    rolesClaim: string;
    groupsClaim: string;
    /** Without it, tokens belong to the project's workspace. */
    workspaceClaim?: string;
  };
  /** Requests per minute per API key or token subject (per address before authentication). */
  rateLimit?: { perMinute: number };
}
