/**
 * workflows/*.yaml, and workflows/*.ts exporting `defineWorkflow({...})` as default: one schema for both. Checked
 * against the project: step ids unique in the workflow, the agents, team and tools they name exist (a connection's
 * tools are known only once it is reached, so for those the connection must exist).
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import { tsImport } from "tsx/esm/api";
import { normalizeSteps, type Step, type WorkflowDefinition, walkSteps, workflowFileSchema } from "../workflows/definition.js";
import type { Issue } from "./errors.js";
import { listFiles, readYamlFolder } from "./files.js";
import { registerOutpostResolution } from "./resolve-hook.js";
import { BUILTIN_TOOL_NAMES } from "./schemas.js";
import { didYouMean } from "./suggest.js";
import type { AgentDefinition, Connection, TeamDefinition, ToolDefinition } from "./types.js";

export interface WorkflowContext {
  agents: Map<string, AgentDefinition>;
  teams: Map<string, TeamDefinition>;
  tools: Map<string, ToolDefinition>;
  connections: Map<string, Connection>;
}

export async function loadWorkflows(root: string, project: WorkflowContext, issues: Issue[]): Promise<Map<string, WorkflowDefinition>> {
  const out = new Map<string, WorkflowDefinition>();
  const add = (
    file: string,
    value: ReturnType<typeof workflowFileSchema.parse>,
    lineOf: (p: (string | number)[]) => number | undefined,
  ) => {
    const at = (p: (string | number)[]) => ({ file, line: lineOf(p), path: fieldPath(p) });
    if (out.has(value.name)) {
      issues.push({ ...at(["name"]), message: `workflow "${value.name}" is already defined in ${out.get(value.name)?.file} — rename one` });
      return;
    }
    const steps = normalizeSteps(value.steps);
    const before = issues.length;
    checkSteps(steps, project, at, issues);
    if (value.team !== undefined && !project.teams.has(value.team)) {
      issues.push({
        ...at(["team"]),
        message: `unknown team "${value.team}"${didYouMean(value.team, [...project.teams.keys()]) || " — define it in teams/"}`,
      });
    }
    if (issues.length > before) return;
    out.set(value.name, {
      name: value.name,
      description: value.description ?? "",
      team: value.team ?? null,
      clearance: value.clearance ?? "internal",
      inputSchema: value.input ?? null,
      onEvents: [...new Set(value.on_events ?? [])],
      steps,
      output: value.output,
      file,
    });
  };

  for (const { file, source, value } of await readYamlFolder(root, "workflows", workflowFileSchema, issues)) {
    add(path.posix.join("workflows", path.basename(file)), value, (p) => source.lineOf(p));
  }
  const scripts = await listFiles(root, "workflows", /^[^_].*\.(ts|mts|js|mjs)$/, issues);
  if (scripts.length > 0) registerOutpostResolution();
  for (const file of scripts.filter((f) => !f.endsWith(".d.ts"))) {
    let exported: unknown;
    try {
      const mod = (await tsImport(pathToFileURL(path.join(root, file)).href, import.meta.url)) as { default?: unknown };
      exported = mod.default;
    } catch (err) {
      issues.push({ file, path: "", message: `could not load: ${(err as Error)?.message?.split("\n")[0] ?? String(err)}` });
      continue;
    }
    if (exported && typeof exported === "object" && "default" in exported) exported = (exported as { default: unknown }).default;
    const checked = workflowFileSchema.safeParse(exported);
    if (!checked.success) {
      for (const i of checked.error.issues)
        issues.push({ file, path: i.path.join("."), message: `${i.message} (in the default export, defineWorkflow({...}))` });
      continue;
    }
    add(file, checked.data, () => undefined);
  }
  return out;
}

function checkSteps(
  steps: Step[],
  project: WorkflowContext,
  at: (p: (string | number)[]) => Omit<Issue, "message">,
  issues: Issue[],
): void {
  const seen = new Set<string>();
  const toolKnown = (name: string) =>
    project.tools.has(name) ||
    BUILTIN_TOOL_NAMES.includes(name) ||
    (name.includes(".") && project.connections.has(name.slice(0, name.indexOf("."))));
  const checkTool = (name: string, where: (string | number)[]) => {
    if (toolKnown(name)) return;
    const known = [...project.tools.keys(), ...[...project.connections.keys()].map((c) => `${c}.…`)];
    issues.push({
      ...at(where),
      message: `unknown tool "${name}"${didYouMean(name, [...project.tools.keys()]) || ` — tools are ${known.join(", ") || "none"}`}`,
    });
  };
  for (const { step, at: where } of walkSteps(steps)) {
    if (seen.has(step.id))
      issues.push({
        ...at([...where, "id"]),
        message: `step id "${step.id}" is used twice — ids name results (steps.${step.id}.output), make them unique`,
      });
    seen.add(step.id);
    if (step.kind === "tool") checkTool(step.tool, [...where, "tool"]);
    if (step.compensate) checkTool(step.compensate.tool, [...where, "compensate", "tool"]);
    if (step.kind === "agent" && !project.agents.has(step.agent)) {
      issues.push({
        ...at([...where, "agent"]),
        message: `unknown agent "${step.agent}"${didYouMean(step.agent, [...project.agents.keys()]) || ` — define it in agents/${step.agent}.yaml`}`,
      });
    }
  }
}

/** `["steps", 2, "do", 0, "wait"]` → `steps[2].do[0].wait`, as the schema's issues name fields. */
const fieldPath = (p: (string | number)[]) => p.map((x, i) => (typeof x === "number" ? `[${x}]` : i === 0 ? x : `.${x}`)).join("");
