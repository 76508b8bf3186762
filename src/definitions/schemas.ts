/**
 * zod schemas for the YAML files of a project, in the shape people write them
 * (snake_case). The loader turns their output into the types in types.ts.
 *
 * Objects are strict so a misspelt field is reported, not ignored. To add a
 * top-level section (teams, memory, policies, connections…), add a key to
 * `projectFileShape`; each section is its own schema.
 */
import { Cron } from "croner";
import { z } from "zod";
import { DURATION_HINT, parseDuration } from "./duration.js";

export const PROVIDERS = ["openai", "anthropic", "amazon-bedrock", "openai-compatible", "scripted"] as const;
export type Provider = (typeof PROVIDERS)[number];

/** Agent and workspace names. */
export const NAME_PATTERN = /^[a-z][a-z0-9_-]*$/;
/** Tool names, e.g. `orders.lookup`. */
export const TOOL_NAME_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/;
const ALIAS_PATTERN = /^[a-z][a-z0-9._-]*$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

const name = (what: string, example: string) =>
  z.string().regex(NAME_PATTERN, `${what} must be lowercase letters, digits, "-" or "_", starting with a letter (e.g. "${example}")`);

export const toolName = z
  .string()
  .regex(TOOL_NAME_PATTERN, 'tool names are lowercase words of letters, digits and "_", joined by dots (e.g. "orders.lookup")');

/** A credential written in outpost.yaml is a reference to the vault, never the credential itself. */
const secretRef = z
  .string()
  .regex(/^secret:\/\/[A-Za-z0-9_.-]+$/, "must be a vault reference secret://NAME (store it with: outpost secrets set NAME)");
const envName = z
  .string()
  .regex(ENV_NAME_PATTERN, "must be the NAME of an environment variable (e.g. OPENAI_API_KEY), never a secret itself");

/** `90s`, `10m`, `1h` or a number of milliseconds → milliseconds. */
export const duration = z.unknown().transform((value, ctx) => {
  if (typeof value !== "string" && typeof value !== "number") {
    ctx.addIssue({ code: "custom", message: `expected a duration — ${DURATION_HINT}` });
    return z.NEVER;
  }
  try {
    return parseDuration(value);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});

export const limitsSchema = z.strictObject({
  max_steps: z.int().positive().optional(),
  max_tokens: z.int().positive().optional(),
  max_usd: z.number().nonnegative().optional(),
  max_wall_time: duration.optional(),
  max_model_errors: z.int().nonnegative().optional(),
  max_delegations: z.int().nonnegative().optional(),
  max_depth: z.int().nonnegative().optional(),
  max_handoffs: z.int().nonnegative().optional(),
  max_tool_output: z.int().min(1000).optional(),
  max_running: z.int().positive().optional(),
});

export const candidateSchema = z
  .strictObject({
    provider: z.enum(PROVIDERS),
    model: z.string().min(1).optional(),
    requires_env: z.array(envName).optional(),
    api_key_env: envName.optional(),
    base_url: z.string().min(1).optional(),
    headers: z.record(z.string(), z.string()).optional(),
    region: z.string().min(1).optional(),
    location: z.enum(["local", "external"]).optional(),
    price: z
      .strictObject({
        input_per_mtok: z.number().nonnegative().optional(),
        output_per_mtok: z.number().nonnegative().optional(),
      })
      .optional(),
    timeout: duration.optional(),
    max_retries: z.int().nonnegative().optional(),
    /** Tokens the model takes in one call, prompt and answer (default: known for well-known models, else 32 768). */
    context_window: z.int().min(1_024).optional(),
  })
  .superRefine((candidate, ctx) => {
    if (candidate.provider !== "scripted" && !candidate.model) {
      ctx.addIssue({
        code: "custom",
        path: ["model"],
        message: `missing required field "model" — provider ${candidate.provider} needs a model id (e.g. model: ${exampleModel[candidate.provider]})`,
      });
    }
    if (candidate.provider === "openai-compatible" && !candidate.base_url) {
      ctx.addIssue({
        code: "custom",
        path: ["base_url"],
        message:
          'missing required field "base_url" — provider openai-compatible needs the server\'s URL (e.g. base_url: http://localhost:11434/v1)',
      });
    }
  });

const exampleModel: Record<Provider, string> = {
  openai: "gpt-4.1-mini",
  anthropic: "claude-sonnet-4-5",
  "amazon-bedrock": "anthropic.claude-3-5-haiku-20241022-v1:0",
  "openai-compatible": "llama3.1",
  scripted: "scripted",
};

const classification = z.enum(["public", "internal", "confidential", "restricted"]);
const connectionToolSettings = z.strictObject({
  approval: z.enum(["required", "none"]).optional(),
  timeout: duration.optional(),
  side_effects: z.boolean().optional(),
  /** Overrides the connection's classification for this tool (e.g. the one returning customers' personal data). */
  classification: classification.optional(),
});
const connectionBase = {
  timeout: duration.optional(),
  include: z.array(z.string().min(1)).optional(),
  exclude: z.array(z.string().min(1)).optional(),
  tools: z.record(z.string(), connectionToolSettings).optional(),
  classification: classification.optional(),
};
export const connectionSchema = z.union([
  z.strictObject({
    ...connectionBase,
    mcp: z.union([
      z.strictObject({
        command: z.string().min(1),
        args: z.array(z.string()).optional(),
        env: z.record(z.string(), z.string()).optional(),
        cwd: z.string().min(1).optional(),
      }),
      z.strictObject({ url: z.string().min(1), headers: z.record(z.string(), z.string()).optional() }),
    ]),
    connect_timeout: duration.optional(),
  }),
  z.strictObject({
    ...connectionBase,
    openapi: z.strictObject({
      spec: z.string().min(1),
      base_url: z.string().min(1).optional(),
      headers: z.record(z.string(), z.string()).optional(),
    }),
    auth: z
      .union([
        z.strictObject({ bearer_env: envName }),
        z.strictObject({ type: z.literal("bearer"), token: secretRef }),
        z.strictObject({ header: z.string().min(1), value_env: envName }),
        z.strictObject({ header: z.string().min(1), value: secretRef }),
        z.strictObject({ basic: z.strictObject({ username_env: envName, password_env: envName }) }),
      ])
      .optional(),
  }),
]);
export type ConnectionInput = z.output<typeof connectionSchema>;

/** A spend cap: `{scope: workspace | team:<name> | agent:<name>, period, usd?, tokens?, on_exceed?}`. */
export const budgetSchema = z
  .strictObject({
    scope: z
      .string()
      .regex(
        /^(workspace|team:[a-z][a-z0-9_-]*|agent:[a-z][a-z0-9_-]*)$/,
        'a budget scope is "workspace", "team:<name>" or "agent:<name>" (e.g. "agent:refunds")',
      ),
    period: z.enum(["day", "month", "total"]),
    usd: z.number().nonnegative().optional(),
    tokens: z.int().nonnegative().optional(),
    on_exceed: z.enum(["fail", "wait"]).optional(),
  })
  .refine((b) => b.usd !== undefined || b.tokens !== undefined, {
    message: "a budget needs a limit — add usd: <dollars> or tokens: <count> (or both)",
  });
export type BudgetInput = z.output<typeof budgetSchema>;

export const projectFileShape = {
  version: z.literal(1),
  workspace: name("workspace names", "acme"),
  models: z.record(
    z.string().regex(ALIAS_PATTERN, 'model alias names are lowercase letters, digits, ".", "-" or "_" (e.g. "assistant")'),
    z.union([candidateSchema, z.array(candidateSchema).min(1)]),
  ),
  defaults: z
    .strictObject({
      model: z.string().min(1).optional(),
      limits: limitsSchema.optional(),
    })
    .optional(),
  scripts_dir: z.string().min(1).optional(),
  /** MCP servers and OpenAPI documents; each name is the namespace of its tools. */
  connections: z
    .record(
      z.string().regex(/^[a-z][a-z0-9_]*$/, 'connection names are lowercase letters, digits and "_" (e.g. "helpdesk")'),
      connectionSchema,
    )
    .optional(),
  /** Cedar policies live in policies/*.cedar; `baseline: false` turns the shipped baseline off. */
  policies: z.strictObject({ baseline: z.boolean().optional() }).optional(),
  /** The hosts HTTP tools may reach (host, host:port, *.domain); without it, the hosts the connections name. */
  egress: z
    .strictObject({
      allow: z.array(
        z
          .string()
          .regex(
            /^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/,
            'an egress entry is a host, host:port or *.domain (e.g. "api.example.com", "127.0.0.1:8080", "*.acme.internal")',
          ),
      ),
    })
    .optional(),
  /** Documents agents recall like memory: files or folders of Markdown and text, each kept in one scope. */
  knowledge: z
    .array(
      z.strictObject({
        path: z.string().min(1),
        scope: z
          .string()
          .regex(
            /^(workspace|team\/[a-z][a-z0-9_-]*|agent\/[a-z][a-z0-9_-]*)$/,
            'knowledge lives in "workspace", "team/<name>" or "agent/<name>" (e.g. "team/finance")',
          ),
        tags: z.array(z.string().min(1).max(64)).max(20).optional(),
        classification: classification.optional(),
      }),
    )
    .optional(),
  /** How memory turns text into vectors for recall: the built-in hashed embedder (default, offline) or an embedding
   * model through the AI SDK. Items written before a change are embedded again in the background. */
  memory: z
    .strictObject({
      embedder: z
        .strictObject({
          provider: z.enum(["hashed", "openai", "openai-compatible"]),
          model: z.string().min(1).optional(),
          base_url: z.string().min(1).optional(),
          api_key_env: z
            .string()
            .regex(/^[A-Z_][A-Z0-9_]*$/, "an environment variable name, e.g. EMBEDDING_API_KEY")
            .optional(),
          dimensions: z.int().min(1).max(8_192).optional(),
        })
        .superRefine((e, ctx) => {
          if (e.provider === "openai-compatible") {
            const example = { model: "nomic-embed-text", base_url: "http://localhost:11434/v1", dimensions: "768" } as const;
            for (const field of ["model", "base_url", "dimensions"] as const) {
              if (e[field] !== undefined) continue;
              ctx.addIssue({
                code: "custom",
                path: [field],
                message: `missing required field "${field}" — an openai-compatible embedder needs it (e.g. ${field}: ${example[field]})`,
              });
            }
          }
          if (e.provider === "hashed" && (e.model || e.base_url || e.api_key_env)) {
            ctx.addIssue({
              code: "custom",
              path: ["provider"],
              message: "the hashed embedder is built in: it takes only dimensions (drop model, base_url and api_key_env)",
            });
          }
        })
        .optional(),
    })
    .optional(),
  /** Spend caps (security/budgets); the per-run caps are the agents' limits max_usd / max_tokens. */
  budgets: z.array(budgetSchema).optional(),
  /** Who may call the API besides API keys (OIDC tokens), and how often (per key or token subject). */
  /** Shared workers (store/fair-claim.ts): runs one workspace may execute at once; queued runs beyond it wait. */
  scheduling: z.strictObject({ max_running_per_workspace: z.int().positive() }).optional(),
  /** How long an approval request stays open before it expires (a denial); default 24h. */
  approvals: z.strictObject({ expire_after: duration }).optional(),
  auth: z
    .strictObject({
      oidc: z
        .strictObject({
          issuer: z.string().min(1),
          audience: z.string().min(1),
          jwks_url: z.url({ protocol: /^https?$/, error: "must be an http(s) URL of the issuer's JWKS document" }).optional(),
          public_key_file: z.string().min(1).optional(),
          roles_claim: z.string().min(1).default("roles"),
          groups_claim: z.string().min(1).default("groups"),
          workspace_claim: z.string().min(1).optional(),
        })
        .optional(),
      rate_limit: z.strictObject({ per_minute: z.int().min(1).max(1_000_000) }).optional(),
    })
    .optional(),
};

export const projectFileSchema = z.strictObject(projectFileShape);
export type ProjectFile = z.output<typeof projectFileSchema>;
export type CandidateInput = z.output<typeof candidateSchema>;
export type LimitsInput = z.output<typeof limitsSchema>;

/** A tool name, or every tool of a connection: `helpdesk.*`. */
const toolRefName = z
  .string()
  .regex(
    /^([a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*|[a-z][a-z0-9_]*\.\*)$/,
    'tool names are lowercase words of letters, digits and "_", joined by dots (e.g. "orders.lookup"), or "<connection>.*"',
  );
export const agentToolRefSchema = z.union([
  toolRefName,
  z.strictObject({ name: toolRefName, approval: z.enum(["required", "none"]).optional() }),
]);

/** Event names are tool-name shaped, so an agent's `emit.<event>` tool is named after the event itself. */
export const eventName = z
  .string()
  .regex(
    /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/,
    'event names are lower-case words of letters, digits and "_", joined by dots, e.g. inventory.low_stock',
  );
/** The tool an agent emits an event through (agents' `emits:`). */
export const emitToolName = (event: string) => `emit.${event}`;

export const agentFileSchema = z.strictObject({
  name: name("agent names", "support"),
  description: z.string().optional(),
  instructions: z.string().min(1),
  model: z.string().min(1).optional(),
  tools: z.array(agentToolRefSchema).optional(),
  /** Agents it may ask for help: each becomes a tool `delegate.<agent>` that runs a child run. */
  delegates: z.array(name("agent names", "refunds")).optional(),
  /** Agents it may pass the conversation to: each becomes a tool `handoff.<agent>`. */
  handoffs: z.array(name("agent names", "support")).optional(),
  /** Several delegations in one step: wait for all of them, or continue at the first failure. */
  fan_out: z.enum(["all", "fail_fast"]).optional(),
  limits: limitsSchema.optional(),
  /** The most sensitive data class it may touch (policy: principal.clearance_level); default internal. */
  clearance: classification.optional(),
  /** Recall before each model call: on (default) or off, how many items, and how many tokens they may take. */
  memory: z
    .strictObject({
      recall: z.enum(["auto", "off"]).optional(),
      recall_limit: z.int().min(1).max(50).optional(),
      recall_tokens: z.int().min(50).max(32_000).optional(),
    })
    .optional(),
  /** The prompt's bounds within the model's window: history is compacted into a summary when it outgrows its share. */
  context: z
    .strictObject({
      compaction: z.enum(["auto", "off"]).optional(),
      /** The latest messages kept word for word when older ones are summarised (default 8). */
      keep_recent: z.int().min(2).max(200).optional(),
      /** The most tokens history may take (default: what the window leaves after instructions, tools, memory, answer). */
      history_tokens: z.int().min(256).optional(),
      /** The most tokens the running summary may take (default a quarter of the history's share, at most 2 000). */
      summary_tokens: z.int().min(64).max(16_000).optional(),
      /** A tool result over this many tokens is stored as an artifact; the model sees a preview (default a quarter of the window). */
      tool_result_tokens: z.int().min(128).optional(),
    })
    .optional(),
  /** Named events (a workflow's emit step, an agent's emit tool) that each start a run of this agent, with the event as its input. */
  on_events: z.array(eventName).optional(),
  /** Events this agent may emit: each becomes a tool `emit.<event>` that starts the runs subscribed to it. */
  emits: z.array(eventName).optional(),
  /** Runs started on a timetable: each occurrence of the cron expression (in its time zone) starts one run. */
  schedules: z
    .array(
      z
        .strictObject({
          name: name("schedule names", "nightly-stock-check"),
          cron: z.string().min(1),
          timezone: z.string().min(1).optional(),
          input: z.string().min(1),
          /** After downtime: `skip` (default) the occurrences missed, or `catch_up` (run each, up to 100). */
          missed: z.enum(["skip", "catch_up"]).optional(),
        })
        .superRefine((sched, ctx) => {
          const problem = cronProblem(sched.cron, sched.timezone);
          if (problem) ctx.addIssue({ code: "custom", path: [problem.field], message: problem.message });
        }),
    )
    .optional(),
  /** Runs started by another system: POST /v1/hooks/<name> with a JSON payload, signed or with an API key. */
  webhooks: z
    .array(
      z
        .strictObject({
          name: name("webhook names", "helpdesk-ticket"),
          /** The vault secret that signs deliveries (secret://NAME); without it, callers need an API key that may start runs. */
          secret: z
            .string()
            .regex(/^secret:\/\/[A-Za-z0-9_.-]+$/, 'a vault reference, e.g. "secret://helpdesk_webhook" (set it with outpost secrets set)')
            .optional(),
          /** JSON Schema the payload must match. */
          schema: z.record(z.string(), z.unknown()).optional(),
          /** The run's input; {{payload}} stands for the payload as JSON (default: the payload alone). */
          input: z.string().min(1).optional(),
          /** The header carrying the sender's delivery id, which makes a redelivery start nothing new. */
          delivery_header: z
            .string()
            .regex(/^[A-Za-z0-9-]+$/, "an HTTP header name, e.g. X-GitHub-Delivery")
            .optional(),
        })
        .superRefine((hook, ctx) => {
          if (!hook.schema) return;
          try {
            z.fromJSONSchema(hook.schema as Parameters<typeof z.fromJSONSchema>[0]);
          } catch (err) {
            ctx.addIssue({
              code: "custom",
              path: ["schema"],
              message: `not a JSON Schema Outpost can check payloads with: ${(err as Error).message}`,
            });
          }
        }),
    )
    .optional(),
});

/** What is wrong with a cron expression or its time zone, if anything (croner reads both). */
export function cronProblem(cron: string, timezone: string | undefined): { field: "cron" | "timezone"; message: string } | null {
  if (timezone !== undefined) {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: timezone });
    } catch {
      return { field: "timezone", message: `"${timezone}" is not a time zone — use an IANA name, e.g. Europe/Berlin or UTC` };
    }
  }
  try {
    const next = new Cron(cron, { paused: true, ...(timezone ? { timezone } : {}) }).nextRun();
    if (!next) return { field: "cron", message: `"${cron}" never occurs (e.g. 30 February) — check the day and month` };
  } catch (err) {
    const why = ((err as Error).message ?? "").replace(/^CronPattern: /, "");
    return {
      field: "cron",
      message: `"${cron}" is not a cron expression: ${why} — five fields: minute hour day-of-month month day-of-week, e.g. "0 2 * * *" (02:00 every day)`,
    };
  }
  return null;
}

export const teamFileSchema = z.strictObject({
  name: name("team names", "finance"),
  description: z.string().min(1),
  lead: name("agent names", "refunds"),
  members: z.array(name("agent names", "refunds")).min(1),
  exposes: z.array(name("agent names", "refunds")).optional(),
});
export type AgentFile = z.output<typeof agentFileSchema>;

/** Tools Outpost provides to every agent that lists them (src/tools/builtin.ts, src/memory/tools.ts). */
export const BUILTIN_TOOL_NAMES: readonly string[] = [
  "wait.until",
  "wait.for_event",
  "memory.remember",
  "memory.recall",
  "memory.forget",
  "context.lookup",
];

/** context/<type>.yaml: one kind of business entity and the tool that resolves one. */
export const contextFileSchema = z.strictObject({
  /** Default: the file's name. */
  type: name("entity types", "customer").optional(),
  description: z.string().min(1),
  /** The tool that resolves one entity by its id, e.g. `helpdesk.get_customer`. */
  tool: toolName,
  /** That tool's argument for the id, e.g. `customer_id`. */
  key: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "key is the name of the tool's argument that takes the id (e.g. customer_id)"),
  /** How long a looked-up entity is shared before it is fetched again (default 5m; 0 to fetch every time). */
  ttl: duration.optional(),
  classification: classification.optional(),
});
