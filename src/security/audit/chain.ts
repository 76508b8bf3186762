/**
 * The hash of one audit entry: SHA-256 hex over `prev_hash` followed by the RFC 8785 canonical JSON of
 * {workspace, seq, at, kind, actor, run_id, data}. Anyone can recompute it from the stored row.
 */
import * as crypto from "node:crypto";
import { createHash } from "node:crypto";
import { canonicalJson } from "../canonical.js";

export { canonicalJson };

/** prev_hash of a workspace's first entry. */
export const GENESIS_HASH = "0".repeat(64);

export interface ChainedFields {
  workspace: string;
  seq: number;
  at: number;
  kind: string;
  actor: string;
  run_id: string | null;
}

/**
 * The canonical text of an entry whose `data` is already canonical JSON (as audit_log stores it): the same
 * bytes as canonicalJson({...fields, data: JSON.parse(data)}), built without parsing. Keys in RFC 8785 order.
 */
export function entryText(f: ChainedFields, canonicalData: string): string {
  return `{"actor":${JSON.stringify(f.actor)},"at":${integer(f.at)},"data":${canonicalData},"kind":${JSON.stringify(f.kind)},"run_id":${f.run_id === null ? "null" : JSON.stringify(f.run_id)},"seq":${integer(f.seq)},"workspace":${JSON.stringify(f.workspace)}}`;
}

const integer = (n: number) => (Number.isSafeInteger(n) ? String(n) : canonicalJson(n));

// One-shot hashing (Node ≥ 20.12) is several times cheaper per entry than a Hash object; verify runs it per row.
const oneShot = (crypto as { hash?: (algorithm: string, data: string) => string }).hash;
const sha256Hex = oneShot ? (text: string) => oneShot("sha256", text) : (text: string) => createHash("sha256").update(text).digest("hex");

export function entryHash(prevHash: string, f: ChainedFields, canonicalData: string): string {
  return sha256Hex(prevHash + entryText(f, canonicalData));
}

/** The specification's form, for stored data that is not canonical text (or to check the fast path). */
export function entryHashOf(prevHash: string, f: ChainedFields, data: unknown): string {
  const text = canonicalJson({ workspace: f.workspace, seq: f.seq, at: f.at, kind: f.kind, actor: f.actor, run_id: f.run_id, data });
  return sha256Hex(prevHash + text);
}
