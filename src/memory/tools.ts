/**
 * The agent's memory tools: `memory.remember`, `memory.recall`, `memory.forget`.
 *
 * Which scopes a call may touch is decided by policy before it runs (memory.write / memory.read, see
 * runtime/governance.ts); the run loop then commits the call with the scopes policy allowed in its arguments
 * (`scopes`), so the handler works only there, and a retried call — same idempotency key — writes once.
 */
import { z } from "zod";
import type { Classification, ToolDefinition } from "../definitions/types.js";
import { classificationLevel } from "../security/types.js";
import type { MemoryStore } from "./store.js";
import type { MemoryItem } from "./types.js";

export const MEMORY_REMEMBER = "memory.remember";
export const MEMORY_RECALL = "memory.recall";
export const MEMORY_FORGET = "memory.forget";
export const MEMORY_TOOL_NAMES = [MEMORY_REMEMBER, MEMORY_RECALL, MEMORY_FORGET] as const;

const scopeArg = z
  .string()
  .min(1)
  .max(220)
  .describe('Whose memory: "session", "user" (the person you act for), "agent" (yours), "team", "workspace", or e.g. "team/finance"');

/** The arguments as the run loop commits them: what the model gave, plus the scopes policy allowed. */
const allowed = { scopes: z.array(z.string()).optional().describe("(set by Outpost: the scopes policy allowed)") };

const rememberInput = z.object({
  text: z.string().min(1).max(4_000).describe("The fact, in one or two sentences"),
  subject: z.string().max(200).optional().describe("What it is about, as type:id, e.g. customer:1042"),
  key: z
    .string()
    .max(200)
    .optional()
    .describe("A name for the fact (e.g. preferred_carrier): a later fact with the same subject and key replaces this one"),
  tags: z.array(z.string().max(64)).max(10).optional(),
  scope: scopeArg.optional().describe('Where to keep it (default "agent")'),
  expires_in_days: z.number().positive().max(3650).optional().describe("Forget it after this many days"),
  classification: z.enum(["public", "internal", "confidential", "restricted"]).optional(),
  ...allowed,
});

const recallInput = z.object({
  query: z.string().min(1).max(2_000).describe("What you want to know"),
  subject: z.string().max(200).optional().describe("Only memories about this, e.g. customer:1042"),
  tags: z.array(z.string().max(64)).max(10).optional(),
  scope: scopeArg.optional().describe("Only this scope (default: every scope you may read)"),
  limit: z.int().min(1).max(20).optional(),
  ...allowed,
});

const forgetInput = z.object({ id: z.string().min(1).max(100).describe("The memory's id (mem_…)"), ...allowed });

export type RememberArgs = z.infer<typeof rememberInput>;
export type RecallArgs = z.infer<typeof recallInput>;
export type ForgetArgs = z.infer<typeof forgetInput>;

const DAY = 86_400_000;

export function memoryTools(memory: MemoryStore): ToolDefinition[] {
  return [
    {
      name: MEMORY_REMEMBER,
      description:
        "Remember a fact for later runs (yours, your team's or the session's). Give a subject (customer:1042) and a key to keep one current fact per subject and key: a new one replaces the old, whose history is kept.",
      input: rememberInput,
      sideEffects: true,
      memory: { access: "write" },
      handler: async ({ input, context, idempotencyKey }) => {
        const scope = only(input.scopes, "remember");
        // A fact drawn from sensitive data is as sensitive as the data: never below what the run has touched.
        const classification = higher(input.classification ?? "internal", context.runClassification ?? "public");
        const r = await memory.remember({
          workspace: context.workspace,
          scope,
          subject: input.subject ?? null,
          key: input.key ?? null,
          text: input.text,
          tags: input.tags ?? [],
          classification,
          source: { kind: "run", run_id: context.runId, agent: context.agent, tool: MEMORY_REMEMBER, ...callOf(context) },
          author: `agent:${context.agent}`,
          expiresAt: input.expires_in_days ? Date.now() + input.expires_in_days * DAY : null,
          writeKey: idempotencyKey,
        });
        return {
          remembered: r.item.id,
          scope: r.item.scope,
          version: r.item.version,
          ...(r.superseded ? { replaced: { version: r.superseded.version, text: r.superseded.text } } : {}),
        };
      },
    },
    {
      name: MEMORY_RECALL,
      description:
        "Search what has been remembered (facts and knowledge documents) in the scopes you may read. Returns the best matches with their ids and sources.",
      input: recallInput,
      sideEffects: false,
      memory: { access: "read" },
      resultClassification: (result) => (result as { classification?: Classification }).classification,
      handler: async ({ input, context }) => {
        const scopes = input.scopes ?? [];
        if (scopes.length === 0) throw new Error("no memory scope may be read here");
        const hits = await memory.recall({
          workspace: context.workspace,
          text: input.query,
          scopes,
          ...(input.subject ? { subject: input.subject } : {}),
          ...(input.tags ? { tags: input.tags } : {}),
          ...(context.clearance ? { maxClassification: context.clearance } : {}),
          limit: input.limit ?? 5,
        });
        return {
          results: hits.map((h) => describe(h.item)),
          classification: hits.reduce<Classification>((c, h) => higher(c, h.item.classification), "public"),
        };
      },
    },
    {
      name: MEMORY_FORGET,
      description: "Forget a remembered fact by its id (in a scope you may write). Its history goes with it.",
      input: forgetInput,
      sideEffects: true,
      memory: { access: "write" },
      handler: async ({ input, context }) => {
        const item = await memory.get(context.workspace, input.id);
        if (!item) return { forgotten: input.id, note: "not found (already forgotten, or never remembered)" };
        if (!(input.scopes ?? []).includes(item.scope)) {
          throw new Error(`memory ${input.id} is in ${item.scope}, which you may not change`);
        }
        await memory.forget(context.workspace, input.id, `agent:${context.agent}`, { audit: false });
        return { forgotten: input.id, scope: item.scope };
      },
    },
  ];
}

/** One recalled item as the model sees it: enough to cite and to judge its age. */
export function describe(item: MemoryItem): Record<string, unknown> {
  return {
    id: item.id,
    text: item.text,
    scope: item.scope,
    ...(item.subject ? { subject: item.subject } : {}),
    ...(item.key ? { key: item.key } : {}),
    ...(item.tags.length > 0 ? { tags: item.tags } : {}),
    source: item.kind === "knowledge" ? `knowledge ${item.source.file ?? ""}`.trim() : (item.source.agent ?? item.author),
    updated: new Date(item.updatedAt).toISOString().slice(0, 10),
  };
}

function only(scopes: string[] | undefined, what: string): string {
  const scope = scopes?.[0];
  if (!scope) throw new Error(`no memory scope may be written to ${what} this`);
  return scope;
}

const higher = (a: Classification, b: Classification): Classification => (classificationLevel(b) > classificationLevel(a) ? b : a);

const callOf = (context: { step?: number; callId?: string }) => ({
  ...(context.step !== undefined ? { step: context.step } : {}),
  ...(context.callId !== undefined ? { call_id: context.callId } : {}),
});
