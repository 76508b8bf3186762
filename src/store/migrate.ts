import { type Kysely, Migrator } from "kysely";
import { OutpostError } from "../core/errors.js";
import { migrationProvider } from "./migrations/index.js";

/** Applies pending numbered migrations; refuses to run on a database from a newer Outpost. */
export async function migrate(db: Kysely<any>): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: migrationProvider,
    migrationTableName: "outpost_migrations",
    migrationLockTableName: "outpost_migrations_lock",
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === "Error");
    const msg = error instanceof Error ? error.message : String(error);
    throw new OutpostError(
      "unavailable",
      `database migration ${failed?.migrationName ?? ""} failed: ${msg}`,
      msg.includes("corrupted migrations") ? "this database was written by a newer Outpost; upgrade Outpost" : undefined,
    );
  }
}
