/**
 * The vector path of recall (recall.ts): the items of the caller's scopes closest to the query's vector. Exact over
 * the rows SQL selects when they are few; through an in-process HNSW index (vector-index.ts) when a scope holds many.
 *
 * One index per (workspace, scope, kind), for the recaller's one embedder: facts and knowledge chunks apart, so that
 * asking for facts among a hundred thousand policy paragraphs searches the facts, instead of filtering them out of
 * the paragraphs' nearest neighbours (an approximate index returns the nearest k, and past them nothing). A slot
 * gets its index on the first recall that finds it holding more than `threshold` vectors: built in the background
 * from memory_vectors joined to memory_items, a chunk at a time (`upsertMany`). A recall waits up to `buildWaitMs`
 * for it; past that, that slot adds nothing to the vector path until the index is ready (full text still answers).
 * Smaller slots are searched exactly over their rows (at most `threshold`: a few milliseconds). A query with a
 * subject is searched exactly over the subject's rows when they are few, and otherwise through the indexes of its
 * scopes, keeping only the subject's items. A query over several slots searches each and merges by cosine
 * similarity. Classification, tags and expiry are not known here: recall checks them on the rows it fetches, so it
 * asks for more candidates than it keeps.
 *
 * Freshness:
 * - This process's writes: the store tells of each item written or removed (`noteWrite` / `noteDelete`, from inside
 *   the writing transaction). The numbers wait in the workspace's `pending` set, and the next recall there reads
 *   their committed rows before it searches: read-your-writes, and a write that rolled back changes nothing.
 * - Other processes' writes (several workers on PostgreSQL, a CLI next to a server): at most once every `catchUpMs`
 *   (1 s), a recall lists the scope's rows with `updated_at` > cursor − `lookbackMs` (cursor: the newest updated_at
 *   the index has applied) and reads the vectors of those it has not applied at that updated_at. The bound: a write
 *   committed elsewhere is searched through the index within `catchUpMs` of its commit (plus one listing), provided
 *   its updated_at is at most `lookbackMs` (10 s) older than the newest one this index had seen by then — its
 *   writer's clock no further behind the others', and its transaction committed within that time of stamping it. A
 *   write outside the bound shows at its next update, or when the index is next built (process start, eviction).
 *   The listing costs one indexed range query per index a second, returning the rows written in the last lookbackMs.
 * - Other processes' deletes: never returned (recall fetches the rows, and drops those gone); the index forgets a
 *   label the first time a search returns it (`gone`).
 *
 * Memory: the indexes keep vectors at half precision plus the graph: for the 256-dimensional hashed embedder about
 * 0.5 KB + ~0.2 KB a vector (measured RSS, see BENCHMARKS.md), so ~0.7 GB per million items. `maxVectors` caps the
 * vectors held over all indexes (least recently searched evicted first; a single index larger than the cap is kept).
 * Building blocks the event loop for one chunk at a time (CHUNK vectors, a few hundred milliseconds on two cores).
 */
import type { DomainStorage } from "../store/types.js";
import { MEMORY_KINDS, type MemoryKind } from "./types.js";
import { createHnswIndex, exactSearch, fromBlob, type HnswOptions, type VectorHit, type VectorIndex } from "./vector-index.js";

export interface AnnOptions {
  /** A scope holding more vectors than this is searched through an index; up to this many, exactly. Default 2,000. */
  threshold?: number;
  /** How often an index looks for other processes' writes, at most. Default 1,000 ms. */
  catchUpMs?: number;
  /** How far before its cursor an index looks for them (late commits, clock skew). Default 10,000 ms. */
  lookbackMs?: number;
  /** The most vectors held in all indexes together. Default 4,000,000 (~2.8 GB with the hashed embedder). */
  maxVectors?: number;
  /** How long a recall waits for an index being built before going on without that scope's vectors (0: not at all).
   * Default 1,000 ms. */
  buildWaitMs?: number;
  /** Milliseconds now, for catch-up timing (tests move it). Default Date.now. */
  clock?: () => number;
  hnsw?: HnswOptions;
  /** Told of builds, evictions and which way each search went (benchmarks, tests). */
  observe?: (event: AnnEvent) => void;
}

export type AnnEvent =
  | { kind: "built"; workspace: string; scope: string; of: MemoryKind; size: number; ms: number }
  | { kind: "evicted"; workspace: string; scope: string; of: MemoryKind; size: number }
  /** `size`: the vectors searched (the index's, or the rows'). `of`: the kind of item searched. */
  | { kind: "searched"; workspace: string; scope: string; of: MemoryKind; via: "index" | "exact" | "building"; size: number };

export interface VectorQuery {
  workspace: string;
  scopes: string[];
  subject?: string;
  /** Only items of these kinds (all when absent or empty). */
  kinds?: readonly MemoryKind[];
}

export interface AnnSearch {
  /** The k items of the query's scopes (and subject) closest to the vector, best first, by cosine similarity. */
  search(q: VectorQuery, vector: Float32Array, k: number): Promise<VectorHit[]>;
  noteWrite(workspace: string, num: number): void;
  noteDelete(workspace: string, num: number): void;
  /** Items a search returned whose rows no longer exist (deleted by another process): dropped from the indexes. */
  gone(workspace: string, nums: number[]): void;
}

interface ScopeIndex {
  workspace: string;
  scope: string;
  of: MemoryKind;
  index: VectorIndex;
  /** The newest updated_at applied. */
  cursor: number;
  /** num → updated_at applied, for rows within lookbackMs of the cursor (what the next listing returns again). */
  seen: Map<number, number>;
  listedAt: number;
  usedAt: number;
}

/** Indexes are kept by slot: scope and kind. */
type Slot = string;
const slotOf = (scope: string, kind: MemoryKind): Slot => `${kind}:${scope}`;

interface WorkspaceIndexes {
  indexes: Map<Slot, ScopeIndex>;
  building: Map<Slot, Promise<ScopeIndex>>;
  /** Items this process wrote or removed since the last catch-up. */
  pending: Set<number>;
  /** The catch-up under way, if any: a recall waits for it, then looks again. */
  busy: Promise<void> | null;
}

interface VectorRow {
  num: number;
  scope: string;
  kind: string;
  updated_at: number | string;
  vector: Uint8Array;
}

/** Rows read per query while building (and vectors added per `upsertMany`). */
const CHUNK = 1_000;
/** Items noted before a catch-up, at most; past it, writes are still found by the listing, deletes by `gone`. */
const PENDING_LIMIT = 100_000;
/** SQL parameters per `IN (…)` list. */
const IN_LIMIT = 500;

export function annSearch(storage: DomainStorage, embedder: { id: string; dimensions: number }, options: AnnOptions = {}): AnnSearch {
  const db = storage.db;
  const threshold = options.threshold ?? 2_000;
  const catchUpMs = options.catchUpMs ?? 1_000;
  const lookbackMs = options.lookbackMs ?? 10_000;
  const maxVectors = options.maxVectors ?? 4_000_000;
  const buildWaitMs = options.buildWaitMs ?? 1_000;
  const clock = options.clock ?? Date.now;
  const observe = options.observe ?? (() => undefined);
  const workspaces = new Map<string, WorkspaceIndexes>();

  const stateOf = (workspace: string): WorkspaceIndexes => {
    let ws = workspaces.get(workspace);
    if (!ws) {
      ws = { indexes: new Map(), building: new Map(), pending: new Set(), busy: null };
      workspaces.set(workspace, ws);
    }
    return ws;
  };

  // ---- reading rows ---------------------------------------------------------------------------------------------

  /** The slot's vectors, at most `limit`: all of them when it is small. */
  const slotRows = (workspace: string, scope: string, kind: MemoryKind, limit: number) =>
    db
      .selectFrom("memory_vectors as v")
      .innerJoin("memory_items as i", "i.num", "v.num")
      .select(["v.num", "v.vector"])
      .where("i.workspace", "=", workspace)
      .where("i.scope", "=", scope)
      .where("i.kind", "=", kind)
      .where("v.embedder", "=", embedder.id)
      .limit(limit)
      .execute();

  /** The subject's vectors in these scopes, at most `limit`. */
  const subjectRows = (q: VectorQuery, limit: number) => {
    let query = db
      .selectFrom("memory_vectors as v")
      .innerJoin("memory_items as i", "i.num", "v.num")
      .select(["v.num", "v.vector", "i.scope", "i.kind"])
      .where("i.workspace", "=", q.workspace)
      .where("i.subject", "=", q.subject as string)
      .where("i.scope", "in", q.scopes)
      .where("v.embedder", "=", embedder.id);
    if (q.kinds && q.kinds.length > 0) query = query.where("i.kind", "in", q.kinds);
    return query.limit(limit).execute();
  };

  /** Committed rows (with vectors of this embedder) of these items, wherever they are in the workspace. */
  const rowsByNum = async (workspace: string, nums: number[]): Promise<VectorRow[]> => {
    const out: VectorRow[] = [];
    for (let i = 0; i < nums.length; i += IN_LIMIT) {
      const rows = await db
        .selectFrom("memory_vectors as v")
        .innerJoin("memory_items as i", "i.num", "v.num")
        .select(["v.num", "i.scope", "i.kind", "i.updated_at", "v.vector"])
        .where("i.workspace", "=", workspace)
        .where("v.embedder", "=", embedder.id)
        .where("v.num", "in", nums.slice(i, i + IN_LIMIT))
        .execute();
      out.push(...(rows as VectorRow[]));
    }
    return out;
  };

  // ---- building and catching up ---------------------------------------------------------------------------------

  const apply = (entry: ScopeIndex, row: VectorRow) => {
    const num = Number(row.num);
    const at = Number(row.updated_at);
    entry.index.upsert(num, fromBlob(row.vector));
    entry.seen.set(num, at);
    if (at > entry.cursor) entry.cursor = at;
  };

  const prune = (entry: ScopeIndex) => {
    const oldest = entry.cursor - lookbackMs;
    for (const [num, at] of entry.seen) if (at <= oldest) entry.seen.delete(num);
  };

  /** Reads the slot's vectors in (updated_at, num) order, a chunk at a time (the scope index serves the order). */
  const build = async (workspace: string, scope: string, of: MemoryKind): Promise<ScopeIndex> => {
    const started = performance.now();
    const entry: ScopeIndex = {
      workspace,
      scope,
      of,
      index: createHnswIndex(embedder.dimensions, options.hnsw),
      cursor: Number.MIN_SAFE_INTEGER,
      seen: new Map(),
      listedAt: clock(),
      usedAt: clock(),
    };
    let after = { at: Number.MIN_SAFE_INTEGER, num: -1 };
    for (;;) {
      const { at, num } = after;
      const rows = (await db
        .selectFrom("memory_items as i")
        .innerJoin("memory_vectors as v", "v.num", "i.num")
        .select(["i.num", "i.scope", "i.kind", "i.updated_at", "v.vector"])
        .where("i.workspace", "=", workspace)
        .where("i.scope", "=", scope)
        .where("i.kind", "=", of)
        .where("v.embedder", "=", embedder.id)
        .where("i.updated_at", ">=", at)
        .where((eb) => eb.or([eb("i.updated_at", ">", at), eb("i.num", ">", num)]))
        .orderBy("i.updated_at")
        .orderBy("i.num")
        .limit(CHUNK)
        .execute()) as VectorRow[];
      entry.index.upsertMany(rows.map((r) => ({ label: Number(r.num), vector: fromBlob(r.vector) })));
      for (const r of rows) {
        const rowAt = Number(r.updated_at);
        if (rowAt > entry.cursor) entry.cursor = rowAt;
        if (rowAt > entry.cursor - lookbackMs) entry.seen.set(Number(r.num), rowAt);
      }
      prune(entry);
      const last = rows.at(-1);
      if (!last || rows.length < CHUNK) break;
      after = { at: Number(last.updated_at), num: Number(last.num) };
    }
    observe({ kind: "built", workspace, scope, of, size: entry.index.size, ms: performance.now() - started });
    return entry;
  };

  const startBuild = (ws: WorkspaceIndexes, workspace: string, scope: string, of: MemoryKind): Promise<ScopeIndex> => {
    const slot = slotOf(scope, of);
    let building = ws.building.get(slot);
    if (building) return building;
    building = build(workspace, scope, of).then(
      (entry) => {
        ws.building.delete(slot);
        ws.indexes.set(slot, entry);
        evictBeyondBudget(entry);
        return entry;
      },
      (err: unknown) => {
        ws.building.delete(slot);
        throw err;
      },
    );
    // A build nobody waits for any more must not fail the process; one somebody waits for fails their recall.
    building.catch(() => undefined);
    ws.building.set(slot, building);
    return building;
  };

  /** The index, once built; null if it is not within buildWaitMs. */
  const awaitBuild = async (building: Promise<ScopeIndex>): Promise<ScopeIndex | null> => {
    if (buildWaitMs <= 0) return null;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), buildWaitMs);
    });
    try {
      return await Promise.race([building, late]);
    } finally {
      clearTimeout(timer);
    }
  };

  const evictBeyondBudget = (keep: ScopeIndex) => {
    const all = [...workspaces.values()].flatMap((ws) => [...ws.indexes.values()]);
    let total = all.reduce((n, e) => n + e.index.size, 0);
    for (const entry of all.filter((e) => e !== keep).sort((a, b) => a.usedAt - b.usedAt)) {
      if (total <= maxVectors) break;
      workspaces.get(entry.workspace)?.indexes.delete(slotOf(entry.scope, entry.of));
      total -= entry.index.size;
      observe({ kind: "evicted", workspace: entry.workspace, scope: entry.scope, of: entry.of, size: entry.index.size });
    }
  };

  const forgetEverywhere = (ws: WorkspaceIndexes, num: number) => {
    for (const entry of ws.indexes.values()) {
      if (entry.index.has(num)) entry.index.remove(num);
      entry.seen.delete(num);
    }
  };

  const applyChanges = async (ws: WorkspaceIndexes, workspace: string, due: ScopeIndex[], now: number): Promise<void> => {
    if (ws.pending.size > 0) {
      const nums = [...ws.pending];
      ws.pending.clear();
      const rows = await rowsByNum(workspace, nums);
      const found = new Set<number>();
      for (const row of rows) {
        found.add(Number(row.num));
        // Edited into another scope (or kind): out of the slot it was in, into the one it is in now.
        forgetEverywhere(ws, Number(row.num));
        const entry = ws.indexes.get(slotOf(row.scope, row.kind as MemoryKind));
        if (entry) apply(entry, row);
      }
      for (const num of nums) if (!found.has(num)) forgetEverywhere(ws, num);
    }
    for (const entry of due) {
      entry.listedAt = now;
      const listed = await db
        .selectFrom("memory_items")
        .select(["num", "updated_at"])
        .where("workspace", "=", workspace)
        .where("scope", "=", entry.scope)
        .where("kind", "=", entry.of)
        .where("updated_at", ">", entry.cursor - lookbackMs)
        .execute();
      const changed = new Map<number, number>();
      for (const r of listed) if (entry.seen.get(Number(r.num)) !== Number(r.updated_at)) changed.set(Number(r.num), Number(r.updated_at));
      if (changed.size === 0) continue;
      const rows = await rowsByNum(workspace, [...changed.keys()]);
      for (const row of rows) if (row.scope === entry.scope && row.kind === entry.of) apply(entry, row);
      const applied = new Set(rows.map((r) => Number(r.num)));
      // Listed without a vector of this embedder (or gone since): not searchable here.
      for (const [num, at] of changed) {
        if (applied.has(num)) continue;
        if (entry.index.has(num)) entry.index.remove(num);
        entry.seen.set(num, at);
      }
      prune(entry);
    }
  };

  /** Brings the indexes searched up to date: this process's writes always, other processes' when due. */
  const catchUp = async (ws: WorkspaceIndexes, workspace: string, searched: ScopeIndex[]): Promise<void> => {
    // A catch-up under way may have started before a write this recall must see: wait for it, then look again.
    for (let round = 0; round < 4; round++) {
      if (ws.busy) {
        await ws.busy;
        continue;
      }
      const now = clock();
      const due = searched.filter((e) => now - e.listedAt >= catchUpMs);
      if (ws.pending.size === 0 && due.length === 0) return;
      ws.busy = applyChanges(ws, workspace, due, now).finally(() => {
        ws.busy = null;
      });
      await ws.busy;
      return;
    }
  };

  // ---- searching ------------------------------------------------------------------------------------------------

  type Target = { scope: string; of: MemoryKind };
  type Plan = (Target & { entry: ScopeIndex }) | (Target & { rows: { label: number; vector: Float32Array }[] }) | null;

  /** The kinds a query searches. */
  const kindsOf = (q: VectorQuery): readonly MemoryKind[] => (q.kinds && q.kinds.length > 0 ? q.kinds : MEMORY_KINDS);

  /** Each slot the query searches: its index (built or being built), or its rows when it has few. */
  const plan = async (ws: WorkspaceIndexes, q: VectorQuery, keep?: Set<number>): Promise<Plan[]> =>
    Promise.all(
      q.scopes.flatMap((scope) =>
        kindsOf(q).map(async (of): Promise<Plan> => {
          const slot = slotOf(scope, of);
          const entry = ws.indexes.get(slot);
          if (entry) return { scope, of, entry };
          let building = ws.building.get(slot);
          if (!building) {
            const rows = await slotRows(q.workspace, scope, of, threshold + 1);
            if (rows.length <= threshold) {
              const wanted = keep ? rows.filter((r) => keep.has(Number(r.num))) : rows;
              return { scope, of, rows: wanted.map((r) => ({ label: Number(r.num), vector: fromBlob(r.vector) })) };
            }
            building = startBuild(ws, q.workspace, scope, of);
          }
          const built = await awaitBuild(building);
          if (built) return { scope, of, entry: built };
          observe({ kind: "searched", workspace: q.workspace, scope, of, via: "building", size: 0 });
          return null;
        }),
      ),
    );

  const searchSlots = async (ws: WorkspaceIndexes, q: VectorQuery, vector: Float32Array, k: number, keep?: Set<number>) => {
    const plans = await plan(ws, q, keep);
    const searched = plans.flatMap((p) => (p !== null && "entry" in p ? [p.entry] : []));
    if (searched.length > 0) await catchUp(ws, q.workspace, searched);
    const hits: VectorHit[] = [];
    const now = clock();
    for (const p of plans) {
      if (p === null) continue;
      if ("entry" in p) {
        p.entry.usedAt = now;
        hits.push(...p.entry.index.search(vector, k, keep ? (label) => keep.has(label) : undefined));
      } else {
        hits.push(...exactSearch(vector, p.rows, k));
      }
      const [via, size] = "entry" in p ? (["index", p.entry.index.size] as const) : (["exact", p.rows.length] as const);
      observe({ kind: "searched", workspace: q.workspace, scope: p.scope, of: p.of, via, size });
    }
    return hits.sort((a, b) => b.score - a.score || a.label - b.label).slice(0, k);
  };

  return {
    async search(q, vector, k) {
      if (q.scopes.length === 0 || k <= 0) return [];
      const ws = stateOf(q.workspace);
      if (!q.subject) return searchSlots(ws, q, vector, k);
      // A subject's items are usually few: exactly over them. Many: through the indexes, keeping only theirs.
      const rows = await subjectRows(q, threshold + 1);
      if (rows.length <= threshold) {
        for (const scope of q.scopes) {
          for (const of of kindsOf(q)) {
            const size = rows.filter((r) => r.scope === scope && r.kind === of).length;
            observe({ kind: "searched", workspace: q.workspace, scope, of, via: "exact", size });
          }
        }
        return exactSearch(
          vector,
          rows.map((r) => ({ label: Number(r.num), vector: fromBlob(r.vector) })),
          k,
        );
      }
      const members = await db
        .selectFrom("memory_items")
        .select("num")
        .where("workspace", "=", q.workspace)
        .where("subject", "=", q.subject)
        .execute();
      return searchSlots(ws, q, vector, k, new Set(members.map((m) => Number(m.num))));
    },
    noteWrite(workspace, num) {
      note(workspace, num);
    },
    noteDelete(workspace, num) {
      note(workspace, num);
    },
    gone(workspace, nums) {
      const ws = workspaces.get(workspace);
      if (ws) for (const num of nums) forgetEverywhere(ws, num);
    },
  };

  /** Only workspaces with an index (or one being built) keep notes: elsewhere every search reads the rows. */
  function note(workspace: string, num: number) {
    const ws = workspaces.get(workspace);
    if (!ws || (ws.indexes.size === 0 && ws.building.size === 0) || ws.pending.size >= PENDING_LIMIT) return;
    ws.pending.add(num);
  }
}
