/**
 * `outpost demo`: plays a project's demo scenarios (`<project>/demo.ts`) headless, on a fresh data
 * folder, approving what needs approval as a "demo operator", and prints what happened: runs,
 * agents, tool calls, answers, and the business systems' final state checked against what each
 * scenario should leave behind.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Command } from "commander";
import { type EventView, isTerminal, type RunTreeView, type RunView } from "../../core/api.js";
import { OutpostError } from "../../core/errors.js";
import type { Demo, DemoScenario } from "../../definitions/demo.js";
import { quietLogger } from "../connect.js";
import { Exit } from "../errors.js";
import { formatUsd, out, truncate } from "../output.js";
import { statusText } from "./runs.js";

interface DemoOptions {
  project?: string;
  data?: string;
  scenario?: string;
  json?: boolean;
  keep?: boolean;
  timeout: string;
}

interface ScenarioResult {
  name: string;
  title: string;
  input: string;
  run: RunView;
  /** Agents in the order they joined (handoffs and delegations). */
  agents: string[];
  runs: number;
  toolCalls: { name: string; count: number }[];
  approvals: { tool: string; approval_id: string }[];
  tree: RunTreeView;
  /** Per run: the agents that held it (more than one after a handoff). */
  holders: Record<string, string[]>;
  seconds: number;
  systems: string[];
  problems: string[];
}

const OPERATOR = "demo operator";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("play the project's demo scenarios headless and print what happened (runs, agents, tool calls, the systems' final state)")
    .option("--project <dir>", "project folder with a demo.ts (default: the current folder if it has one, else examples/acme)")
    .option("--data <dir>", "data folder (default: a fresh temporary one, so every demo starts from the same state)")
    .option("--scenario <name>", "play only this scenario")
    .option("--timeout <seconds>", "how long one scenario may take", "120")
    .option("--keep", "keep the temporary data folder (its path is printed)")
    .option("--json", "print the results as JSON")
    .action(async (opts: DemoOptions) => {
      const projectDir = path.resolve(opts.project ?? (existsSync("demo.ts") ? "." : "examples/acme"));
      const demo = await loadDemo(projectDir);
      const scenarios = opts.scenario ? demo.scenarios.filter((s) => s.name === opts.scenario) : demo.scenarios;
      if (scenarios.length === 0) {
        throw new OutpostError(
          "invalid_request",
          `no scenario "${opts.scenario}" in ${path.join(projectDir, "demo.ts")}`,
          `known: ${demo.scenarios.map((s) => s.name).join(", ")}`,
        );
      }
      const timeoutMs = Number(opts.timeout) * 1000;
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
        throw new OutpostError("invalid_request", `--timeout must be a number of seconds, not "${opts.timeout}"`);

      const temporary = opts.data === undefined;
      const dataDir = path.resolve(opts.data ?? mkdtempSync(path.join(tmpdir(), "outpost-demo-")));
      const [{ loadProject }, { startOutpost }] = await Promise.all([
        import("../../definitions/index.js"),
        import("../../runtime/index.js"),
      ]);
      const project = await loadProject(projectDir);
      const logger = await quietLogger(process.env.OUTPOST_LOG_LEVEL ?? "error");
      const outpost = await startOutpost({ project, dataDir, logger, redactor: logger.redactor });
      const results: ScenarioResult[] = [];
      let failed = false;
      try {
        const down = outpost.connections().filter((c) => c.state !== "ready");
        for (const c of down) {
          if (!opts.json) out.line(out.yellow(`⚠ ${c.name} is ${c.state}${c.error ? `: ${c.error}` : ""}`));
        }
        if (!opts.json) {
          out.line(
            `${out.bold(`Outpost demo`)} — ${project.workspace}: ${scenarios.length} scenario${scenarios.length === 1 ? "" : "s"}, data in ${dataDir}`,
          );
          out.line();
        }
        for (const scenario of scenarios) {
          const result = await play(outpost, scenario, timeoutMs);
          results.push(result);
          if (!opts.json) printScenario(result);
        }
        const state = demo.state ? await demo.state(dataDir) : undefined;
        for (const r of results) {
          if (state !== undefined) {
            r.systems = demo.describe?.(state, r.name) ?? [];
            r.problems.push(...(demo.check?.(state, r.name) ?? []));
          }
          if (r.run.status !== "completed") r.problems.unshift(`the run ${r.run.status}${r.run.error ? `: ${r.run.error.message}` : ""}`);
          failed ||= r.problems.length > 0;
        }
        if (opts.json) {
          out.line(JSON.stringify({ data_dir: dataDir, scenarios: results, systems: state ?? null }, null, 2));
        } else {
          printSystems(results);
          printTotals(results);
        }
      } finally {
        await outpost.close();
        if (temporary && !opts.keep) rmSync(dataDir, { recursive: true, force: true });
        else if (!opts.json)
          out.line(
            out.dim(
              `data kept in ${dataDir} — look around with: outpost runs ls --project ${path.relative(process.cwd(), projectDir) || "."} --data ${dataDir}`,
            ),
          );
      }
      if (failed) throw new Exit(1);
    });
}

async function loadDemo(projectDir: string): Promise<Demo> {
  const file = path.join(projectDir, "demo.ts");
  if (!existsSync(file)) {
    throw new OutpostError(
      "not_found",
      `${projectDir} has no demo.ts`,
      "a demo is a demo.ts exporting { scenarios: [{ name, title, agent, input }] } (see examples/acme/demo.ts)",
    );
  }
  // Through tsx's loader, so a TypeScript demo loads whatever the project's package.json says.
  const { tsImport } = await import("tsx/esm/api");
  const mod = (await tsImport(pathToFileURL(file).href, import.meta.url)) as { default?: Demo };
  const demo = mod.default;
  if (!demo || !Array.isArray(demo.scenarios)) {
    throw new OutpostError("invalid_request", `${file} must export default { scenarios: [...] }`, "see examples/acme/demo.ts");
  }
  return demo;
}

type Api = Awaited<ReturnType<typeof import("../../runtime/index.js").startOutpost>>;

async function play(outpost: Api, scenario: DemoScenario, timeoutMs: number): Promise<ScenarioResult> {
  const started = Date.now();
  const root = await outpost.startRun({ agent: scenario.agent, input: scenario.input });
  const approvals: ScenarioResult["approvals"] = [];
  let tree = await outpost.getRunTree(root.id);
  for (;;) {
    tree = await outpost.getRunTree(root.id);
    if (isTerminal(tree.run.status)) break;
    if (Date.now() - started > timeoutMs) {
      await outpost.cancelRun(root.id, `outpost demo: the scenario took longer than ${timeoutMs / 1000} s`);
      tree = await outpost.getRunTree(root.id);
      break;
    }
    // The demo operator approves what this scenario's runs wait for (a person would, in the console or CLI).
    const ids = new Set(flatten(tree).map((r) => r.id));
    for (const a of await outpost.listApprovals({ status: "pending" })) {
      if (!ids.has(a.run_id)) continue;
      await outpost.decideApproval(a.id, { decision: "approve", by: OPERATOR, reason: "approved by outpost demo" });
      approvals.push({ tool: a.tool, approval_id: a.id });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const runs = flatten(tree);
  const calls = new Map<string, number>();
  const holders: Record<string, string[]> = {};
  const agents: string[] = [];
  const join = (a: string) => {
    if (!agents.includes(a)) agents.push(a);
  };
  for (const r of runs) {
    const events: EventView[] = await outpost.getEvents(r.id);
    holders[r.id] = [r.agent];
    join(r.agent);
    for (const e of events) {
      if (e.type === "tool.called") {
        const name = String(e.data.tool);
        calls.set(name, (calls.get(name) ?? 0) + 1);
      } else if (e.type === "run.handed_off") {
        holders[r.id].push(String(e.data.to));
        join(String(e.data.to));
      }
    }
  }
  return {
    name: scenario.name,
    title: scenario.title,
    input: scenario.input,
    run: tree.run,
    agents,
    runs: runs.length,
    toolCalls: [...calls].map(([name, count]) => ({ name, count })),
    approvals,
    tree,
    holders,
    seconds: (Date.now() - started) / 1000,
    systems: [],
    problems: [],
  };
}

const flatten = (t: RunTreeView): RunView[] => [t.run, ...t.children.flatMap(flatten)];

function printScenario(r: ScenarioResult): void {
  const row = (label: string, value: string) => out.line(`  ${out.dim(label.padEnd(11))}${value}`);
  out.line(`${out.bold(`▶ ${r.title}`)}  ${statusText(r.run.status)} in ${r.seconds.toFixed(1)} s`);
  row("customer", truncate(r.input, 110));
  row("agents", r.agents.join(", "));
  const total = r.toolCalls.reduce((n, c) => n + c.count, 0);
  row("tool calls", `${total}: ${r.toolCalls.map((c) => (c.count > 1 ? `${c.name} ×${c.count}` : c.name)).join(", ")}`);
  if (r.approvals.length > 0)
    row("approvals", r.approvals.map((a) => `${a.tool} (${a.approval_id}) approved by the ${OPERATOR}`).join(", "));
  row(
    "runs",
    `${r.runs} · usage ${r.run.usage.input_tokens + r.run.usage.output_tokens} tokens in the top run, ${formatUsd(r.run.usage.cost_usd)}`,
  );
  for (const line of treeText(r.tree, r.holders)) out.line(`    ${line}`);
  if (r.run.output) row("answer", r.run.output);
  if (r.run.error) row("error", `${r.run.error.code}: ${r.run.error.message}`);
  out.line();
}

function treeText(t: RunTreeView, holders: Record<string, string[]>, prefix = "", last = true, top = true): string[] {
  const who = (holders[t.run.id] ?? [t.run.agent]).join(" → ");
  const head = top ? "" : `${prefix}${last ? "└─ " : "├─ "}`;
  const lines = [`${head}${who} ${statusText(t.run.status)} ${out.dim(t.run.id)}`];
  const next = top ? "" : `${prefix}${last ? "   " : "│  "}`;
  t.children.forEach((c, i) => {
    lines.push(...treeText(c, holders, next, i === t.children.length - 1, false));
  });
  return lines;
}

function printSystems(results: ScenarioResult[]): void {
  if (!results.some((r) => r.systems.length > 0 || r.problems.length > 0)) return;
  out.line(out.bold("Business systems after the demo"));
  for (const r of results) {
    const mark = r.problems.length === 0 ? out.green("✓") : out.red("✗");
    out.line(`${mark} ${r.title}`);
    for (const line of r.systems) out.line(`    ${line}`);
    for (const p of r.problems) out.line(`    ${out.red(p)}`);
  }
  out.line();
}

function printTotals(results: ScenarioResult[]): void {
  const ok = results.filter((r) => r.problems.length === 0).length;
  const runs = results.reduce((n, r) => n + r.runs, 0);
  const calls = results.reduce((n, r) => n + r.toolCalls.reduce((m, c) => m + c.count, 0), 0);
  const agents = new Set(results.flatMap((r) => r.agents)).size;
  const seconds = results.reduce((n, r) => n + r.seconds, 0);
  const text = `${results.length} scenario${results.length === 1 ? "" : "s"}, ${ok} as expected · ${runs} runs · ${agents} agents · ${calls} tool calls · ${seconds.toFixed(1)} s`;
  out.line(ok === results.length ? out.green(text) : out.red(text));
}
