/**
 * Loading a project folder: outpost.yaml, agents/*.yaml, tools/*.ts. Every
 * problem in every file is collected (never just the first) and reported with
 * file, line, field and a fix.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { toAuth } from "./auth.js";
import { toBudgets } from "./budgets.js";
import { toConnections } from "./connections.js";
import { byLocation, type Issue, ProjectError } from "./errors.js";
import { readYamlFolder } from "./files.js";
import { toKnowledge } from "./knowledge.js";
import { loadContext } from "./load-context.js";
import { checkCollaboration, loadTeams } from "./load-teams.js";
import { loadTools } from "./load-tools.js";
import { loadWorkflows } from "./load-workflows.js";
import { expandEnv, toCandidate } from "./models.js";
import { readPolicyFiles } from "./policies.js";
import { checkYaml } from "./schema-issues.js";
import {
  type AgentFile,
  agentFileSchema,
  BUILTIN_TOOL_NAMES,
  type CandidateInput,
  emitToolName,
  type LimitsInput,
  type ProjectFile,
  projectFileSchema,
} from "./schemas.js";
import { didYouMean } from "./suggest.js";
import type {
  AgentDefinition,
  AgentLimits,
  AgentToolRef,
  Connection,
  EmbedderSettings,
  ModelAlias,
  Project,
  ToolDefinition,
} from "./types.js";
import { baseUrlProblem, displayUrl } from "./urls.js";
import { formatPath, parseYaml, type YamlSource } from "./yaml-source.js";

export interface LoadOptions {
  /** Environment for `${VAR}` expansion in model settings (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface Validation {
  ok: boolean;
  issues: Issue[];
  project?: Project;
}

export const DEFAULT_LIMITS: AgentLimits = {
  maxSteps: 50,
  maxTokens: 200_000,
  maxUsd: 1,
  maxWallTimeMs: 10 * 60_000,
  maxModelErrors: 3,
  maxDelegations: 10,
  maxDepth: 3,
  maxHandoffs: 5,
  maxToolOutput: 16_000,
};

const PROJECT_FILE = "outpost.yaml";

/** Loads and validates the project in `dir`; throws ProjectError listing every problem. */
export async function loadProject(dir: string, options: LoadOptions = {}): Promise<Project> {
  const result = await validateProject(dir, options);
  if (!result.project) throw new ProjectError(path.resolve(dir), result.issues);
  return result.project;
}

/** Like loadProject, but returns the problems instead of throwing (for `outpost validate`). */
export async function validateProject(dir: string, options: LoadOptions = {}): Promise<Validation> {
  const root = path.resolve(dir);
  const env = options.env ?? process.env;
  const issues: Issue[] = [];
  const done = (project?: Project): Validation => {
    issues.sort(byLocation);
    return issues.length === 0 && project ? { ok: true, issues, project } : { ok: false, issues };
  };

  const folder = await stat(root).catch(() => undefined);
  if (!folder?.isDirectory()) {
    issues.push({
      file: ".",
      path: "",
      message: `folder ${root} does not exist — check the path, or create a project there with "outpost init ${dir}"`,
    });
    return done();
  }

  // outpost.yaml
  const settings = await readProjectFile(root, issues);
  const models = new Map<string, ModelAlias>();
  for (const [name, value] of Object.entries(settings.file?.models ?? {})) {
    const list = Array.isArray(value) ? value : [value];
    models.set(name, { name, candidates: list.map((candidate) => toCandidate(candidate, env)) });
    if (settings.source) checkBaseUrls(name, value, env, settings.source, issues);
  }
  const embedder =
    settings.file?.memory?.embedder && settings.source
      ? toEmbedder(settings.file.memory.embedder, env, settings.source, issues)
      : undefined;
  const defaultLimits = mergeLimits(DEFAULT_LIMITS, settings.file?.defaults?.limits);
  const defaultModel = settings.file?.defaults?.model;
  if (defaultModel !== undefined && settings.aliases && !settings.aliases.includes(defaultModel) && settings.source) {
    issues.push({
      file: PROJECT_FILE,
      line: settings.source.lineOf(["defaults", "model"]),
      path: "defaults.model",
      message: unknownAliasMessage(defaultModel, settings.aliases),
    });
  }

  const connections = settings.file ? toConnections(root, settings.file) : new Map<string, Connection>();

  // tools/*.ts
  const loaded = await loadTools(root);
  issues.push(...loaded.issues);
  const tools = new Map<string, ToolDefinition>(loaded.tools.map((tool) => [tool.name, tool]));

  // agents/*.yaml
  const agents = new Map<string, AgentDefinition>();
  const agentLines = new Map<string, string>();
  const agentSources = new Map<string, YamlSource>();
  const webhookOwners = new Map<string, string>();
  for (const { file, source, value: agent } of await readYamlFolder(root, "agents", agentFileSchema, issues)) {
    const where = `${file}:${source.lineOf(["name"])}`;
    const previous = agentLines.get(agent.name);
    if (previous !== undefined) {
      issues.push({
        file,
        line: source.lineOf(["name"]),
        path: "name",
        message: `agent "${agent.name}" is already defined in ${previous} — agent names must be unique; rename one`,
      });
      continue;
    }
    agentLines.set(agent.name, where);
    const model = checkAgentModel(agent, source, defaultModel, settings.aliases, issues);
    const toolRefs = checkAgentTools(agent, source, tools, connections, loaded.incomplete, issues);
    for (const event of new Set(agent.emits ?? [])) toolRefs.push({ name: emitToolName(event) });
    (agent.webhooks ?? []).forEach((hook, i) => {
      const owner = webhookOwners.get(hook.name);
      if (owner === undefined) {
        webhookOwners.set(hook.name, agent.name);
        return;
      }
      issues.push({
        file,
        line: source.lineOf(["webhooks", i, "name"]),
        path: `webhooks[${i}].name`,
        message: `webhook "${hook.name}" is already agent ${owner}'s — webhook names are the URL (/v1/hooks/<name>): unique across the project`,
      });
    });
    (agent.schedules ?? []).forEach((sched, i) => {
      if (agent.schedules?.findIndex((o) => o.name === sched.name) === i) return;
      issues.push({
        file,
        line: source.lineOf(["schedules", i, "name"]),
        path: `schedules[${i}].name`,
        message: `schedule "${sched.name}" is already defined above — schedule names must be unique within an agent`,
      });
    });
    agents.set(agent.name, {
      name: agent.name,
      description: agent.description ?? "",
      instructions: agent.instructions,
      model,
      tools: toolRefs,
      delegates: agent.delegates ?? [],
      handoffs: agent.handoffs ?? [],
      fanOut: agent.fan_out ?? "all",
      clearance: agent.clearance ?? "internal",
      memory: {
        recall: agent.memory?.recall ?? "auto",
        recallLimit: agent.memory?.recall_limit ?? 5,
        recallTokens: agent.memory?.recall_tokens ?? 800,
      },
      context: {
        compaction: agent.context?.compaction ?? "auto",
        keepRecent: agent.context?.keep_recent ?? 8,
        ...(agent.context?.history_tokens !== undefined ? { historyTokens: agent.context.history_tokens } : {}),
        ...(agent.context?.summary_tokens !== undefined ? { summaryTokens: agent.context.summary_tokens } : {}),
        ...(agent.context?.tool_result_tokens !== undefined ? { toolResultTokens: agent.context.tool_result_tokens } : {}),
      },
      limits: mergeLimits(defaultLimits, agent.limits),
      ...(agent.webhooks && agent.webhooks.length > 0
        ? {
            webhooks: agent.webhooks.map((h) => ({
              name: h.name,
              ...(h.secret ? { secret: h.secret.slice("secret://".length) } : {}),
              ...(h.schema ? { schema: h.schema } : {}),
              ...(h.input ? { input: h.input } : {}),
              deliveryHeader: (h.delivery_header ?? "x-outpost-delivery").toLowerCase(),
            })),
          }
        : {}),
      ...(agent.on_events && agent.on_events.length > 0 ? { onEvents: [...new Set(agent.on_events)] } : {}),
      ...(agent.emits && agent.emits.length > 0 ? { emits: [...new Set(agent.emits)] } : {}),
      ...(agent.schedules && agent.schedules.length > 0
        ? {
            schedules: agent.schedules.map((s) => ({
              name: s.name,
              cron: s.cron,
              timezone: s.timezone ?? "UTC",
              input: s.input,
              missed: s.missed ?? "skip",
            })),
          }
        : {}),
      file,
    });
    agentSources.set(agent.name, source);
  }

  // teams/*.yaml
  const teams = await loadTeams(root, agents, issues);
  checkCollaboration(agents, teams, agentSources, issues);
  const budgets = settings.file && settings.source ? toBudgets(settings.file.budgets ?? [], settings.source, agents, teams, issues) : [];
  const knowledge =
    settings.file?.knowledge && settings.source ? toKnowledge(settings.file.knowledge, settings.source, root, agents, teams, issues) : [];
  const auth = settings.file && settings.source ? toAuth(settings.file.auth, settings.source, root, issues) : undefined;

  // context/*.yaml
  const context = await loadContext(root, tools, connections, issues);
  if (context.size === 0) {
    for (const agent of agents.values()) {
      const i = agent.tools.findIndex((t) => t.name === "context.lookup");
      if (i < 0) continue;
      issues.push({
        file: agent.file,
        line: agentSources.get(agent.name)?.lineOf(["tools", i]),
        path: `tools[${i}]`,
        message: "context.lookup looks up the entity types of context/*.yaml, and there are none — add e.g. context/customer.yaml",
      });
    }
  }

  // workflows/*.yaml, workflows/*.ts
  const workflows = await loadWorkflows(root, { agents, teams, tools, connections }, issues);

  // policies/*.cedar (syntax here; the schema check is security/policy's, run by `outpost validate`)
  const policies = await readPolicyFiles(root, issues);

  if (!settings.file) return done();
  return done({
    root,
    workspace: settings.file.workspace,
    models,
    agents,
    tools,
    connections,
    teams,
    defaults: { ...(defaultModel !== undefined ? { model: defaultModel } : {}), limits: defaultLimits },
    scriptsDir: path.resolve(root, settings.file.scripts_dir ?? "scripts"),
    policies,
    policyOptions: { baseline: settings.file.policies?.baseline ?? true },
    budgets,
    ...(knowledge.length > 0 ? { knowledge } : {}),
    ...(embedder ? { embedder } : {}),
    ...(context.size > 0 ? { context } : {}),
    ...(workflows.size > 0 ? { workflows } : {}),
    ...(settings.file.scheduling ? { maxRunningPerWorkspace: settings.file.scheduling.max_running_per_workspace } : {}),
    ...(settings.file.approvals ? { approvalTtlMs: settings.file.approvals.expire_after } : {}),
    ...(auth ? { auth } : {}),
    ...(settings.file.egress ? { egress: { allow: settings.file.egress.allow } } : {}),
  });
}

interface ProjectSettings {
  /** The validated file, when it is valid. */
  file?: ProjectFile;
  source?: YamlSource;
  /** Alias names, when they can be read (even if outpost.yaml has other problems); else undefined. */
  aliases?: string[];
}

async function readProjectFile(root: string, issues: Issue[]): Promise<ProjectSettings> {
  let text: string;
  try {
    text = await readFile(path.join(root, PROJECT_FILE), "utf8");
  } catch {
    issues.push({
      file: PROJECT_FILE,
      path: "",
      message: `no outpost.yaml in ${root} — is this an Outpost project folder? Start one with "outpost init <folder>"`,
    });
    return {};
  }
  const source = parseYaml(PROJECT_FILE, text);
  if (source.syntaxIssues.length > 0) {
    issues.push(...source.syntaxIssues);
    return { source };
  }
  const checked = checkYaml(source, projectFileSchema);
  if (checked.ok) return { file: checked.value, source, aliases: Object.keys(checked.value.models) };
  issues.push(...checked.issues);
  const raw = source.data as { models?: unknown } | null | undefined;
  const rawModels = raw && typeof raw === "object" ? raw.models : undefined;
  const aliases = rawModels && typeof rawModels === "object" && !Array.isArray(rawModels) ? Object.keys(rawModels) : undefined;
  return { source, aliases };
}

/**
 * Each candidate's base_url, after `${VAR}` expansion: an absolute http(s) URL
 * without credentials. A URL that needs an unset variable is not checked (the
 * candidate cannot be selected here anyway).
 */
function checkBaseUrls(
  alias: string,
  value: CandidateInput | CandidateInput[],
  env: NodeJS.ProcessEnv,
  source: YamlSource,
  issues: Issue[],
): void {
  const list = Array.isArray(value) ? value : [value];
  list.forEach((input, index) => {
    if (input.base_url === undefined) return;
    const { text, required } = expandEnv(input.base_url, env);
    if (!required.every((name) => Boolean(env[name]))) return;
    const problem = baseUrlProblem(text);
    if (problem === undefined) return;
    const fieldPath = Array.isArray(value) ? ["models", alias, index, "base_url"] : ["models", alias, "base_url"];
    const expanded = text === input.base_url ? "" : ` (expanded from ${displayUrl(input.base_url)})`;
    issues.push({ file: PROJECT_FILE, line: source.lineOf(fieldPath), path: formatPath(fieldPath), message: `${problem}${expanded}` });
  });
}

function checkAgentModel(
  agent: AgentFile,
  source: YamlSource,
  defaultModel: string | undefined,
  aliases: string[] | undefined,
  issues: Issue[],
): string {
  if (agent.model === undefined) {
    if (defaultModel === undefined && aliases !== undefined) {
      issues.push({
        file: source.file,
        line: source.lineOf([]),
        path: "model",
        message: `no model given and outpost.yaml has no defaults.model — add model: <alias> (known: ${aliases.join(", ") || "none"})`,
      });
    }
    return defaultModel ?? "";
  }
  if (aliases !== undefined && !aliases.includes(agent.model)) {
    issues.push({
      file: source.file,
      line: source.lineOf(["model"]),
      path: "model",
      message: unknownAliasMessage(agent.model, aliases),
    });
  }
  return agent.model;
}

function unknownAliasMessage(alias: string, known: string[]): string {
  const hint = didYouMean(alias, known);
  if (hint) return `unknown model alias "${alias}"${hint}`;
  return `unknown model alias "${alias}" — define it under models: in outpost.yaml (known: ${known.join(", ") || "none"})`;
}

function checkAgentTools(
  agent: AgentFile,
  source: YamlSource,
  tools: Map<string, ToolDefinition>,
  connections: Map<string, Connection>,
  toolsIncomplete: boolean,
  issues: Issue[],
): AgentToolRef[] {
  const refs: AgentToolRef[] = [];
  const listed = new Set<string>();
  (agent.tools ?? []).forEach((entry, index) => {
    const ref: AgentToolRef = typeof entry === "string" ? { name: entry } : { ...entry };
    const at = { file: source.file, line: source.lineOf(["tools", index]), path: `tools[${index}]` };
    if (listed.has(ref.name)) {
      issues.push({ ...at, message: `tool "${ref.name}" is listed twice — remove one` });
      return;
    }
    listed.add(ref.name);
    // A connection's tools are known only once it is reached (at start): its namespace is enough here.
    const namespace = ref.name.includes(".") ? ref.name.slice(0, ref.name.indexOf(".")) : "";
    if (connections.has(namespace)) {
      refs.push(ref);
      return;
    }
    if (ref.name.endsWith(".*")) {
      issues.push({
        ...at,
        message: `"${ref.name}" names no connection — "<name>.*" means every tool of a connection under connections: in outpost.yaml (known: ${[...connections.keys()].join(", ") || "none"})`,
      });
      return;
    }
    if (!tools.has(ref.name) && !BUILTIN_TOOL_NAMES.includes(ref.name) && !toolsIncomplete) {
      const known = [...tools.keys(), ...BUILTIN_TOOL_NAMES, ...[...connections.keys()].map((c) => `${c}.*`)].sort();
      const hint =
        didYouMean(ref.name, known) ||
        ` — define it in tools/*.ts with defineTool({ name: "${ref.name}", ... }) (known: ${known.join(", ") || "none"})`;
      issues.push({ ...at, message: `unknown tool "${ref.name}"${hint}` });
    }
    refs.push(ref);
  });
  return refs;
}

function mergeLimits(base: AgentLimits, input: LimitsInput | undefined): AgentLimits {
  if (!input) return { ...base };
  return {
    maxSteps: input.max_steps ?? base.maxSteps,
    maxTokens: input.max_tokens ?? base.maxTokens,
    maxUsd: input.max_usd ?? base.maxUsd,
    maxWallTimeMs: input.max_wall_time ?? base.maxWallTimeMs,
    maxModelErrors: input.max_model_errors ?? base.maxModelErrors,
    maxDelegations: input.max_delegations ?? base.maxDelegations,
    maxDepth: input.max_depth ?? base.maxDepth,
    maxHandoffs: input.max_handoffs ?? base.maxHandoffs,
    maxToolOutput: input.max_tool_output ?? base.maxToolOutput,
    ...((input.max_running ?? base.maxRunning) !== undefined ? { maxRunning: input.max_running ?? base.maxRunning } : {}),
  };
}

/** `memory.embedder`, its base_url `${VAR}`-expanded and checked like a model's. */
function toEmbedder(
  e: NonNullable<NonNullable<ProjectFile["memory"]>["embedder"]>,
  env: NodeJS.ProcessEnv,
  source: YamlSource,
  issues: Issue[],
): EmbedderSettings {
  let baseUrl = e.base_url;
  if (e.base_url !== undefined) {
    const { text, required } = expandEnv(e.base_url, env);
    baseUrl = text;
    const problem = required.every((name) => Boolean(env[name])) ? baseUrlProblem(text) : undefined;
    if (problem !== undefined) {
      const fieldPath = ["memory", "embedder", "base_url"];
      const expanded = text === e.base_url ? "" : ` (expanded from ${displayUrl(e.base_url)})`;
      issues.push({ file: PROJECT_FILE, line: source.lineOf(fieldPath), path: formatPath(fieldPath), message: `${problem}${expanded}` });
    }
  }
  return {
    provider: e.provider,
    ...(e.model !== undefined ? { model: e.model } : {}),
    ...(baseUrl !== undefined ? { baseUrl } : {}),
    ...(e.api_key_env !== undefined ? { apiKeyEnv: e.api_key_env } : {}),
    ...(e.dimensions !== undefined ? { dimensions: e.dimensions } : {}),
  };
}
