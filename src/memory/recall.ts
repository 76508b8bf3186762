/**
 * Recall: full-text search (SQLite FTS5 bm25; PostgreSQL ts_rank_cd) and vector search over the caller's scopes,
 * fused by reciprocal rank. Both paths filter by workspace, scope, subject, kind and classification inside the
 * query, so nothing outside what the caller may read is ever ranked.
 */
import { sql } from "kysely";
import type { DomainStorage } from "../store/types.js";
import type { Embedder } from "./embedding.js";
import { fts5Match, metaToken, pgTsQuery, queryTerms } from "./query.js";
import { reciprocalRankFusion } from "./rank.js";
import { atMost, toItem } from "./store.js";
import type { MemoryItem, RecallHit, RecallQuery } from "./types.js";
import { exactSearch, fromBlob } from "./vector-index.js";

export interface Recaller {
  recall(query: RecallQuery): Promise<RecallHit[]>;
  /** Told of each vector written or removed (in the writing transaction), for an in-process index to follow. */
  noteWrite?(workspace: string, num: number, vector: Float32Array): void;
  noteDelete?(workspace: string, num: number): void;
}

/** Candidates each path contributes before fusion. */
const PER_PATH = 50;

export function sqlRecaller(storage: DomainStorage, embedder: Embedder): Recaller {
  const db = storage.db;

  const ftsPath = async (q: RecallQuery, terms: string[]): Promise<number[]> => {
    if (terms.length === 0 || q.scopes.length === 0) return [];
    if (storage.kind === "sqlite") {
      const all: string[][] = [q.scopes.map((s) => metaToken("c", q.workspace, s))];
      if (q.subject) all.push([metaToken("s", q.workspace, q.subject)]);
      if (q.kinds && q.kinds.length > 0) all.push(q.kinds.map((k) => metaToken("k", q.workspace, k)));
      const match = fts5Match(terms, { all });
      if (!match) return [];
      const rows = await sql<{
        num: number;
      }>`SELECT rowid AS num FROM memory_fts WHERE memory_fts MATCH ${match} ORDER BY bm25(memory_fts, 1.0, 0.0) LIMIT ${PER_PATH}`.execute(
        db,
      );
      return rows.rows.map((r) => Number(r.num));
    }
    const tsquery = pgTsQuery(terms);
    if (!tsquery) return [];
    let query = db
      .selectFrom("memory_items")
      .select("num")
      .where("workspace", "=", q.workspace)
      .where("scope", "in", q.scopes)
      .where(sql<boolean>`tsv @@ to_tsquery('english', ${tsquery})`);
    if (q.subject) query = query.where("subject", "=", q.subject);
    if (q.kinds && q.kinds.length > 0) query = query.where("kind", "in", q.kinds);
    const rows = await query.orderBy(sql`ts_rank_cd(tsv, to_tsquery('english', ${tsquery}))`, "desc").limit(PER_PATH).execute();
    return rows.map((r) => Number(r.num));
  };

  const vectorPath = async (q: RecallQuery): Promise<number[]> => {
    if (q.scopes.length === 0 || q.text.trim() === "") return [];
    const [query] = await embedder.embed([q.text]);
    if (!query) return [];
    let candidates = db
      .selectFrom("memory_vectors as v")
      .innerJoin("memory_items as i", "i.num", "v.num")
      .select(["v.num", "v.vector"])
      .where("i.workspace", "=", q.workspace)
      .where("v.embedder", "=", embedder.id)
      .where("i.scope", "in", q.scopes);
    if (q.subject) candidates = candidates.where("i.subject", "=", q.subject);
    if (q.kinds && q.kinds.length > 0) candidates = candidates.where("i.kind", "in", q.kinds);
    const rows = await candidates.execute();
    return exactSearch(
      query,
      rows.map((r) => ({ label: Number(r.num), vector: fromBlob(r.vector) })),
      PER_PATH,
    ).map((h) => h.label);
  };

  return {
    async recall(q) {
      const mode = q.mode ?? "hybrid";
      const terms = queryTerms(q.text);
      const [fts, vector] = await Promise.all([
        mode === "vector" ? Promise.resolve([]) : ftsPath(q, terms),
        mode === "fts" ? Promise.resolve([]) : vectorPath(q),
      ]);
      const nums = [...new Set([...fts, ...vector])];
      if (nums.length === 0) return [];
      // The rows, checked again: classification, tags and expiry are filters of the item, not of either index.
      const now = q.now ?? Date.now();
      const allowed = atMost(q.maxClassification);
      const rows = await db
        .selectFrom("memory_items")
        .selectAll()
        .where("workspace", "=", q.workspace)
        .where("num", "in", nums)
        .where("scope", "in", q.scopes)
        .where("classification", "in", allowed)
        .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", now)]))
        .execute();
      const items = new Map<number, MemoryItem>();
      for (const r of rows) {
        const item = toItem(r);
        if (q.tags && !q.tags.every((t) => item.tags.includes(t))) continue;
        items.set(Number(r.num), item);
      }
      const lists = [fts, vector].map((list) => list.filter((n) => items.has(n)).map((label) => ({ label })));
      const fused = reciprocalRankFusion(lists);
      const rank = (list: number[], n: number) => {
        const i = list.indexOf(n);
        return i < 0 ? undefined : i + 1;
      };
      return fused.slice(0, q.limit).map(({ label, score }) => {
        const ranks: RecallHit["ranks"] = {};
        const f = rank(fts, label);
        const v = rank(vector, label);
        if (f !== undefined) ranks.fts = f;
        if (v !== undefined) ranks.vector = v;
        return { item: items.get(label) as MemoryItem, score, ranks };
      });
    },
  };
}
