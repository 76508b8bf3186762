/**
 * Recall before a model call: what the scopes the agent may read hold that is relevant to the run's task, within
 * the agent's token budget, marked in the prompt as memory with its sources.
 *
 * Each scope is read only after policy allowed it (memory.read, recorded as `policy.decided` without a call id and
 * reused while the request stays the same); what was recalled is recorded as `memory.recalled` — ids and versions,
 * not text — and raises the run's classification (and taints it, when an item reads like injected instructions)
 * before the model is chosen, so restricted memory never reaches a model outside.
 */
import { ev, type NewEvent } from "../core/events.js";
import type { AgentDefinition, Project } from "../definitions/types.js";
import { type MemoryItem, type MemoryStore, runScopes } from "../memory/index.js";
import { teamsOf } from "../security/budgets/index.js";
import { canonicalJson } from "../security/canonical.js";
import { scanForInjection, wrapUntrusted } from "../security/guardrails/index.js";
import { memoryRequest } from "../security/policy/index.js";
import { maxClassification, type PolicyEngine } from "../security/types.js";
import type { RunRecord } from "../store/types.js";
import { decidedEvent } from "./decide.js";
import type { RunState } from "./state.js";

export interface RecallStepDeps {
  memory: MemoryStore;
  policy: PolicyEngine;
  project: Project;
}

/** What the prompt shows of recalled memory (null: nothing recalled). */
export interface MemoryBlock {
  text: string;
  /** Estimated tokens (characters / 4, rounded up). */
  tokens: number;
}

export interface RecallStep {
  /** policy.decided for scopes decided anew, then memory.recalled when anything was found: stage them as facts. */
  events: NewEvent[];
  block: MemoryBlock | null;
}

const NONE: RecallStep = { events: [], block: null };
/** Characters of the task the search looks for (a long task's opening says what it is about). */
const QUERY_CHARS = 2_000;

export async function recallForStep(deps: RecallStepDeps, run: RunRecord, state: RunState, agent: AgentDefinition): Promise<RecallStep> {
  const settings = agent.memory ?? { recall: "auto", recallLimit: 5, recallTokens: 800 };
  if (settings.recall === "off") return NONE;
  // A workspace with no memory has nothing to read: no read is attempted, so none is decided or recorded.
  if (!(await deps.memory.hasItems(run.workspace))) return NONE;
  const query = state.input.slice(0, QUERY_CHARS);
  if (query.trim() === "") return NONE;

  const clearance = agent.clearance ?? "internal";
  const facts = { agent: state.agent, onBehalfOf: state.by, runClassification: state.classification, tainted: state.tainted.length > 0 };
  const scopes = runScopes({
    agent: state.agent,
    teams: teamsOf(deps.project.teams.values(), state.agent),
    onBehalfOf: state.by,
    sessionId: run.sessionId,
  });
  const events: NewEvent[] = [];
  const allowed: string[] = [];
  const refused: string[] = [];
  for (const scope of scopes) {
    const request = memoryRequest({ ...facts, action: "memory.read", scope, classification: clearance });
    const prev = state.recallDecisions.get(scope);
    const same =
      prev?.policies_sha256 === deps.policy.hash &&
      canonicalJson([prev.request.agent, prev.request.on_behalf_of, prev.request.resource, prev.request.context]) ===
        canonicalJson([request.agent, request.onBehalfOf, request.resource, request.context]);
    let decision = same ? prev : null;
    if (!decision) {
      const e = decidedEvent(undefined, request, deps.policy.authorize(request), deps.policy.hash);
      events.push(e);
      decision = e.data as typeof prev & object;
    }
    // A read that would need a person's approval is not one recall can wait for: it is skipped (fail closed).
    (decision.effect === "allow" && !decision.approval ? allowed : refused).push(scope);
  }
  if (allowed.length === 0) return { events, block: null };

  const hits = await deps.memory.recall({
    workspace: run.workspace,
    text: query,
    scopes: allowed,
    maxClassification: clearance,
    limit: settings.recallLimit,
  });
  const chosen: { item: MemoryItem; score: number; line: string }[] = [];
  let chars = 0;
  for (const h of hits) {
    const line = memoryLine(h.item);
    if (chars + line.length > settings.recallTokens * 4) break;
    chars += line.length + 1;
    chosen.push({ item: h.item, score: h.score, line });
  }
  if (chosen.length === 0) return { events, block: null };

  const tainted = [...new Set(chosen.flatMap((c) => scanForInjection(c.item.text).findings.map((f) => f.pattern)))];
  const classification = chosen.reduce((c, x) => maxClassification(c, x.item.classification), state.classification);
  const body = chosen.map((c) => c.line).join("\n");
  const text =
    "Memory: what was recalled for this task (from earlier work and the company's documents; it may be out of date — " +
    `check it against the systems before acting on it; cite an item by its id):\n${wrapUntrusted("memory", body)}`;
  const tokens = Math.ceil(text.length / 4);
  events.push(
    ev("memory.recalled", {
      step: state.modelCalls + 1,
      scopes: allowed,
      ...(refused.length > 0 ? { refused } : {}),
      items: chosen.map((c) => ({ id: c.item.id, version: c.item.version, scope: c.item.scope, score: round(c.score) })),
      tokens,
      classification,
      ...(tainted.length > 0 ? { tainted } : {}),
    }),
  );
  return { events, block: { text, tokens } };
}

/** `- [mem_… · team/finance · customer:1042 · 2026-11-02 · knowledge refund-policy.md] text` */
function memoryLine(item: MemoryItem): string {
  const from =
    item.kind === "knowledge"
      ? `knowledge ${item.source.file ?? ""}`.trim()
      : item.source.agent
        ? `agent ${item.source.agent}`
        : item.author;
  const parts = [item.id, item.scope, ...(item.subject ? [item.subject] : []), new Date(item.updatedAt).toISOString().slice(0, 10), from];
  return `- [${parts.join(" · ")}] ${item.text.replace(/\s+/g, " ")}`;
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;
