/** The store: one contract (types.ts), two drivers. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { OutpostError } from "../core/errors.js";
import type { Store } from "./types.js";

export * from "./types.js";

export interface OpenStoreOptions {
  /** postgres://… selects PostgreSQL; otherwise SQLite in `dataDir`. */
  databaseUrl?: string;
  /** Folder for the embedded database (created if missing). */
  dataDir: string;
  poolSize?: number;
}

export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const url = options.databaseUrl;
  if (url && /^postgres(ql)?:\/\//.test(url)) {
    const { PostgresStore } = await import("./postgres.js");
    try {
      return await PostgresStore.open(url, { poolSize: options.poolSize });
    } catch (err) {
      if (err instanceof OutpostError) throw err;
      const safe = url.replace(/\/\/[^@/]*@/, "//***@");
      throw new OutpostError(
        "unavailable",
        `cannot connect to PostgreSQL at ${safe}: ${(err as Error).message}`,
        "check OUTPOST_DATABASE_URL and that the server is running and accepts connections",
      );
    }
  }
  if (url) {
    throw new OutpostError(
      "invalid_request",
      `unsupported database URL "${url.split(":")[0]}:…"`,
      "use postgres://user@host:5432/db, or leave OUTPOST_DATABASE_URL unset for the embedded SQLite store",
    );
  }
  mkdirSync(options.dataDir, { recursive: true });
  const { SqliteStore } = await import("./sqlite.js");
  return SqliteStore.open(join(options.dataDir, "outpost.db"));
}
