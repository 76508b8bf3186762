/**
 * Memory as people see it, in plain JSON-shaped views: what is remembered, in which scope, from where, by whom,
 * its earlier versions, and what erasing a subject removed.
 *
 * One interface, two implementations, as with OutpostApi: in-process (server/routes/memory.ts `memoryApi`, which
 * the HTTP routes and the local CLI use) and the HTTP client (`--server URL`).
 */
import type { Page } from "./api.js";

export type MemoryClassification = "public" | "internal" | "confidential" | "restricted";

/** Where an item came from. */
export interface MemorySourceView {
  /** `run`: an agent remembered it; `person`: written through the API or CLI; `knowledge`: from a document. */
  kind: "run" | "person" | "knowledge";
  run_id?: string;
  step?: number;
  call_id?: string;
  tool?: string;
  agent?: string;
  file?: string;
  chunk?: number;
  heading?: string;
}

export interface MemoryItemView {
  id: string;
  /** `workspace`, `team/<name>`, `agent/<name>`, `user/<id>`, `session/<id>`. */
  scope: string;
  kind: "fact" | "knowledge";
  /** What it is about, as type:id (`customer:1042`). */
  subject: string | null;
  /** With the subject, names the one current fact a newer one replaces. */
  key: string | null;
  text: string;
  tags: string[];
  classification: MemoryClassification;
  source: MemorySourceView;
  /** `agent:<name>`, `key:<id>`, `user:<sub>`, `local`. */
  author: string;
  version: number;
  created_at: string;
  updated_at: string;
  expires_at: string | null;
}

/** An earlier version of an item, as it was until someone superseded it. */
export interface MemoryVersionView {
  version: number;
  scope: string;
  subject: string | null;
  key: string | null;
  text: string;
  tags: string[];
  classification: MemoryClassification;
  source: MemorySourceView;
  author: string;
  written_at: string;
  expires_at: string | null;
  superseded_at: string;
  superseded_by: string;
}

export interface MemoryDetailView extends MemoryItemView {
  /** Earlier versions, newest first. */
  history: MemoryVersionView[];
}

export interface RememberedView extends MemoryItemView {
  /** The version this write replaced (same scope, subject and key), if any. */
  superseded: MemoryVersionView | null;
}

export interface MemoryHitView extends MemoryItemView {
  /** Fused rank score, higher is better (comparable within one search only). */
  score: number;
  /** 1-based rank in each path that found it. */
  ranks: { fts?: number; vector?: number };
}

export interface MemorySearchView {
  items: MemoryHitView[];
  /** The scopes searched. */
  scopes: string[];
}

/** What erasing a subject removed. */
export interface ErasureView {
  subject: string;
  items: number;
  knowledge_chunks: number;
  versions: number;
  context_entities: number;
  ids: string[];
}

export interface ListMemoryRequest {
  scope?: string;
  subject?: string;
  tag?: string;
  kind?: "fact" | "knowledge";
  limit?: number;
  /** `next_cursor` of the previous page. */
  cursor?: string;
}

export interface SearchMemoryRequest {
  q: string;
  /** Default: every scope of the workspace that holds memory. */
  scopes?: string[];
  subject?: string;
  /** Items carrying every one of these. */
  tags?: string[];
  limit?: number;
  mode?: "hybrid" | "fts" | "vector";
}

export interface RememberRequest {
  text: string;
  scope: string;
  subject?: string;
  key?: string;
  tags?: string[];
  classification?: MemoryClassification;
  /** ISO date-time after which it is forgotten. */
  expires_at?: string;
}

export interface MemoryPatchRequest {
  text?: string;
  tags?: string[];
  classification?: MemoryClassification;
  /** null: never expires. */
  expires_at?: string | null;
}

/** A document to keep as knowledge: cut into chunks, each recalled like a memory (kind `knowledge`). */
export interface IngestKnowledgeRequest {
  /** Its name in the scope (a file name); the same name again replaces the document's chunks. */
  name: string;
  scope: string;
  text: string;
  /** Default: markdown for a name ending .md or .markdown, else text. */
  format?: "markdown" | "text";
  tags?: string[];
  classification?: MemoryClassification;
  /** What the whole document is about, if one thing (erasing it removes the chunks). */
  subject?: string;
}

/** What ingesting changed: chunks new, rewritten (a new version each), the same as before, and dropped. */
export interface IngestView {
  name: string;
  scope: string;
  chunks: number;
  added: number;
  updated: number;
  unchanged: number;
  removed: number;
}

export interface KnowledgeDocumentView {
  name: string;
  scope: string;
  chunks: number;
  /** The highest of its chunks'. */
  classification: MemoryClassification;
  subject: string | null;
  tags: string[];
  updated_at: string;
}

/** A business entity as agents last fetched it (context.lookup), from the workspace's shared cache. */
export interface ContextEntityView {
  type: string;
  id: string;
  /** `<type>:<id>`, what erasure finds. */
  subject: string;
  /** What the resolving tool answered. */
  data: unknown;
  classification: MemoryClassification;
  source: {
    tool: string;
    fetched_at: string;
    age_seconds: number;
    /** `agent:<name> (run <id>)`. */
    fetched_by: string;
    run_id: string;
  };
  /** Until when agents are served this copy without a new fetch (fetched_at + the type's ttl); null when the
   * project no longer declares the type. */
  fresh_until: string | null;
  /** Past fresh_until: the next lookup fetches it again. */
  expired: boolean;
}

export interface ListContextRequest {
  type?: string;
  limit?: number;
}

export interface MemoryApi {
  listMemory(request?: ListMemoryRequest): Promise<Page<MemoryItemView>>;
  searchMemory(request: SearchMemoryRequest): Promise<MemorySearchView>;
  getMemory(id: string): Promise<MemoryDetailView>;
  remember(request: RememberRequest): Promise<RememberedView>;
  updateMemory(id: string, patch: MemoryPatchRequest): Promise<MemoryItemView>;
  forgetMemory(id: string): Promise<void>;
  eraseSubject(subject: string): Promise<ErasureView>;
  ingestKnowledge(request: IngestKnowledgeRequest): Promise<IngestView>;
  listKnowledge(request?: { scope?: string }): Promise<{ documents: KnowledgeDocumentView[] }>;
  /** Removes a document's chunks from a scope; not_found when it has none there. */
  removeKnowledge(scope: string, name: string): Promise<{ name: string; scope: string; chunks: number }>;
  /** The business entities agents looked up, most recently fetched first. */
  listContext(request?: ListContextRequest): Promise<{ entities: ContextEntityView[] }>;
  /** One cached entity; not_found when no agent fetched it (or it was erased). */
  getContext(type: string, id: string): Promise<ContextEntityView>;
}
