/**
 * Business context shared across agents: `context.lookup {type, id}` resolves a customer, an order, an invoice…
 * through the connector tool context/<type>.yaml names, and keeps the answer in `context_entities` for its ttl, so
 * agents in different departments see the same facts about the same entity, with where they came from and how old.
 *
 * Policy decides a lookup as the call of its resolving tool (connector.use, tool.call with the id as that tool's
 * argument): whoever may not call `helpdesk.get_customer` may not look up a customer, cached or not. The entity
 * carries the data class of that tool, which raises the run's. A cached entity is the subject `<type>:<id>`, which
 * `outpost memory erase --subject` removes with the rest of the subject's data.
 */
import { z } from "zod";
import type { Classification, ContextEntityType, ToolDefinition, ToolHandlerArgs } from "../definitions/types.js";
import { classificationLevel } from "../security/types.js";
import type { ContextEntitiesTable } from "../store/schema.js";
import type { DomainStorage } from "../store/types.js";

export const CONTEXT_LOOKUP = "context.lookup";

/** Where a cached entity came from. */
export interface EntitySource {
  tool: string;
  run_id: string;
  agent: string;
}

export interface ContextEntity {
  type: string;
  id: string;
  subject: string;
  data: unknown;
  classification: Classification;
  source: EntitySource;
  fetchedAt: number;
}

/** What a person's view of business context needs: the shared cache and the types the project declares. */
export interface BusinessContext {
  cache: ContextCache;
  types: ReadonlyMap<string, ContextEntityType>;
}

/** The context_entities table of one store: one row per (workspace, type, id), replaced on every fetch. */
export class ContextCache {
  constructor(private readonly storage: DomainStorage) {}

  async get(workspace: string, type: string, id: string): Promise<ContextEntity | undefined> {
    const row = await this.storage.db
      .selectFrom("context_entities")
      .selectAll()
      .where("workspace", "=", workspace)
      .where("type", "=", type)
      .where("entity_id", "=", id)
      .executeTakeFirst();
    return row ? toEntity(row) : undefined;
  }

  async put(workspace: string, e: ContextEntity): Promise<void> {
    const row = {
      subject: e.subject,
      data: JSON.stringify(e.data ?? null),
      classification: e.classification,
      source: JSON.stringify(e.source),
      fetched_at: e.fetchedAt,
    };
    await this.storage.db
      .insertInto("context_entities")
      .values({ workspace, type: e.type, entity_id: e.id, ...row })
      .onConflict((oc) => oc.columns(["workspace", "type", "entity_id"]).doUpdateSet(row))
      .execute();
  }

  /** The workspace's cached entities, newest first (of one type, when given). */
  async list(workspace: string, o: { type?: string; limit?: number } = {}): Promise<ContextEntity[]> {
    let q = this.storage.db.selectFrom("context_entities").selectAll().where("workspace", "=", workspace);
    if (o.type) q = q.where("type", "=", o.type);
    const rows = await q
      .orderBy("fetched_at", "desc")
      .limit(o.limit ?? 100)
      .execute();
    return rows.map(toEntity);
  }
}

/** Where an entity came from and how old it is, as agents and people are shown it. */
export function sourceView(e: ContextEntity, now: number): { tool: string; fetched_at: string; age_seconds: number; fetched_by: string } {
  return {
    tool: e.source.tool,
    fetched_at: new Date(e.fetchedAt).toISOString(),
    age_seconds: Math.max(0, Math.round((now - e.fetchedAt) / 1000)),
    fetched_by: `agent:${e.source.agent} (run ${e.source.run_id})`,
  };
}

function toEntity(r: ContextEntitiesTable): ContextEntity {
  return {
    type: r.type,
    id: r.entity_id,
    subject: r.subject,
    data: JSON.parse(r.data),
    classification: r.classification as Classification,
    source: JSON.parse(r.source) as EntitySource,
    fetchedAt: Number(r.fetched_at),
  };
}

const lookupInput = z.object({
  type: z.string().min(1).max(64).describe("The kind of entity, e.g. customer or order"),
  id: z.string().min(1).max(200).describe("Its id as the business system writes it, e.g. C-1042 or 1001"),
  refresh: z.boolean().optional().describe("Fetch it from its system even when a fresh copy is shared (default false)"),
});

export type LookupArgs = z.infer<typeof lookupInput>;

/** What a lookup answers the agent. */
export interface LookupResult {
  type: string;
  id: string;
  subject: string;
  data: unknown;
  classification: Classification;
  source: { tool: string; fetched_at: string; age_seconds: number; cached: boolean; fetched_by: string };
  /** Served from the cache because the system could not be reached: why. */
  stale?: string;
}

export interface ContextLookupDeps {
  types: ReadonlyMap<string, ContextEntityType>;
  /** The tool registry's lookup (connection tools come and go with their systems). */
  tool(name: string): ToolDefinition | undefined;
  /** The data class of a tool's results when it sets none: its connection's. */
  connectionClassification(tool: string): Classification | undefined;
  cache: ContextCache;
  clock?: () => number;
}

export function contextLookupTool(deps: ContextLookupDeps): ToolDefinition<LookupArgs, LookupResult> {
  const clock = deps.clock ?? Date.now;
  const known = () => [...deps.types.keys()].join(", ") || "none";
  /** Lookups of one entity under way in this process: concurrent askers share one fetch. */
  const inFlight = new Map<string, Promise<LookupResult>>();

  type Resolved = { def: ContextEntityType; resolver: ToolDefinition; args: Record<string, unknown>; id: string };
  const resolve = (raw: unknown): Resolved | { error: string } => {
    const parsed = lookupInput.safeParse(raw);
    if (!parsed.success) return { error: `context.lookup takes {type, id}: ${parsed.error.issues[0]?.message ?? "invalid arguments"}` };
    const def = deps.types.get(parsed.data.type);
    if (!def) return { error: `unknown entity type "${parsed.data.type}" — known: ${known()}` };
    const resolver = deps.tool(def.tool);
    if (!resolver) return { error: `${def.tool}, which resolves a ${def.type}, is not offered by its system — check ${def.file}` };
    // A definition may raise its entities' class above its tool's, never lower it: policy decides at this class.
    const classification = higher(resolver.classification ?? deps.connectionClassification(def.tool) ?? "internal", def.classification);
    return { def, resolver: { ...resolver, classification }, args: { [def.key]: parsed.data.id }, id: parsed.data.id };
  };

  const fetch = async (r: Resolved, call: ToolHandlerArgs<LookupArgs>, cached: ContextEntity | undefined): Promise<LookupResult> => {
    const { def, resolver, id } = r;
    const checked = resolver.input.safeParse(r.args);
    if (!checked.success) {
      throw new Error(`"${id}" is not a ${def.type} id ${def.tool} takes (${def.key}): ${checked.error.issues[0]?.message ?? "invalid"}`);
    }
    let answer: unknown;
    try {
      answer = await resolver.handler({ input: checked.data, idempotencyKey: call.idempotencyKey, context: call.context });
    } catch (err) {
      // The system is down or refused: a copy fetched earlier is better than nothing, if it says how old it is.
      if (cached) return view(cached, false, `${def.tool} failed: ${(err as Error)?.message ?? String(err)}`);
      throw err;
    }
    const entity: ContextEntity = {
      type: def.type,
      id,
      subject: `${def.type}:${id}`,
      data: typeof answer === "string" ? parseMaybe(answer) : (answer ?? null),
      classification: resolver.classification ?? "internal",
      source: { tool: def.tool, run_id: call.context.runId, agent: call.context.agent },
      fetchedAt: clock(),
    };
    await deps.cache.put(call.context.workspace, entity);
    return view(entity, false);
  };

  const view = (e: ContextEntity, cached: boolean, stale?: string): LookupResult => ({
    type: e.type,
    id: e.id,
    subject: e.subject,
    data: e.data,
    classification: e.classification,
    source: { ...sourceView(e, clock()), cached: cached || stale !== undefined },
    ...(stale !== undefined ? { stale } : {}),
  });

  const types = [...deps.types.values()].map((t) => `${t.type} (${t.description.replace(/\.$/, "")})`).join("; ");
  return {
    name: CONTEXT_LOOKUP,
    description: `Look up a business entity by its id: the same facts every Outpost agent sees, with their source and age (shared for a few minutes, then fetched again). Types: ${types || "none"}.`,
    input: lookupInput,
    sideEffects: false,
    // Read at each call: the resolving tools are known once their systems are up.
    get timeoutMs() {
      return Math.max(30_000, ...[...deps.types.values()].map((t) => deps.tool(t.tool)?.timeoutMs ?? 0));
    },
    context: {
      resolve(args) {
        const r = resolve(args);
        return "error" in r ? r : { tool: r.resolver, args: r.args };
      },
    },
    resultClassification: (result) => (result as LookupResult | undefined)?.classification,
    async handler(call) {
      const r = resolve(call.input);
      if ("error" in r) throw new Error(r.error);
      const workspace = call.context.workspace;
      const key = JSON.stringify([workspace, r.def.type, r.id]);
      const cached = await deps.cache.get(workspace, r.def.type, r.id);
      if (cached && !call.input.refresh && clock() - cached.fetchedAt < r.def.ttlMs) return view(cached, true);
      let pending = inFlight.get(key);
      if (!pending) {
        pending = fetch(r, call, cached).finally(() => inFlight.delete(key));
        inFlight.set(key, pending);
      }
      return pending;
    },
  };
}

function parseMaybe(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function higher(a: Classification, b: Classification | undefined): Classification {
  if (!b) return a;
  return classificationLevel(b) > classificationLevel(a) ? b : a;
}
