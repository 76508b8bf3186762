import type { Migration, MigrationProvider } from "kysely";
import * as m001 from "./001_init.js";
import * as m002 from "./002_teams.js";
import * as m003 from "./003_security.js";
import * as m004 from "./004_memory.js";
import * as m005 from "./005_triggers.js";
import * as m006 from "./006_memory_slots.js";
import * as m007 from "./007_fair_claims.js";
import * as m008 from "./008_event_leases.js";
import * as m009 from "./009_model_usage.js";

/** Numbered migrations, applied in order at start. Add a file, add it here; never edit a shipped one. */
const migrations: Record<string, Migration> = {
  "001_init": m001,
  "002_teams": m002,
  "003_security": m003,
  "004_memory": m004,
  "005_triggers": m005,
  "006_memory_slots": m006,
  "007_fair_claims": m007,
  "008_event_leases": m008,
  "009_model_usage": m009,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
