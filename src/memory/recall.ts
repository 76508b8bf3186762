/**
 * Recall: full-text search (SQLite FTS5 bm25; PostgreSQL ts_rank_cd) and vector search over the caller's scopes,
 * fused by reciprocal rank. Full text filters by workspace, scope, subject and kind inside the query; so does the
 * vector path (ann.ts: an index per scope and kind). Every hit's row is then checked again — scope, subject, kind,
 * classification, tags, expiry — so nothing outside what the caller may read is ever returned.
 */
import { sql } from "kysely";
import type { DomainStorage } from "../store/types.js";
import { type AnnOptions, annSearch } from "./ann.js";
import type { Embedder } from "./embedding.js";
import { fts5Match, metaToken, pgTsQuery, queryTerms } from "./query.js";
import { reciprocalRankFusion } from "./rank.js";
import { atMost, toItem } from "./store.js";
import type { MemoryItem, RecallHit, RecallQuery } from "./types.js";

export interface Recaller {
  recall(query: RecallQuery): Promise<RecallHit[]>;
  /** Told of each vector written or removed (in the writing transaction, so perhaps rolled back), for the in-process
   * indexes to follow (ann.ts: they read the committed row before the next search). */
  noteWrite?(workspace: string, num: number, vector: Float32Array): void;
  noteDelete?(workspace: string, num: number): void;
}

export interface RecallOptions extends AnnOptions {
  /**
   * Vector hits less similar than this (cosine) are not fused: what is that far from the query is noise, and it would
   * push real full-text hits down. Default 0.2 for the hashed embedder, 0 for others (whose scales differ by model).
   * Hashed: on the planted-facts corpus (seeds 1–7) the planted fact scores 0.14–0.9 (5th percentile 0.25), a
   * query about nothing in the corpus ("how do I bake sourdough bread") 0.21–0.30 for its best hits and 0.13–0.19
   * for its 50th; recall@5 is the same at every floor from 0 to 0.2 and starts to drop at 0.25.
   */
  minSimilarity?: number;
  /** Told when the query cannot be embedded: a hybrid recall goes on by full text alone, a vector-only one fails. */
  onEmbedFailure?: (err: unknown) => void;
}

/** Candidates each path contributes to fusion. */
const PER_PATH = 50;
/** Vector candidates asked for: more than fused, as classification, tags and expiry are checked on the rows. */
const VECTOR_CANDIDATES = 2 * PER_PATH;

export function sqlRecaller(storage: DomainStorage, embedder: Embedder, options: RecallOptions = {}): Recaller {
  const db = storage.db;
  const ann = annSearch(storage, embedder, options);
  const minSimilarity = options.minSimilarity ?? (embedder.id.startsWith("hashed-") ? 0.2 : 0);

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
    let query: Float32Array | undefined;
    try {
      [query] = await embedder.embed([q.text]);
    } catch (err) {
      options.onEmbedFailure?.(err);
      if ((q.mode ?? "hybrid") === "vector") throw err;
      return [];
    }
    if (!query?.some((x) => x !== 0)) return [];
    const hits = await ann.search(q, query, VECTOR_CANDIDATES);
    return hits.filter((h) => h.score >= minSimilarity).map((h) => h.label);
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
      // The rows, checked again: the vector path knows neither classification, tags nor expiry.
      const now = q.now ?? Date.now();
      const allowed = new Set<string>(atMost(q.maxClassification));
      const scopes = new Set(q.scopes);
      const rows = await db.selectFrom("memory_items").selectAll().where("workspace", "=", q.workspace).where("num", "in", nums).execute();
      const items = new Map<number, MemoryItem>();
      for (const r of rows) {
        if (!scopes.has(r.scope) || !allowed.has(r.classification)) continue;
        if (r.expires_at !== null && Number(r.expires_at) <= now) continue;
        if ((q.subject && r.subject !== q.subject) || (q.kinds && q.kinds.length > 0 && !q.kinds.includes(r.kind as MemoryItem["kind"]))) {
          continue;
        }
        const item = toItem(r);
        if (q.tags && !q.tags.every((t) => item.tags.includes(t))) continue;
        items.set(Number(r.num), item);
      }
      // Found by the vector path but gone from the table: removed by another process since the index learnt of it.
      const present = new Set(rows.map((r) => Number(r.num)));
      const gone = vector.filter((n) => !present.has(n));
      if (gone.length > 0) ann.gone(q.workspace, gone);
      const [ftsKept, vectorKept] = [fts, vector].map((list) => list.filter((n) => items.has(n)).slice(0, PER_PATH));
      const fused = reciprocalRankFusion([ftsKept, vectorKept].map((list) => list.map((label) => ({ label }))));
      const rank = (list: number[], n: number) => {
        const i = list.indexOf(n);
        return i < 0 ? undefined : i + 1;
      };
      return fused.slice(0, q.limit).map(({ label, score }) => {
        const ranks: RecallHit["ranks"] = {};
        const f = rank(ftsKept, label);
        const v = rank(vectorKept, label);
        if (f !== undefined) ranks.fts = f;
        if (v !== undefined) ranks.vector = v;
        return { item: items.get(label) as MemoryItem, score, ranks };
      });
    },
    noteWrite: (workspace, num) => ann.noteWrite(workspace, num),
    noteDelete: (workspace, num) => ann.noteDelete(workspace, num),
  };
}
