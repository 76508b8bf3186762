/**
 * Vector search: an approximate nearest-neighbour index (HNSW, by usearch) for the vectors of one embedder in one
 * workspace, exact search for small candidate sets, and the blob format vectors are stored in.
 *
 * Labels are `memory_items.num`. Vectors are unit length, so inner product is cosine similarity. The index keeps
 * vectors at half precision: half the memory of float32, at no measurable loss of recall@10 for 256-dimensional
 * unit vectors (scores differ from exact ones by ~1e-3, and only ranks are fused).
 */
import { renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { endianness } from "node:os";
import type { Index as UsearchIndex } from "usearch";

// usearch's ESM build cannot find its native binary (it walks up from a file: URL forever); its CommonJS build can.
const usearch = createRequire(import.meta.url)("usearch") as typeof import("usearch");

export interface VectorHit {
  label: number;
  /** Cosine similarity, higher is closer. */
  score: number;
}

export interface VectorIndex {
  readonly dimensions: number;
  /** Labels in the index (removed ones not counted). */
  readonly size: number;
  has(label: number): boolean;
  /** Adds the label, or replaces its vector. */
  upsert(label: number, vector: Float32Array): void;
  /** Many at once, on every core: how an index is (re)built from the table. */
  upsertMany(entries: Iterable<{ label: number; vector: Float32Array }>): void;
  remove(label: number): void;
  /**
   * The k labels closest to the query, best first. With a filter, only labels it accepts: the search fetches more
   * candidates (4×, 16×, … up to `maxCandidates`) until k pass. A filter that passes only a tiny share of the index
   * (one subject's items among a million) may still come back short: search those few rows with `exactSearch`.
   */
  search(query: Float32Array, k: number, filter?: (label: number) => boolean): VectorHit[];
  /** Writes the index to a file (atomically: a crash mid-save leaves the previous file). */
  save(path: string): void;
}

export interface HnswOptions {
  /** Graph degree (M). 16 is the usual choice for vectors of a few hundred dimensions; more costs memory and build time. */
  connectivity?: number;
  /** Candidate list while inserting (efConstruction). */
  expansionAdd?: number;
  /** The least candidate list while searching (ef; larger indexes search deeper, see searchDepth). 256: on 20k clustered 96-dimensional vectors recall@10 against exact search
   * is 0.89 at 128 and 0.96 at 256, for 0.1 ms more a query; raising the degree instead costs memory for less. */
  expansionSearch?: number;
  /** "f16" (default), "f32", or "i8" (a quarter of the memory, recall a few points lower). */
  precision?: "f32" | "f16" | "i8";
  /** The most candidates a filtered search fetches before giving up on reaching k. */
  maxCandidates?: number;
  /** Threads for `upsertMany`; 0 (default) uses every core. */
  threads?: number;
}

/** Vectors an index receives one at a time before parallel inserts (see upsertMany). */
const SERIAL_SEED = 256;

const DEFAULTS = { connectivity: 16, expansionAdd: 128, expansionSearch: 256, precision: "f16", maxCandidates: 8_192, threads: 0 } as const;

export function createHnswIndex(dimensions: number, options: HnswOptions = {}): VectorIndex {
  const o = { ...DEFAULTS, ...options };
  const index = new usearch.Index({
    dimensions,
    metric: usearch.MetricKind.IP,
    quantization: usearch.ScalarKind[o.precision === "f32" ? "F32" : o.precision === "i8" ? "I8" : "F16"],
    connectivity: o.connectivity,
    expansion_add: o.expansionAdd,
    expansion_search: o.expansionSearch,
    multi: false,
  });
  return hnsw(index, dimensions, o);
}

/** An index written by `save`. Its own settings (precision, connectivity) come from the file. */
export function loadHnswIndex(path: string, dimensions: number, options: HnswOptions = {}): VectorIndex {
  const o = { ...DEFAULTS, ...options };
  const index = new usearch.Index({
    dimensions,
    metric: usearch.MetricKind.IP,
    quantization: usearch.ScalarKind.F16,
    connectivity: o.connectivity,
    expansion_add: o.expansionAdd,
    expansion_search: o.expansionSearch,
    multi: false,
  });
  index.load(path);
  if (index.dimensions() !== dimensions) {
    throw new Error(`the vector index at ${path} holds ${index.dimensions()}-dimensional vectors, not ${dimensions}`);
  }
  return hnsw(index, dimensions, o);
}

function hnsw(index: UsearchIndex, dimensions: number, o: Required<HnswOptions>): VectorIndex {
  const key = (label: number): bigint => {
    if (!Number.isSafeInteger(label) || label < 0) throw new RangeError(`vector labels are non-negative integers, not ${label}`);
    return BigInt(label);
  };
  const check = (vector: Float32Array) => {
    if (vector.length !== dimensions) throw new RangeError(`expected a ${dimensions}-dimensional vector, got ${vector.length}`);
  };
  const nearest = (query: Float32Array, k: number): VectorHit[] => {
    // Asking usearch for `depth` results searches with a candidate list that long (ef = max(ef, k)): the depth can
    // grow with the index, which a fixed expansion_search cannot.
    const size = index.size();
    const found = index.search(query, Math.min(size, Math.max(k, searchDepth(size, o.expansionSearch))), 1);
    const hits: VectorHit[] = [];
    for (let i = 0; i < Math.min(k, found.keys.length); i++) hits.push({ label: Number(found.keys[i]), score: 1 - found.distances[i] });
    return hits;
  };

  return {
    dimensions,
    get size() {
      return index.size();
    },
    has: (label) => index.contains(key(label)) as boolean,
    upsert(label, vector) {
      check(vector);
      const k = key(label);
      // usearch keeps one vector per key: replacing is remove + add (the freed slot is reused).
      if (index.contains(k)) index.remove(k);
      index.add(k, vector, 1);
    },
    upsertMany(entries) {
      const list = [...entries];
      if (list.length === 0) return;
      const keys = new BigUint64Array(list.length);
      const matrix = new Float32Array(list.length * dimensions);
      list.forEach((e, i) => {
        check(e.vector);
        keys[i] = key(e.label);
        matrix.set(e.vector, i * dimensions);
      });
      if (new Set(keys).size !== keys.length) {
        // The same label twice in one call: the last vector wins, as it would one by one.
        const last = new Map(list.map((e) => [e.label, e.vector]));
        this.upsertMany([...last].map(([label, vector]) => ({ label, vector })));
        return;
      }
      const existing = index.contains(keys) as boolean[];
      const replaced = keys.filter((_, i) => existing[i]);
      if (replaced.length > 0) index.remove(replaced);
      // Inserted in parallel into a near-empty graph, vectors link to too few others and some are never reached again
      // (57 near-duplicate paragraphs on all cores: one in twenty builds lost a vector). The first ones go in one by one.
      const serial = Math.min(keys.length, Math.max(0, SERIAL_SEED - index.size()));
      if (serial > 0) index.add(keys.slice(0, serial), matrix.slice(0, serial * dimensions), 1);
      if (serial < keys.length) index.add(keys.slice(serial), matrix.slice(serial * dimensions), o.threads);
    },
    remove(label) {
      index.remove(key(label));
    },
    search(query, k, filter) {
      check(query);
      const size = index.size();
      if (k <= 0 || size === 0 || !query.some((x) => x !== 0)) return [];
      if (!filter) return nearest(query, Math.min(k, size));
      let fetch = Math.min(size, Math.max(4 * k, 32));
      for (;;) {
        const hits = nearest(query, fetch).filter((h) => filter(h.label));
        if (hits.length >= k || fetch >= size || fetch >= o.maxCandidates) return hits.slice(0, k);
        fetch = Math.min(size, o.maxCandidates, fetch * 4);
      }
    },
    save(path) {
      const partial = `${path}.${process.pid}.partial`;
      try {
        index.save(partial);
        renameSync(partial, path);
      } finally {
        rmSync(partial, { force: true });
      }
    },
  };
}

/**
 * How many candidates a search of an index of `size` vectors examines: `expansionSearch` up to 25k vectors, then about
 * one in a hundred (a power of two), at most MAX_SEARCH_DEPTH. A fixed candidate list loses recall as the graph grows:
 * on the memory bench's hashed embeddings, recall@10 against exact search at ef 256 is 0.96 at 30k, 0.80 at 100k and
 * 0.35 at 1M; at the depth chosen here 0.95 at 100k (1,024, ~4 ms) and 0.81 at 1M (4,096, ~15 ms).
 */
export function searchDepth(size: number, expansionSearch: number): number {
  if (size <= 0) return expansionSearch;
  const share = 2 ** Math.ceil(Math.log2(Math.max(1, size / 100)));
  return Math.max(expansionSearch, Math.min(MAX_SEARCH_DEPTH, share));
}

const MAX_SEARCH_DEPTH = 4_096;

/** The k candidates closest to the query by inner product (cosine for unit vectors), best first; ties by label. */
export function exactSearch(query: Float32Array, candidates: Iterable<{ label: number; vector: Float32Array }>, k: number): VectorHit[] {
  if (k <= 0) return [];
  // The best k so far, worst first: most candidates lose to the worst and cost one comparison.
  const top: VectorHit[] = [];
  const worse = (a: VectorHit, b: VectorHit) => a.score < b.score || (a.score === b.score && a.label > b.label);
  for (const c of candidates) {
    const v = c.vector;
    const n = Math.min(v.length, query.length);
    let score = 0;
    for (let i = 0; i < n; i++) score += query[i] * v[i];
    const hit = { label: c.label, score };
    if (top.length === k && !worse(top[0], hit)) continue;
    if (top.length === k) top.shift();
    let at = 0;
    while (at < top.length && worse(top[at], hit)) at++;
    top.splice(at, 0, hit);
  }
  return top.reverse();
}

const LITTLE_ENDIAN = endianness() === "LE";

/** A vector as stored: float32, little-endian (a copy; later changes to the vector do not reach it). */
export function toBlob(v: Float32Array): Buffer {
  const out = Buffer.alloc(v.length * 4);
  if (LITTLE_ENDIAN) out.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  else for (let i = 0; i < v.length; i++) out.writeFloatLE(v[i], i * 4);
  return out;
}

/** A stored vector back (a copy, so a driver's reused or unaligned buffer is safe). */
export function fromBlob(b: Uint8Array): Float32Array {
  if (b.byteLength % 4 !== 0) throw new RangeError(`a stored vector has ${b.byteLength} bytes, not a multiple of 4`);
  const out = new Float32Array(b.byteLength / 4);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(b);
  else {
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return out;
}
