/**
 * A tiny append-only JSON-lines ledger under Outpost's data folder, standing in
 * for Acme's real systems. Files starting with "_" are helpers: Outpost does not
 * look for tools in them.
 *
 * The pattern to copy is in `appendOnce`: a side effect is keyed by the call's
 * idempotency key, so when Outpost retries a call (a worker died mid-call) the
 * second attempt finds the first one's record and returns it instead of acting
 * again. A real system would enforce this with a unique index on the key.
 */
import { appendFile, mkdir, readFile } from "node:fs/promises";
import path from "node:path";

export interface LedgerEntry {
  idempotency_key: string;
}

export async function readLedger<T extends LedgerEntry>(file: string): Promise<T[]> {
  const text = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return "";
    throw error;
  });
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as T);
}

/** Appends `entry` unless an entry with the same idempotency key exists; returns the stored entry. */
export async function appendOnce<T extends LedgerEntry>(file: string, entry: T): Promise<{ entry: T; duplicate: boolean }> {
  const existing = (await readLedger<T>(file)).find((item) => item.idempotency_key === entry.idempotency_key);
  if (existing) return { entry: existing, duplicate: true };
  await mkdir(path.dirname(file), { recursive: true });
  await appendFile(file, `${JSON.stringify(entry)}\n`);
  return { entry, duplicate: false };
}
