/**
 * Retrieval components at 10k, 100k and 1M items of one workspace, on raw SQLite with the store's memory tables:
 * ingestion, full-text recall (FTS5 bm25), the HNSW index (build, memory, file, queries, recall against exact search)
 * and hybrid recall (full text + HNSW + RRF + fetching the rows). Prints a table; asserts nothing.
 *
 *   node --import tsx bench/retrieval.ts            10k, 100k and 1M (the 1M case takes several minutes)
 *   node --import tsx bench/retrieval.ts --quick    10k and 100k
 *   node --import tsx bench/retrieval.ts --sizes=20000,50000
 *
 * The corpus is the planted-facts fixture scaled up (skewed customers: the busiest has ~9% of all items); the
 * queries are its ~100 planted-fact queries, each run 3 times after a warm-up round.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import BetterSqlite3 from "better-sqlite3";
import { hashedEmbedder } from "../src/memory/embedding.js";
import { fts5Match, ftsBody, metaToken, queryTerms } from "../src/memory/query.js";
import { reciprocalRankFusion } from "../src/memory/rank.js";
import { createHnswIndex, exactSearch, fromBlob, loadHnswIndex, toBlob, type VectorIndex } from "../src/memory/vector-index.js";
import { plantedCorpus } from "../test/fixtures/memory/planted-facts.js";

const quick = process.argv.includes("--quick");
const sizesArg = process.argv.find((a) => a.startsWith("--sizes="));
const SIZES = sizesArg ? sizesArg.slice(8).split(",").map(Number) : quick ? [10_000, 100_000] : [10_000, 100_000, 1_000_000];
const WORKSPACE = "acme";
const SCOPE = "team:support";
const PER_PATH = 50;
const ROUNDS = 3;
/** Above this many items, a subject's vectors are searched in the HNSW index (filtered), below it exactly. */
const EXACT_SUBJECT_LIMIT = 4_096;
/** Queries whose exact top 10 is computed, for recall@10. */
const RECALL_QUERIES = 50;

interface Row {
  size: number;
  ingestPerSec: number;
  embedPerSec: number;
  dbMb: number;
  ftsWorkspace: Stats;
  ftsSubject: Stats;
  hnswBuildS: number;
  hnswMemMb: number;
  hnswFileMb: number;
  hnswSaveS: number;
  hnswLoadS: number;
  hnswQuery: Stats;
  recallAt10: number;
  hybridWorkspace: Stats;
  hybridSubject: Stats;
}

interface Stats {
  p50: number;
  p95: number;
}

function stats(ms: number[]): Stats {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: at(0.5), p95: at(0.95) };
}

/** Runs `fn` over the queries: one warm-up round, then ROUNDS timed rounds. */
async function timed<T>(queries: T[], fn: (q: T) => unknown): Promise<Stats> {
  for (const q of queries) await fn(q);
  const ms: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const q of queries) {
      const t = performance.now();
      await fn(q);
      ms.push(performance.now() - t);
    }
  }
  return stats(ms);
}

const rssMb = () => process.memoryUsage().rss / 2 ** 20;
// A collection before each memory reading, without asking for --expose-gc on the command line.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

async function measure(size: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), "outpost-bench-retrieval-"));
  try {
    const path = join(dir, "memory.db");
    const db = new BetterSqlite3(path);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("cache_size = -65536");
    db.exec(`
      CREATE TABLE memory_items (num INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, workspace TEXT NOT NULL,
        scope TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT, key TEXT, text TEXT NOT NULL, tags TEXT NOT NULL,
        classification TEXT NOT NULL, updated_at INTEGER NOT NULL);
      CREATE INDEX memory_items_scope ON memory_items (workspace, scope, updated_at);
      CREATE INDEX memory_items_subject ON memory_items (workspace, subject);
      CREATE VIRTUAL TABLE memory_fts USING fts5(body, meta, content='', contentless_delete=1, tokenize='porter unicode61 remove_diacritics 2');
      CREATE TABLE memory_vectors (num INTEGER PRIMARY KEY, workspace TEXT NOT NULL, embedder TEXT NOT NULL, vector BLOB NOT NULL);
      CREATE INDEX memory_vectors_workspace ON memory_vectors (workspace, embedder);
    `);
    const { items, facts } = plantedCorpus({ distractors: Math.max(0, size - 350), seed: 7 });
    const embedder = hashedEmbedder();

    // ---- ingestion: embed, then row + FTS entry + vector in one transaction per batch, as the store writes
    const insertItem = db.prepare(
      "INSERT INTO memory_items (num, id, workspace, scope, kind, subject, text, tags, classification, updated_at) VALUES (?, ?, ?, ?, 'fact', ?, ?, ?, 'internal', ?)",
    );
    const insertFts = db.prepare("INSERT INTO memory_fts (rowid, body, meta) VALUES (?, ?, ?)");
    const insertVector = db.prepare("INSERT INTO memory_vectors (num, workspace, embedder, vector) VALUES (?, ?, ?, ?)");
    const workspaceMeta = [metaToken("w", WORKSPACE), metaToken("c", WORKSPACE, SCOPE), metaToken("k", WORKSPACE, "fact")].join(" ");
    const write = db.transaction((batch: typeof items, vectors: Float32Array[]) => {
      batch.forEach((item, i) => {
        insertItem.run(item.num, `mem_${item.num}`, WORKSPACE, SCOPE, item.subject, item.text, JSON.stringify(item.tags), item.num);
        const meta = item.subject ? `${workspaceMeta} ${metaToken("s", WORKSPACE, item.subject)}` : workspaceMeta;
        insertFts.run(item.num, ftsBody(item.text, item.tags, item.subject), meta);
        insertVector.run(item.num, WORKSPACE, embedder.id, toBlob(vectors[i]));
      });
    });
    let embedMs = 0;
    const ingestStart = performance.now();
    for (let i = 0; i < items.length; i += 1_000) {
      const batch = items.slice(i, i + 1_000);
      const t = performance.now();
      const vectors = await embedder.embed(batch.map((b) => b.text));
      embedMs += performance.now() - t;
      write(batch, vectors);
    }
    const ingestS = (performance.now() - ingestStart) / 1000;
    db.pragma("wal_checkpoint(TRUNCATE)");
    const dbMb = statSync(path).size / 2 ** 20;

    // ---- full text, workspace-wide and within a subject
    const ftsSearch = db.prepare(
      `SELECT rowid AS num FROM memory_fts WHERE memory_fts MATCH ? ORDER BY bm25(memory_fts, 1.0, 0.0) LIMIT ${PER_PATH}`,
    );
    const subjectOf = new Map(items.map((i) => [i.num, i.subject]));
    const withSubject = facts.filter((f) => subjectOf.get(f.num));
    const fullText = (text: string, subject?: string | null): number[] => {
      const all = [[metaToken("c", WORKSPACE, SCOPE)]];
      if (subject) all.push([metaToken("s", WORKSPACE, subject)]);
      const match = fts5Match(queryTerms(text), { all });
      return match ? (ftsSearch.all(match) as { num: number }[]).map((r) => r.num) : [];
    };
    const ftsWorkspace = await timed(facts, (f) => fullText(f.query));
    const ftsSubject = await timed(withSubject, (f) => fullText(f.query, subjectOf.get(f.num)));

    // ---- the HNSW index, built from the table as a starting process would
    gc();
    const rssBefore = rssMb();
    const buildStart = performance.now();
    let index: VectorIndex = createHnswIndex(embedder.dimensions);
    const readVectors = db.prepare("SELECT num, vector FROM memory_vectors WHERE workspace = ? AND embedder = ?");
    let chunk: { label: number; vector: Float32Array }[] = [];
    for (const r of readVectors.iterate(WORKSPACE, embedder.id) as Iterable<{ num: number; vector: Buffer }>) {
      chunk.push({ label: r.num, vector: fromBlob(r.vector) });
      if (chunk.length === 20_000) {
        index.upsertMany(chunk);
        chunk = [];
      }
    }
    index.upsertMany(chunk);
    chunk = [];
    const hnswBuildS = (performance.now() - buildStart) / 1000;
    gc();
    const hnswMemMb = rssMb() - rssBefore;
    const indexPath = join(dir, "vectors.usearch");
    let t = performance.now();
    index.save(indexPath);
    const hnswSaveS = (performance.now() - t) / 1000;
    const hnswFileMb = statSync(indexPath).size / 2 ** 20;
    t = performance.now();
    index = loadHnswIndex(indexPath, embedder.dimensions);
    const hnswLoadS = (performance.now() - t) / 1000;

    const vectorsOf = await embedder.embed(facts.map((f) => f.query));
    const queryVectors = new Map(facts.map((f, i) => [f.query, vectorsOf[i]]));
    const hnswQuery = await timed(facts, (f) => index.search(queryVectors.get(f.query) as Float32Array, 10));

    // recall@10 against exact search, over every stored vector in one pass for all sample queries
    const sample = facts.slice(0, RECALL_QUERIES).map((f) => queryVectors.get(f.query) as Float32Array);
    const exactTop = exactTopK(sample, readVectors.iterate(WORKSPACE, embedder.id) as Iterable<{ num: number; vector: Buffer }>, 10);
    let agree = 0;
    sample.forEach((q, i) => {
      const truth = new Set(exactTop[i]);
      agree += index.search(q, 10).filter((h) => truth.has(h.label)).length;
    });
    const recallAt10 = agree / (sample.length * 10);

    // ---- hybrid: both paths, fused, rows fetched; in a subject: exact over its vectors when it is small
    const fetchRows = (nums: number[]) =>
      nums.length === 0
        ? []
        : db
            .prepare(`SELECT * FROM memory_items WHERE workspace = ? AND num IN (${nums.map(() => "?").join(",")})`)
            .all(WORKSPACE, ...nums);
    const fuse = (fts: number[], vector: number[]) => {
      const fused = reciprocalRankFusion([fts.map((label) => ({ label })), vector.map((label) => ({ label }))]).slice(0, 10);
      return fetchRows(fused.map((h) => h.label));
    };
    // The query is embedded on every call, as recall does: the embedder is part of the latency.
    const hybridWorkspace = await timed(facts, async (f) => {
      const fts = fullText(f.query);
      const [q] = await embedder.embed([f.query]);
      return fuse(
        fts,
        index.search(q, PER_PATH).map((h) => h.label),
      );
    });
    const subjectCount = db.prepare("SELECT count(*) AS n FROM memory_items WHERE workspace = ? AND subject = ?").pluck();
    const subjectVectors = db.prepare(
      "SELECT v.num, v.vector FROM memory_vectors v JOIN memory_items i ON i.num = v.num WHERE i.workspace = ? AND i.subject = ? AND v.embedder = ?",
    );
    // In the store this is an array kept next to the index (label → subject), so a filter never asks the database.
    const subjectHash = new Int32Array(items.length + 1);
    const hashOf = (s: string) => {
      let h = 0;
      for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
      return h | 1;
    };
    for (const item of items) if (item.subject) subjectHash[item.num] = hashOf(item.subject);
    const hybridSubject = await timed(withSubject, async (f) => {
      const subject = subjectOf.get(f.num) as string;
      const fts = fullText(f.query, subject);
      const [q] = await embedder.embed([f.query]);
      const n = subjectCount.get(WORKSPACE, subject) as number;
      const vector =
        n <= EXACT_SUBJECT_LIMIT
          ? exactSearch(
              q,
              (subjectVectors.all(WORKSPACE, subject, embedder.id) as { num: number; vector: Buffer }[]).map((r) => ({
                label: r.num,
                vector: fromBlob(r.vector),
              })),
              PER_PATH,
            )
          : index.search(q, PER_PATH, (label) => subjectHash[label] === hashOf(subject));
      return fuse(
        fts,
        vector.map((h) => h.label),
      );
    });

    db.close();
    return {
      size: items.length,
      ingestPerSec: items.length / ingestS,
      embedPerSec: items.length / (embedMs / 1000),
      dbMb,
      ftsWorkspace,
      ftsSubject,
      hnswBuildS,
      hnswMemMb,
      hnswFileMb,
      hnswSaveS,
      hnswLoadS,
      hnswQuery,
      recallAt10,
      hybridWorkspace,
      hybridSubject,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Exact top-k labels for each query, streaming the stored vectors once. */
function exactTopK(queries: Float32Array[], rows: Iterable<{ num: number; vector: Buffer }>, k: number): number[][] {
  const tops = queries.map(() => [] as { label: number; score: number }[]);
  let batch: { label: number; vector: Float32Array }[] = [];
  const flush = () => {
    queries.forEach((q, i) => {
      tops[i] = exactSearch(q, [...tops[i].map((h) => ({ label: h.label, vector: stored.get(h.label) as Float32Array })), ...batch], k);
    });
    for (const e of batch) stored.set(e.label, e.vector);
    // Keep only vectors some query still holds in its top k.
    const keep = new Set(tops.flatMap((t) => t.map((h) => h.label)));
    for (const label of stored.keys()) if (!keep.has(label)) stored.delete(label);
    batch = [];
  };
  const stored = new Map<number, Float32Array>();
  for (const r of rows) {
    batch.push({ label: r.num, vector: fromBlob(r.vector) });
    if (batch.length === 50_000) flush();
  }
  flush();
  return tops.map((t) => t.map((h) => h.label));
}

function table(rows: Row[]): string {
  const f = (n: number, digits = 1) => n.toFixed(digits);
  const pct = (s: Stats) => `${f(s.p50, 2)} / ${f(s.p95, 2)}`;
  const size = (n: number) => (n >= 1_000_000 ? `${f(n / 1_000_000, 2)}M` : `${f(n / 1_000, 0)}k`);
  const lines: [string, (r: Row) => string][] = [
    ["items", (r) => size(r.size)],
    ["ingest, items/s (embed + row + FTS + vector)", (r) => f(r.ingestPerSec, 0)],
    ["  hashed embedding alone, texts/s", (r) => f(r.embedPerSec, 0)],
    ["database file, MB", (r) => f(r.dbMb, 0)],
    ["FTS workspace-wide, ms p50 / p95", (r) => pct(r.ftsWorkspace)],
    ["FTS in a subject (meta token), ms p50 / p95", (r) => pct(r.ftsSubject)],
    ["HNSW build from table, s", (r) => f(r.hnswBuildS, 1)],
    ["HNSW memory (RSS growth), MB", (r) => f(r.hnswMemMb, 0)],
    ["HNSW file, MB / save s / load s", (r) => `${f(r.hnswFileMb, 0)} / ${f(r.hnswSaveS, 2)} / ${f(r.hnswLoadS, 2)}`],
    ["HNSW query k=10, ms p50 / p95", (r) => pct(r.hnswQuery)],
    ["HNSW recall@10 vs exact", (r) => f(r.recallAt10, 3)],
    ["hybrid workspace-wide, ms p50 / p95", (r) => pct(r.hybridWorkspace)],
    ["hybrid in a subject, ms p50 / p95", (r) => pct(r.hybridSubject)],
  ];
  const width = Math.max(...lines.map(([name]) => name.length));
  const cells = lines.map(([name, value]) => [name.padEnd(width), ...rows.map((r) => value(r).padStart(16))].join("  "));
  return cells.join("\n");
}

const rows: Row[] = [];
console.log(
  `retrieval bench: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${f0(totalmem() / 2 ** 30)} GB, node ${process.version}`,
);
for (const size of SIZES) {
  const t = performance.now();
  rows.push(await measure(size));
  console.log(`  ${size} items measured in ${f0((performance.now() - t) / 1000)} s`);
}
console.log(`\n${table(rows)}`);

function f0(n: number): string {
  return n.toFixed(0);
}
