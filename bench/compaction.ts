/**
 * Prompt tokens per turn over a 1,000-turn session (1,000 runs in one session, one model turn each), with history
 * compacted into a running summary past its share and without compaction. Runs on its own too:
 *   npx tsx bench/compaction.ts [--quick]
 */
import { rmSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import type { EventView } from "../src/core/api.js";
import type { AgentContextSettings } from "../src/definitions/types.js";
import { createScriptedClient, type ModelRequest } from "../src/models/index.js";
import { readsData } from "../src/models/scripted/client.js";
import { MESSAGE_OVERHEAD } from "../src/models/tokens.js";
import { startOutpost } from "../src/runtime/index.js";
import { median, quantile, tempDir } from "./driver.js";
import { benchAgent, benchProject } from "./workload.js";

/** The model's window: a common size for hosted models. */
const WINDOW = 128_000;
/** With compaction, history's share of the window (`context.history_tokens`). */
const HISTORY_TOKENS = 4_000;
const KEEP_RECENT = 8;

export interface SessionTokens {
  turns: number;
  /** Tokens of each turn's prompt, in order (o200k, counted here from the request the model was sent). */
  perTurn: number[];
  compactions: number;
  /** Tokens the compaction calls read and wrote (o200k). */
  compactionInput: number;
  compactionOutput: number;
}

export interface CompactionResult {
  with: SessionTokens;
  without: SessionTokens;
}

export async function compactionTokens(quick: boolean): Promise<CompactionResult> {
  const turns = quick ? 300 : 1_000;
  return {
    with: await session(turns, { compaction: "auto", keepRecent: KEEP_RECENT, historyTokens: HISTORY_TOKENS }),
    without: await session(turns, { compaction: "off", keepRecent: KEEP_RECENT }),
  };
}

async function session(turns: number, context: AgentContextSettings): Promise<SessionTokens> {
  const agent = benchAgent("clerk", []);
  agent.instructions =
    "You are the shipping desk of Acme. Answer the customer's question about their order in two sentences, using what the conversation already established.";
  agent.context = context;
  const result: SessionTokens = { turns, perTurn: [], compactions: 0, compactionInput: 0, compactionOutput: 0 };
  const model = createScriptedClient(
    "scripted",
    (req) => {
      const answer = reply(req);
      if (req.purpose === "compaction") {
        result.compactions++;
        result.compactionInput += promptTokens(req);
        result.compactionOutput += countTokens(answer);
      } else result.perTurn.push(promptTokens(req));
      return answer;
    },
    { contextWindow: WINDOW },
  );
  const dataDir = tempDir("compaction");
  const finished = new Set<string>();
  let failure: string | undefined;
  const waiting = new Map<string, () => void>();
  const onEvent = (e: EventView) => {
    if (e.type === "run.failed" || e.type === "run.cancelled") failure ??= `run ${e.run_id} ended ${e.type}: ${JSON.stringify(e.data)}`;
    if (e.type === "run.completed" || e.type === "run.failed" || e.type === "run.cancelled") {
      finished.add(e.run_id);
      waiting.get(e.run_id)?.();
    }
  };
  const outpost = await startOutpost({ project: benchProject([agent]), dataDir, modelFor: () => model, onEvent });
  try {
    let sessionId: string | undefined;
    for (let i = 1; i <= turns; i++) {
      const input = `Turn ${i}: where is order ${100_000 + i} of customer ${1_000 + (i % 97)}? It was due ${1 + (i % 28)} November.`;
      const run = await outpost.startRun({ agent: "clerk", input, ...(sessionId ? { session_id: sessionId } : {}) });
      sessionId = run.session_id;
      if (!finished.has(run.id)) await new Promise<void>((resolve) => waiting.set(run.id, resolve));
      waiting.delete(run.id);
      if (failure) throw new Error(`compaction bench: ${failure}`);
    }
  } finally {
    await outpost.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  if (result.perTurn.length !== turns) throw new Error(`compaction bench: ${result.perTurn.length} model calls for ${turns} turns`);
  return result;
}

/** The prompt's tokens as the model's tokenizer counts them: the messages and the tool specs offered. */
function promptTokens(req: ModelRequest): number {
  let n = req.tools.length > 0 ? countTokens(JSON.stringify(req.tools)) : 0;
  for (const m of req.messages) {
    n += MESSAGE_OVERHEAD + countTokens(m.content);
    if (m.role === "assistant" && m.toolCalls?.length) n += countTokens(JSON.stringify(m.toolCalls));
    if (m.role === "tool") n += countTokens(m.toolName);
  }
  return n;
}

/** The scripted desk: a two-sentence answer to a turn; a summary that keeps the first words of each folded line. */
function reply(req: ModelRequest): string {
  if (req.purpose === "compaction") {
    const lines = req.messages[req.messages.length - 1].content
      .split("\n")
      .filter((l) => l.startsWith("["))
      .map((l) => readsData(l).slice(0, 80));
    const max = req.maxOutputTokens ?? 500;
    while (lines.length > 2 && Buffer.byteLength(lines.join("\n")) > max) lines.splice(1, 1);
    return lines.join("\n").slice(0, max);
  }
  const input = [...req.messages].reverse().find((m) => m.role === "user")?.content ?? "";
  const order = /order (\d+)/.exec(input)?.[1] ?? "?";
  return `Order ${order} left our warehouse and is with the carrier. It should arrive within two working days, and the customer has been told.`;
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

export function compactionSection(r: CompactionResult): string {
  const at = (s: SessionTokens, turn: number) => fmt(s.perTurn[Math.min(turn, s.turns) - 1]);
  const sum = (s: SessionTokens) => s.perTurn.reduce((a, b) => a + b, 0);
  const marks = [1, 10, 100, 500, r.with.turns].filter((t, i, all) => t <= r.with.turns && all.indexOf(t) === i);
  const lines: [string, (s: SessionTokens) => string][] = [
    ...marks.map((t): [string, (s: SessionTokens) => string] => [`prompt tokens at turn ${fmt(t)}`, (s) => at(s, t)]),
    [
      "prompt tokens per turn: median / p95 / max",
      (s) => `${fmt(median(s.perTurn))} / ${fmt(quantile(s.perTurn, 0.95))} / ${fmt(Math.max(...s.perTurn))}`,
    ],
    ["prompt tokens per turn: mean", (s) => fmt(sum(s) / s.turns)],
    ["compactions (model calls writing the summary)", (s) => fmt(s.compactions)],
    ["tokens of those calls: read / written", (s) => `${fmt(s.compactionInput)} / ${fmt(s.compactionOutput)}`],
    [`all tokens sent over ${fmt(r.with.turns)} turns (turns + compactions)`, (s) => fmt(sum(s) + s.compactionInput)],
  ];
  for (const [name, value] of lines) console.log(`${name.padEnd(58)} ${value(r.with).padStart(26)} ${value(r.without).padStart(26)}`);
  return `## Context windows: prompt tokens over a long session

Workload: one agent on the scripted model, ${fmt(r.with.turns)} runs in one session, one model turn each (a customer's question
about an order, ~30 tokens; a two-sentence answer, ~30 tokens); every run's prompt holds the instructions, the
session's history and the new question. The model's window is ${fmt(WINDOW)} tokens. **With compaction**:
\`context: {compaction: auto, history_tokens: ${fmt(HISTORY_TOKENS)}, keep_recent: ${KEEP_RECENT}}\` — past its share, the older turns are folded
into the running summary by a model call (scripted: it keeps the first words of each folded line), and the latest
turns stay word for word. **Without**: \`compaction: off\`, so the whole session is sent every turn (until it
would overflow the window, when the run fails). Prompt tokens are those \`model.called\` records (o200k count).

| measure | with compaction | without |
|---|---:|---:|
${lines.map(([name, value]) => `| ${name} | ${value(r.with)} | ${value(r.without)} |`).join("\n")}
`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  console.log(compactionSection(await compactionTokens(process.argv.includes("--quick"))));
}
