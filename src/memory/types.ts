/**
 * Memory's vocabulary: items in scopes, where each came from, their versions, and what a recall asks and gets.
 */
import type { MemorySourceView } from "../core/memory-api.js";
import type { Classification } from "../definitions/types.js";

/** Whose memory: the whole workspace, a team, one agent, the person a run acts for, or one session. */
export type ScopeKind = "workspace" | "team" | "agent" | "user" | "session";

/** A scope as policies see it: `MemoryScope::"team/finance"` {kind: "team", owner: "finance"}. */
export interface MemoryScope {
  kind: ScopeKind;
  /** The team, agent, user or session it belongs to; "" for the workspace. */
  owner: string;
}

/** A remembered fact, or a chunk of a knowledge document. */
export const MEMORY_KINDS = ["fact", "knowledge"] as const;
export type MemoryKind = (typeof MEMORY_KINDS)[number];

/** Where an item came from: the provenance every item carries (the API's view is the same shape). */
export type MemorySource = MemorySourceView;

export interface MemoryItem {
  id: string;
  workspace: string;
  /** `workspace`, `team/<name>`, `agent/<name>`, `user/<id>`, `session/<id>`. */
  scope: string;
  kind: MemoryKind;
  subject: string | null;
  key: string | null;
  text: string;
  tags: string[];
  classification: Classification;
  source: MemorySource;
  /** `agent:<name>`, `key:<id>`, `user:<sub>`, `local`. */
  author: string;
  version: number;
  createdAt: number;
  updatedAt: number;
  expiresAt: number | null;
}

/** An earlier version of an item, as it was until `supersededAt`. */
export interface MemoryVersion {
  itemId: string;
  version: number;
  scope: string;
  subject: string | null;
  key: string | null;
  text: string;
  tags: string[];
  classification: Classification;
  source: MemorySource;
  author: string;
  writtenAt: number;
  expiresAt: number | null;
  supersededAt: number;
  supersededBy: string;
}

export interface RememberInput {
  workspace: string;
  scope: string;
  kind?: MemoryKind;
  subject?: string | null;
  key?: string | null;
  text: string;
  tags?: string[];
  classification?: Classification;
  source: MemorySource;
  author: string;
  expiresAt?: number | null;
  /** The idempotency key of the write (a tool call's): the same key again returns the first write's result. */
  writeKey?: string;
}

export interface RememberResult {
  item: MemoryItem;
  /** The version it replaced (same scope, subject and key), if any. */
  superseded: MemoryVersion | null;
  /** false: an earlier write with the same write key had already done it. */
  applied: boolean;
}

export interface MemoryPatch {
  text?: string;
  tags?: string[];
  classification?: Classification;
  expiresAt?: number | null;
}

export interface ListMemoryFilter {
  workspace: string;
  scopes?: string[];
  subject?: string;
  tag?: string;
  kind?: MemoryKind;
  limit: number;
  /** Items updated before this item (paging, newest first). */
  before?: string;
}

export interface RecallQuery {
  workspace: string;
  text: string;
  /** Only these scopes (already authorised by policy). */
  scopes: string[];
  subject?: string;
  /** Items carrying every one of these tags. */
  tags?: string[];
  kinds?: MemoryKind[];
  /** Nothing more sensitive than this (the reader's clearance). */
  maxClassification?: Classification;
  limit: number;
  /** `hybrid` (default): full text and vectors fused; or one of them alone. */
  mode?: "hybrid" | "fts" | "vector";
  now?: number;
}

export interface RecallHit {
  item: MemoryItem;
  /** Fused score, higher is better. */
  score: number;
  /** Rank (1-based) in each path that found it. */
  ranks: { fts?: number; vector?: number };
}

/** What erasing a subject removed, for the person who asked and the audit log. */
export interface ErasureReport {
  subject: string;
  items: number;
  knowledgeChunks: number;
  versions: number;
  contextEntities: number;
  /** Ids of the items removed. */
  ids: string[];
}

/** A document to keep as knowledge chunks in one scope (store.ts `ingest`). */
export interface KnowledgeDocumentInput {
  workspace: string;
  scope: string;
  /** The document's name in its scope (a file name: `refund-policy.md`); ingesting the same name again replaces it. */
  name: string;
  text: string;
  format: "markdown" | "text";
  tags?: string[];
  classification?: Classification;
  /** What the whole document is about, if one thing (erasing that subject removes its chunks). */
  subject?: string | null;
  author: string;
  /** The longest chunk, in characters (knowledge.ts). */
  maxChars?: number;
}

/** What ingesting a document changed: chunks new, rewritten (a new version), the same as before, and dropped. */
export interface IngestReport {
  name: string;
  scope: string;
  chunks: number;
  added: number;
  updated: number;
  unchanged: number;
  removed: number;
}

/** A document kept as knowledge: its name, scope and chunks. */
export interface KnowledgeDocument {
  name: string;
  scope: string;
  chunks: number;
  classification: Classification;
  subject: string | null;
  tags: string[];
  updatedAt: number;
}
