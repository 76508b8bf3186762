/**
 * Memory over HTTP, for people: list, search, read (with history), write, edit, forget, and erase everything about
 * a subject. Always the caller's workspace; another workspace's item is "not found".
 *
 * A person's search is not an agent's: no Cedar request per scope. Roles gate it instead (see ROUTE_ROLES), and a
 * search that names no scope covers every scope of the workspace that holds memory.
 *
 * `memoryApi` is the same thing in-process: the routes use it, and so does the CLI on a local store.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { type BusinessContext, type ContextEntity, sourceView } from "../../context/index.js";
import { OutpostError } from "../../core/errors.js";
import type {
  ContextEntityView,
  ErasureView,
  IngestKnowledgeRequest,
  KnowledgeDocumentView,
  ListContextRequest,
  ListMemoryRequest,
  MemoryApi,
  MemoryItemView,
  MemoryPatchRequest,
  MemoryVersionView,
  RememberRequest,
  SearchMemoryRequest,
} from "../../core/memory-api.js";
import {
  type ErasureReport,
  formatOf,
  type KnowledgeDocument,
  type MemoryItem,
  type MemoryStore,
  type MemoryVersion,
  normalizeScope,
} from "../../memory/index.js";
import type { Caller } from "../../security/types.js";
import { requireRole } from "../caller.js";

const DEFAULT_LIST_LIMIT = 50;
const MAX_LIST_LIMIT = 200;
const DEFAULT_SEARCH_LIMIT = 10;
const MAX_SEARCH_LIMIT = 50;
const CLASSES = ["public", "internal", "confidential", "restricted"] as const;

const iso = (ms: number) => new Date(ms).toISOString();

/** An item as every reader sees it (HTTP and the local CLI). */
export const memoryItemView = (i: MemoryItem): MemoryItemView => ({
  id: i.id,
  scope: i.scope,
  kind: i.kind,
  subject: i.subject,
  key: i.key,
  text: i.text,
  tags: i.tags,
  classification: i.classification,
  source: i.source,
  author: i.author,
  version: i.version,
  created_at: iso(i.createdAt),
  updated_at: iso(i.updatedAt),
  expires_at: i.expiresAt === null ? null : iso(i.expiresAt),
});

export const memoryVersionView = (v: MemoryVersion): MemoryVersionView => ({
  version: v.version,
  scope: v.scope,
  subject: v.subject,
  key: v.key,
  text: v.text,
  tags: v.tags,
  classification: v.classification,
  source: v.source,
  author: v.author,
  written_at: iso(v.writtenAt),
  expires_at: v.expiresAt === null ? null : iso(v.expiresAt),
  superseded_at: iso(v.supersededAt),
  superseded_by: v.supersededBy,
});

export const erasureView = (r: ErasureReport): ErasureView => ({
  subject: r.subject,
  items: r.items,
  knowledge_chunks: r.knowledgeChunks,
  versions: r.versions,
  context_entities: r.contextEntities,
  ids: r.ids,
});

/** A cached entity as a person sees it: what agents are served, from where, how old, and until when. */
export const contextEntityView = (e: ContextEntity, ttlMs: number | undefined, now = Date.now()): ContextEntityView => {
  const freshUntil = ttlMs === undefined ? null : e.fetchedAt + ttlMs;
  return {
    type: e.type,
    id: e.id,
    subject: e.subject,
    data: e.data,
    classification: e.classification,
    source: { ...sourceView(e, now), run_id: e.source.run_id },
    fresh_until: freshUntil === null ? null : iso(freshUntil),
    expired: freshUntil === null || freshUntil <= now,
  };
};

/** Memory as `caller` may use it: confined to its workspace, written as it (source `person`). */
export function memoryApi(memory: MemoryStore, caller: Caller, context?: BusinessContext): MemoryApi {
  const workspace = caller.workspace;
  const notFound = (id: string) =>
    new OutpostError(
      "not_found",
      `memory item "${id}" does not exist in workspace ${workspace}`,
      "list items with outpost memory ls (GET /v1/memory); a forgotten or erased item is gone",
    );

  return {
    async listMemory(request: ListMemoryRequest = {}) {
      const limit = limitOf(request.limit, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT);
      // An unknown cursor would silently restart at the newest item: a client paging on would never finish.
      if (request.cursor !== undefined && !(await memory.get(workspace, request.cursor))) {
        throw new OutpostError(
          "invalid_request",
          `cursor "${request.cursor}" is not an item of workspace ${workspace} (forgotten since?)`,
          "pass the next_cursor of the previous page, or start again without a cursor",
        );
      }
      const items = await memory.list({
        workspace,
        limit: limit + 1,
        ...(request.scope !== undefined ? { scopes: [normalizeScope(request.scope)] } : {}),
        ...(request.subject ? { subject: request.subject } : {}),
        ...(request.tag ? { tag: request.tag } : {}),
        ...(request.kind ? { kind: request.kind } : {}),
        ...(request.cursor !== undefined ? { before: request.cursor } : {}),
      });
      const page = items.slice(0, limit);
      return { items: page.map(memoryItemView), next_cursor: items.length > limit ? (page.at(-1)?.id ?? null) : null };
    },

    async searchMemory(request: SearchMemoryRequest) {
      const text = request.q.trim();
      if (text === "")
        throw new OutpostError("invalid_request", "query.q: must not be empty", "say what to look for, e.g. q=preferred carrier");
      const named = (request.scopes ?? []).flatMap((s) => s.split(",")).map((s) => s.trim());
      const scopes = named.some(Boolean) ? [...new Set(named.filter(Boolean).map(normalizeScope))] : await memory.scopes(workspace);
      if (scopes.length === 0) return { items: [], scopes };
      const hits = await memory.recall({
        workspace,
        text,
        scopes,
        limit: limitOf(request.limit, DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT),
        ...(request.subject ? { subject: request.subject } : {}),
        ...(request.tags && request.tags.length > 0 ? { tags: request.tags } : {}),
        ...(request.mode ? { mode: request.mode } : {}),
      });
      return { items: hits.map((h) => ({ ...memoryItemView(h.item), score: h.score, ranks: h.ranks })), scopes };
    },

    async getMemory(id: string) {
      const item = await memory.get(workspace, id);
      if (!item) throw notFound(id);
      const history = await memory.history(workspace, id);
      return { ...memoryItemView(item), history: history.map(memoryVersionView) };
    },

    async remember(request: RememberRequest) {
      refuseNul(request);
      const expiresAt = request.expires_at !== undefined ? futureTime(request.expires_at) : null;
      const r = await memory.remember({
        workspace,
        scope: request.scope,
        subject: request.subject ?? null,
        key: request.key ?? null,
        text: request.text,
        tags: request.tags ?? [],
        ...(request.classification ? { classification: request.classification } : {}),
        source: { kind: "person" },
        author: caller.id,
        expiresAt,
      });
      return { ...memoryItemView(r.item), superseded: r.superseded ? memoryVersionView(r.superseded) : null };
    },

    async updateMemory(id: string, patch: MemoryPatchRequest) {
      if (patch.text === undefined && patch.tags === undefined && patch.classification === undefined && patch.expires_at === undefined) {
        throw new OutpostError(
          "invalid_request",
          "an edit needs something to change",
          "send one or more of text, tags, classification, expires_at (null: never expires)",
        );
      }
      refuseNul(patch);
      const item = await memory.update(
        workspace,
        id,
        {
          ...(patch.text !== undefined ? { text: patch.text } : {}),
          ...(patch.tags !== undefined ? { tags: patch.tags } : {}),
          ...(patch.classification !== undefined ? { classification: patch.classification } : {}),
          ...(patch.expires_at !== undefined ? { expiresAt: patch.expires_at === null ? null : futureTime(patch.expires_at) } : {}),
        },
        caller.id,
      );
      return memoryItemView(item);
    },

    async forgetMemory(id: string) {
      if (!(await memory.forget(workspace, id, caller.id))) throw notFound(id);
    },

    async eraseSubject(subject: string) {
      refuseNul({ subject });
      return erasureView(await memory.eraseSubject(workspace, subject.trim(), caller.id));
    },

    async ingestKnowledge(request: IngestKnowledgeRequest) {
      refuseNul(request);
      if (request.text.length > MAX_DOCUMENT_CHARS) {
        throw new OutpostError(
          "payload_too_large",
          `${request.name}: a document is limited to ${MAX_DOCUMENT_CHARS} characters (got ${request.text.length})`,
          "split it into several documents",
        );
      }
      return memory.ingest({
        workspace,
        scope: request.scope,
        name: request.name,
        text: request.text,
        format: request.format ?? formatOf(request.name) ?? "text",
        tags: request.tags ?? [],
        ...(request.classification ? { classification: request.classification } : {}),
        ...(request.subject ? { subject: request.subject } : {}),
        author: caller.id,
      });
    },

    async listKnowledge(request: { scope?: string } = {}) {
      const documents = await memory.documents(workspace, request.scope !== undefined ? [request.scope] : undefined);
      return { documents: documents.map(documentView) };
    },

    async removeKnowledge(scope: string, name: string) {
      refuseNul({ scope, name });
      const chunks = await memory.removeDocument(workspace, scope, name, caller.id);
      if (chunks === 0) {
        throw new OutpostError(
          "not_found",
          `there is no knowledge document "${name}" in scope ${normalizeScope(scope)} of workspace ${workspace}`,
          "list documents with outpost knowledge ls (GET /v1/knowledge)",
        );
      }
      return { name, scope: normalizeScope(scope), chunks };
    },

    async listContext(request: ListContextRequest = {}) {
      if (!context) return { entities: [] };
      const limit = limitOf(request.limit, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT);
      const entities = await context.cache.list(workspace, { ...(request.type ? { type: request.type } : {}), limit });
      const now = Date.now();
      return { entities: entities.map((e) => contextEntityView(e, context.types.get(e.type)?.ttlMs, now)) };
    },

    async getContext(type: string, id: string) {
      const entity = await context?.cache.get(workspace, type, id);
      if (!context || !entity) {
        const known = context ? [...context.types.keys()].join(", ") || "none" : "none";
        throw new OutpostError(
          "not_found",
          `no agent of workspace ${workspace} has looked up ${type} ${id} (or it was erased)`,
          `entity types of this project: ${known}; list what agents fetched with outpost context ls (GET /v1/context)`,
        );
      }
      return contextEntityView(entity, context.types.get(type)?.ttlMs);
    },
  };
}

/** The longest document one ingest takes, in characters (about 500 pages of prose). */
const MAX_DOCUMENT_CHARS = 2_000_000;

const documentView = (d: KnowledgeDocument): KnowledgeDocumentView => ({
  name: d.name,
  scope: d.scope,
  chunks: d.chunks,
  classification: d.classification,
  subject: d.subject,
  tags: d.tags,
  updated_at: iso(d.updatedAt),
});

function limitOf(value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new OutpostError("invalid_request", `limit: must be a whole number from 1 to ${max}, not ${value}`);
  }
  return value;
}

/** An ISO date-time still to come, as epoch ms. */
function futureTime(text: string): number {
  const at = Date.parse(text);
  if (Number.isNaN(at))
    throw new OutpostError("invalid_request", `expires_at: "${text.slice(0, 40)}" is not a date-time`, "e.g. 2027-01-31T00:00:00Z");
  if (at <= Date.now()) {
    throw new OutpostError(
      "invalid_request",
      `expires_at: ${text.slice(0, 40)} is not in the future`,
      "give a later time, or forget the item now (DELETE /v1/memory/{id}, outpost memory forget ID)",
    );
  }
  return at;
}

/** PostgreSQL cannot store U+0000 in text, and no person means to send it. */
function refuseNul(fields: object): void {
  for (const [name, value] of Object.entries(fields)) {
    const values = Array.isArray(value) ? value : [value];
    if (values.some((v) => typeof v === "string" && v.includes("\u0000"))) {
      throw new OutpostError("invalid_request", `${name} contains a NUL character (\\u0000)`, "remove it and send the request again");
    }
  }
}

// ---- HTTP ------------------------------------------------------------------------------------------------------

const errorResponse = { $ref: "Error#" };
const nullableString = { type: ["string", "null"] } as const;
const dateTime = { type: "string", format: "date-time" } as const;
const nullableDateTime = { type: ["string", "null"], format: "date-time" } as const;
const tagList = { type: "array", items: { type: "string" }, maxItems: 20 } as const;
const oneOrMany = { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" }, maxItems: 20 }] } as const;
const source = {
  type: "object",
  required: ["kind"],
  additionalProperties: true,
  properties: { kind: { type: "string", enum: ["run", "person", "knowledge"] } },
  description: "Where it came from: a run (run_id, step, call_id, agent), a person, or a knowledge document (file, chunk)",
} as const;
const itemProperties = {
  id: { type: "string" },
  scope: { type: "string", description: "workspace, team/<name>, agent/<name>, user/<id> or session/<id>" },
  kind: { type: "string", enum: ["fact", "knowledge"] },
  subject: { ...nullableString, description: "what it is about, as type:id (customer:1042)" },
  key: nullableString,
  text: { type: "string" },
  tags: { type: "array", items: { type: "string" } },
  classification: { type: "string", enum: CLASSES },
  source,
  author: { type: "string", description: "agent:<name>, key:<id>, user:<sub> or local" },
  version: { type: "integer" },
  created_at: dateTime,
  updated_at: dateTime,
  expires_at: nullableDateTime,
} as const;
const itemRequired = Object.keys(itemProperties);
const item = { type: "object", required: itemRequired, additionalProperties: true, properties: itemProperties } as const;
const version = {
  type: "object",
  additionalProperties: true,
  required: ["version", "text", "author", "written_at", "superseded_at", "superseded_by"],
  properties: {
    version: { type: "integer" },
    scope: { type: "string" },
    subject: nullableString,
    key: nullableString,
    text: { type: "string" },
    tags: { type: "array", items: { type: "string" } },
    classification: { type: "string", enum: CLASSES },
    source,
    author: { type: "string" },
    written_at: dateTime,
    expires_at: nullableDateTime,
    superseded_at: dateTime,
    superseded_by: { type: "string", description: "who wrote the version that replaced it" },
  },
} as const;
const idParam = { type: "object", required: ["id"], properties: { id: { type: "string", maxLength: 100 } } } as const;
const writable = {
  text: { type: "string", minLength: 1, description: "the fact, at most 16,000 characters" },
  tags: tagList,
  classification: { type: "string", enum: CLASSES },
  expires_at: { ...dateTime, description: "forgotten after this time" },
} as const;

export async function registerMemoryRoutes(server: FastifyInstance, memory: MemoryStore, context?: BusinessContext): Promise<void> {
  const api = (caller: Caller) => memoryApi(memory, caller, context);
  // Memory can hold customers' data: readers are those who work with it or check it, not viewers.
  const reader = (request: FastifyRequest) => requireRole(request, "builder", "operator", "auditor");
  const writer = (request: FastifyRequest) => requireRole(request, "builder", "operator");

  server.get<{ Querystring: ListMemoryRequest }>(
    "/v1/memory",
    {
      schema: {
        tags: ["memory"],
        summary: "List memory items, most recently written first, a page at a time",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            scope: { type: "string", description: "only this scope, e.g. team/finance" },
            subject: { type: "string", description: "only items about this, e.g. customer:1042" },
            tag: { type: "string" },
            kind: { type: "string", enum: ["fact", "knowledge"] },
            limit: { type: "integer", minimum: 1, maximum: MAX_LIST_LIMIT, default: DEFAULT_LIST_LIMIT },
            cursor: { type: "string", maxLength: 100, description: "next_cursor of the previous page" },
          },
        },
        response: {
          200: {
            type: "object",
            required: ["items", "next_cursor"],
            properties: { items: { type: "array", items: item }, next_cursor: nullableString },
          },
          "4xx": errorResponse,
        },
      },
    },
    async (request) => api(reader(request)).listMemory(request.query),
  );

  server.get<{
    Querystring: {
      q: string;
      scope?: string | string[];
      subject?: string;
      tag?: string | string[];
      limit?: number;
      mode?: SearchMemoryRequest["mode"];
    };
  }>(
    "/v1/memory/search",
    {
      schema: {
        tags: ["memory"],
        summary: "Search memory by meaning and words (full text and vectors, fused by rank)",
        querystring: {
          type: "object",
          required: ["q"],
          additionalProperties: false,
          properties: {
            q: { type: "string", minLength: 1, maxLength: 2000, description: "what to look for" },
            scope: { ...oneOrMany, description: "only these scopes (repeat, or a comma list); default every scope that holds memory" },
            subject: { type: "string" },
            tag: { ...oneOrMany, description: "items carrying every one of these tags" },
            limit: { type: "integer", minimum: 1, maximum: MAX_SEARCH_LIMIT, default: DEFAULT_SEARCH_LIMIT },
            mode: { type: "string", enum: ["hybrid", "fts", "vector"], default: "hybrid" },
          },
        },
        response: {
          200: {
            type: "object",
            required: ["items", "scopes"],
            properties: {
              items: {
                type: "array",
                items: {
                  type: "object",
                  additionalProperties: true,
                  required: [...itemRequired, "score", "ranks"],
                  properties: {
                    ...itemProperties,
                    score: { type: "number" },
                    ranks: { type: "object", properties: { fts: { type: "integer" }, vector: { type: "integer" } } },
                  },
                },
              },
              scopes: { type: "array", items: { type: "string" }, description: "the scopes searched" },
            },
          },
          "4xx": errorResponse,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const many = (v: string | string[] | undefined) => (v === undefined ? undefined : Array.isArray(v) ? v : [v]);
      const scopes = many(q.scope);
      const tags = many(q.tag);
      return api(reader(request)).searchMemory({
        q: q.q,
        ...(scopes ? { scopes } : {}),
        ...(tags ? { tags } : {}),
        ...(q.subject !== undefined ? { subject: q.subject } : {}),
        ...(q.limit !== undefined ? { limit: q.limit } : {}),
        ...(q.mode !== undefined ? { mode: q.mode } : {}),
      });
    },
  );

  server.get<{ Params: { id: string } }>(
    "/v1/memory/:id",
    {
      schema: {
        tags: ["memory"],
        summary: "A memory item, its source, and its earlier versions (who superseded each, and when)",
        params: idParam,
        response: {
          200: {
            type: "object",
            additionalProperties: true,
            required: [...itemRequired, "history"],
            properties: { ...itemProperties, history: { type: "array", items: version } },
          },
          "4xx": errorResponse,
        },
      },
    },
    async (request) => api(reader(request)).getMemory(request.params.id),
  );

  server.post<{ Body: RememberRequest }>(
    "/v1/memory",
    {
      schema: {
        tags: ["memory"],
        summary: "Remember a fact; with a subject and key, it replaces the current fact of that subject and key",
        body: {
          type: "object",
          required: ["text", "scope"],
          additionalProperties: false,
          properties: {
            ...writable,
            scope: {
              type: "string",
              minLength: 1,
              maxLength: 220,
              description: "workspace, team/<name>, agent/<name>, user/<id> or session/<id>",
            },
            subject: { type: "string", maxLength: 200, description: "what it is about, as type:id (customer:1042)" },
            key: { type: "string", maxLength: 200, description: "e.g. preferred_carrier: one current fact per subject and key" },
          },
        },
        response: {
          201: {
            type: "object",
            additionalProperties: true,
            required: [...itemRequired, "superseded"],
            properties: { ...itemProperties, superseded: { anyOf: [version, { type: "null" }] } },
          },
          "4xx": errorResponse,
        },
      },
    },
    async (request, reply) => reply.code(201).send(await api(writer(request)).remember(request.body)),
  );

  server.patch<{ Params: { id: string }; Body: MemoryPatchRequest }>(
    "/v1/memory/:id",
    {
      schema: {
        tags: ["memory"],
        summary: "Edit an item: a new version, the old one kept in its history",
        params: idParam,
        body: {
          type: "object",
          additionalProperties: false,
          properties: { ...writable, expires_at: { ...nullableDateTime, description: "forgotten after this time; null: never" } },
        },
        response: { 200: item, "4xx": errorResponse },
      },
    },
    async (request) => api(writer(request)).updateMemory(request.params.id, request.body),
  );

  server.delete<{ Params: { id: string } }>(
    "/v1/memory/:id",
    {
      schema: {
        tags: ["memory"],
        summary: "Forget an item and its history (recorded in the audit log as memory.forgotten)",
        params: idParam,
        response: { 204: { type: "null" }, "4xx": errorResponse },
      },
    },
    async (request, reply) => {
      await api(writer(request)).forgetMemory(request.params.id);
      return reply.code(204).send();
    },
  );

  const documentSchema = {
    type: "object",
    required: ["name", "scope", "chunks", "classification", "subject", "tags", "updated_at"],
    properties: {
      name: { type: "string" },
      scope: { type: "string" },
      chunks: { type: "integer" },
      classification: { type: "string", enum: CLASSES },
      subject: nullableString,
      tags: { type: "array", items: { type: "string" } },
      updated_at: dateTime,
    },
  } as const;
  const scopeString = {
    type: "string",
    minLength: 1,
    maxLength: 220,
    description: "workspace, team/<name>, agent/<name>, user/<id> or session/<id>",
  } as const;

  server.post<{ Body: IngestKnowledgeRequest }>(
    "/v1/knowledge",
    {
      // A document is larger than any other body: up to MAX_DOCUMENT_CHARS characters of UTF-8, and JSON escaping.
      bodyLimit: 4 * MAX_DOCUMENT_CHARS,
      schema: {
        tags: ["memory"],
        summary: "Keep a document (Markdown or text) as knowledge chunks in a scope; the same name again replaces it",
        body: {
          type: "object",
          required: ["name", "scope", "text"],
          additionalProperties: false,
          properties: {
            name: { type: "string", minLength: 1, maxLength: 180, description: "its name in the scope, e.g. refund-policy.md" },
            scope: scopeString,
            text: { type: "string", minLength: 1 },
            format: { type: "string", enum: ["markdown", "text"], description: "default: markdown for .md/.markdown names, else text" },
            tags: tagList,
            classification: { type: "string", enum: CLASSES },
            subject: { type: "string", maxLength: 200, description: "what the whole document is about, if one thing (customer:1042)" },
          },
        },
        response: {
          201: {
            type: "object",
            required: ["name", "scope", "chunks", "added", "updated", "unchanged", "removed"],
            properties: Object.fromEntries(
              ["name", "scope", "chunks", "added", "updated", "unchanged", "removed"].map((k) => [
                k,
                { type: k === "name" || k === "scope" ? "string" : "integer" },
              ]),
            ),
          },
          "4xx": errorResponse,
        },
      },
    },
    async (request, reply) => reply.code(201).send(await api(writer(request)).ingestKnowledge(request.body)),
  );

  server.get<{ Querystring: { scope?: string } }>(
    "/v1/knowledge",
    {
      schema: {
        tags: ["memory"],
        summary: "The documents kept as knowledge: name, scope, chunks, classification",
        querystring: { type: "object", additionalProperties: false, properties: { scope: scopeString } },
        response: {
          200: { type: "object", required: ["documents"], properties: { documents: { type: "array", items: documentSchema } } },
          "4xx": errorResponse,
        },
      },
    },
    async (request) => api(reader(request)).listKnowledge(request.query),
  );

  server.delete<{ Querystring: { scope: string; name: string } }>(
    "/v1/knowledge",
    {
      schema: {
        tags: ["memory"],
        summary: "Remove a document's chunks and their history from a scope (recorded as knowledge.removed)",
        querystring: {
          type: "object",
          required: ["scope", "name"],
          additionalProperties: false,
          properties: { scope: scopeString, name: { type: "string", minLength: 1, maxLength: 180 } },
        },
        response: {
          200: {
            type: "object",
            required: ["name", "scope", "chunks"],
            properties: { name: { type: "string" }, scope: { type: "string" }, chunks: { type: "integer" } },
          },
          "4xx": errorResponse,
        },
      },
    },
    async (request) => api(writer(request)).removeKnowledge(request.query.scope, request.query.name),
  );

  const entityProperties = {
    type: { type: "string" },
    id: { type: "string" },
    subject: { type: "string", description: "<type>:<id>, what erasure finds" },
    data: { description: "what the resolving tool answered" },
    classification: { type: "string", enum: CLASSES },
    source: {
      type: "object",
      required: ["tool", "fetched_at", "age_seconds", "fetched_by", "run_id"],
      properties: {
        tool: { type: "string" },
        fetched_at: dateTime,
        age_seconds: { type: "integer" },
        fetched_by: { type: "string" },
        run_id: { type: "string" },
      },
    },
    fresh_until: { ...nullableDateTime, description: "until when agents are served this copy (null: the type is no longer declared)" },
    expired: { type: "boolean", description: "the next lookup fetches it again" },
  } as const;
  const entitySchema = { type: "object", required: Object.keys(entityProperties), properties: entityProperties } as const;
  const entityName = { type: "string", minLength: 1, maxLength: 200 } as const;

  server.get<{ Querystring: ListContextRequest }>(
    "/v1/context",
    {
      schema: {
        tags: ["memory"],
        summary: "Business entities agents looked up (context.lookup), most recently fetched first, with source and age",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: { type: { type: "string", minLength: 1, maxLength: 64 }, limit: { type: "integer" } },
        },
        response: {
          200: { type: "object", required: ["entities"], properties: { entities: { type: "array", items: entitySchema } } },
          "4xx": errorResponse,
        },
      },
    },
    async (request) => api(reader(request)).listContext(request.query),
  );

  server.get<{ Params: { type: string; id: string } }>(
    "/v1/context/:type/:id",
    {
      schema: {
        tags: ["memory"],
        summary: "One cached business entity, as agents are served it",
        params: { type: "object", required: ["type", "id"], properties: { type: entityName, id: entityName } },
        response: { 200: entitySchema, "4xx": errorResponse },
      },
    },
    async (request) => api(reader(request)).getContext(request.params.type, request.params.id),
  );

  server.post<{ Body: { subject: string } }>(
    "/v1/memory/erase",
    {
      schema: {
        tags: ["memory"],
        summary: "Erase everything about a subject: its items, knowledge chunks, earlier versions and cached context (admins)",
        body: {
          type: "object",
          required: ["subject"],
          additionalProperties: false,
          properties: { subject: { type: "string", minLength: 1, maxLength: 200, description: "e.g. customer:1042" } },
        },
        response: {
          200: {
            type: "object",
            required: ["subject", "items", "knowledge_chunks", "versions", "context_entities", "ids"],
            properties: {
              subject: { type: "string" },
              items: { type: "integer" },
              knowledge_chunks: { type: "integer" },
              versions: { type: "integer" },
              context_entities: { type: "integer" },
              ids: { type: "array", items: { type: "string" } },
            },
          },
          "4xx": errorResponse,
        },
      },
    },
    // Admins only (requireRole with no other role): see ROUTE_ROLES for why not auditors.
    async (request) => api(requireRole(request, "admin")).eraseSubject(request.body.subject),
  );
}
